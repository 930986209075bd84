package store

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

func TestOpenWritesGenesis(t *testing.T) {
	f := newFixture(t, 5, 2)
	s := f.open(Options{})
	tip, id := s.Tip()
	if id != f.g.ID() || tip.Height != 0 || id != s.GenesisID() {
		t.Fatalf("tip %s height %d, want genesis %s", id.Short(), tip.Height, f.g.ID().Short())
	}
	if got, ok := s.BlockIDAt(0); !ok || got != id {
		t.Fatalf("BlockIDAt(0) = %s %v", got.Short(), ok)
	}
	b, ok := s.Block(id)
	if !ok || b.ID() != id {
		t.Fatal("genesis block unreadable")
	}
	if h, ok := s.Header(id); !ok || h.ID() != id {
		t.Fatal("genesis header unreadable")
	}
	for i := range 5 {
		if a := s.Account(f.addr(i)); a != (chain.Account{Balance: chain.TestnetBalance}) {
			t.Fatalf("account %d: %+v", i, a)
		}
	}
	sameState(t, "genesis", snapshot(t, s), replay(t, f.g, nil))
	if s.Account(chain.Address{1}) != (chain.Account{}) {
		t.Fatal("unknown account is not zero")
	}
	if _, ok := s.BlockIDAt(1); ok {
		t.Fatal("height 1 exists")
	}
}

func TestOpenRefusesOtherGenesis(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, 3, 1)
	s, err := Open(f.g, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	other := *f.g
	other.ChainID = "other-chain"
	if _, err := Open(&other, Options{Dir: dir}); !errors.Is(err, ErrGenesisMismatch) {
		t.Fatalf("open with another genesis: %v, want ErrGenesisMismatch", err)
	}
	s, err = Open(f.g, Options{Dir: dir})
	if err != nil {
		t.Fatalf("reopen with the same genesis: %v", err)
	}
	s.Close()
}

func TestConnectChain(t *testing.T) {
	f := newFixture(t, 4, 3)
	s := f.open(Options{})
	fresh := chain.Address{0xfe} // not funded at genesis: created by a tx
	parent, _ := s.Tip()
	var want []*chain.Block
	for h := uint64(1); h <= 6; h++ {
		txs := []*chain.Tx{
			f.tx(0, f.addr(1), 100*h, 3, h-1, nil),
			f.tx(2, fresh, 7, 1, h-1, []byte("payload")),
		}
		b := f.block(parent, 0, txs...)
		res := f.mustAdd(s, b, Connected)
		if len(res.Connected) != 1 || res.Connected[0] != b || len(res.Disconnected) != 0 || res.ID != b.ID() {
			t.Fatalf("result %+v", res)
		}
		want = append(want, b)
		parent = &b.Header
	}
	got := checkConsistent(t, f.g, s)
	if len(got) != len(want) {
		t.Fatalf("best chain has %d blocks, want %d", len(got), len(want))
	}
	if a := s.Account(fresh); a.Balance != 6*7 || a.Nonce != 0 {
		t.Fatalf("fresh account %+v", a)
	}
	if a := s.Account(f.addr(0)); a.Nonce != 6 {
		t.Fatalf("sender nonce %d", a.Nonce)
	}
	// Again: Known, nothing changes.
	res := f.mustAdd(s, want[2], Known)
	if len(res.Connected) != 0 {
		t.Fatal("known block reconnected")
	}
	if bb, ok := s.BlockBytes(want[3].ID()); !ok || string(bb) != string(want[3].Encode()) {
		t.Fatal("BlockBytes differs from the encoding")
	}
}

// TestReorgAndBack reorgs to a heavier branch and back, checking that the
// state, the tx index and the height index match a replay exactly each
// time, including an account that only the abandoned branch created.
func TestReorgAndBack(t *testing.T) {
	for _, tc := range []struct {
		name  string
		large bool
	}{{"one-txn", false}, {"chunked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 4, 2)
			s := f.open(Options{})
			s.forceLarge = tc.large
			g, _ := s.Tip()
			shared := f.tx(3, f.addr(0), 5, 1, 0, nil) // in both branches
			onlyA := chain.Address{0xaa}
			a1 := f.block(g, 0, f.tx(0, f.addr(1), 10, 1, 0, nil))
			a2 := f.block(&a1.Header, 0, f.tx(0, onlyA, 20, 2, 1, nil), shared)
			a3 := f.block(&a2.Header, 0, f.tx(1, onlyA, 30, 1, 0, nil))
			for _, b := range []*chain.Block{a1, a2, a3} {
				f.mustAdd(s, b, Connected)
			}
			stateA3 := snapshot(t, s)
			checkConsistent(t, f.g, s)

			// Branch B forks after a1 and overtakes at b4.
			b2 := f.block(&a1.Header, 1, shared, f.tx(2, f.addr(0), 40, 1, 0, nil))
			b3 := f.block(&b2.Header, 1, f.tx(0, f.addr(2), 50, 1, 1, nil))
			b4 := f.block(&b3.Header, 1, f.tx(0, f.addr(2), 60, 1, 2, nil))
			f.mustAdd(s, b2, SideChain)
			f.mustAdd(s, b3, SideChain) // tie at 3: a3 was first
			if _, id := s.Tip(); id != a3.ID() {
				t.Fatal("a tie moved the tip")
			}
			sameState(t, "side blocks do not touch state", snapshot(t, s), stateA3)
			res := f.mustAdd(s, b4, Connected)
			assertBlocks(t, "disconnected", res.Disconnected, a3, a2)
			assertBlocks(t, "connected", res.Connected, b2, b3, b4)
			blocks := checkConsistent(t, f.g, s)
			assertBlocks(t, "best chain", blocks, a1, b2, b3, b4)
			if s.Account(onlyA) != (chain.Account{}) {
				t.Fatal("account created only on the old branch survived")
			}
			for _, tx := range a3.Txs {
				if _, ok := s.TxLocation(tx.ID()); ok {
					t.Fatal("tx of a disconnected block still indexed")
				}
			}
			if loc, _ := s.TxLocation(shared.ID()); loc.Block != b2.ID() || loc.Index != 0 {
				t.Fatalf("shared tx located at %+v", loc)
			}
			for _, b := range []*chain.Block{a2, a3} {
				if st, _, _ := s.BlockStatus(b.ID()); st != StatusSide || !s.HasBlock(b.ID()) {
					t.Fatalf("disconnected block status %v", st)
				}
			}

			// Back to A: a4 ties, a5 overtakes.
			a4 := f.block(&a3.Header, 0)
			a5 := f.block(&a4.Header, 0, f.tx(1, f.addr(3), 1, 1, 1, nil))
			f.mustAdd(s, a4, SideChain)
			res = f.mustAdd(s, a5, Connected)
			assertBlocks(t, "disconnected", res.Disconnected, b4, b3, b2)
			assertBlocks(t, "connected", res.Connected, a2, a3, a4, a5)
			blocks = checkConsistent(t, f.g, s)
			assertBlocks(t, "best chain", blocks, a1, a2, a3, a4, a5)
			// Rewinding a5 and a4 by hand (their undo) must give the A3 state
			// exactly: the undo records restored it bit for bit.
			sameState(t, "A after the round trip", replay(t, f.g, blocks[:3]), stateA3)
		})
	}
}

func assertBlocks(t *testing.T, what string, got []*chain.Block, want ...*chain.Block) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d blocks, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID() != want[i].ID() {
			t.Fatalf("%s[%d]: height %d %s, want height %d %s", what, i, got[i].Header.Height, got[i].ID().Short(),
				want[i].Header.Height, want[i].ID().Short())
		}
	}
}

func TestTieKeepsFirstSeen(t *testing.T) {
	f := newFixture(t, 2, 1)
	s := f.open(Options{})
	g, _ := s.Tip()
	x := f.block(g, 0)
	y := f.block(g, 1)
	f.mustAdd(s, x, Connected)
	f.mustAdd(s, y, SideChain)
	if _, id := s.Tip(); id != x.ID() {
		t.Fatal("tie went to the later block")
	}
	if !s.HasBlock(y.ID()) {
		t.Fatal("side block not stored")
	}
	// The other order in a second store: first seen wins again.
	s2 := f.open(Options{})
	f.mustAdd(s2, y, Connected)
	f.mustAdd(s2, x, SideChain)
	if _, id := s2.Tip(); id != y.ID() {
		t.Fatal("tie went to the later block")
	}
	// A child of the side block is heavier: reorg.
	y2 := f.block(&y.Header, 0)
	res := f.mustAdd(s, y2, Connected)
	assertBlocks(t, "disconnected", res.Disconnected, x)
	assertBlocks(t, "connected", res.Connected, y, y2)
}

func TestOrphan(t *testing.T) {
	f := newFixture(t, 2, 1)
	s := f.open(Options{})
	g, _ := s.Tip()
	b1 := f.block(g, 0)
	b2 := f.block(&b1.Header, 0)
	_, err := s.AddBlock(b2, f.now)
	wantReason(t, err, chain.ReasonUnknownParent)
	if r, _ := chain.ReasonOf(err); r.Penalize() {
		t.Fatal("an orphan is penalized")
	}
	if s.HasBlock(b2.ID()) {
		t.Fatal("orphan stored")
	}
	f.mustAdd(s, b1, Connected)
	f.mustAdd(s, b2, Connected)
}

func TestInvalidBlockReasons(t *testing.T) {
	f := newFixture(t, 3, 2)
	s := f.open(Options{})
	g, _ := s.Tip()
	good := f.block(g, 0, f.tx(0, f.addr(1), 1, 1, 0, nil))
	tests := []struct {
		name   string
		block  func() *chain.Block
		now    time.Time
		reason chain.Reason
		inner  chain.Reason
	}{
		{"wrong proposer", func() *chain.Block {
			return f.g.BuildBlock(g, f.g.SlotTime(1), f.auth[0], nil) // height 1 is auth[1]'s
		}, f.now, chain.ReasonWrongProposer, 0},
		{"bad block signature", func() *chain.Block {
			b := f.block(g, 5)
			b.Header.Sig[0] ^= 1
			return b
		}, f.now, chain.ReasonBadBlockSignature, 0},
		{"bad tx root", func() *chain.Block {
			b := f.block(g, 6, f.tx(0, f.addr(1), 1, 1, 0, nil))
			b.Txs = append(b.Txs, f.tx(1, f.addr(2), 1, 1, 0, nil))
			return b
		}, f.now, chain.ReasonBadTxRoot, 0},
		{"time too far in future", func() *chain.Block { return f.block(g, 7) },
			genesisTime.Add(-time.Minute), chain.ReasonTimeTooFarInFuture, 0},
		{"bad tx signature", func() *chain.Block {
			tx := f.tx(0, f.addr(1), 1, 1, 0, nil)
			tx.Sig[3] ^= 1
			return f.block(g, 8, tx)
		}, f.now, chain.ReasonInvalidTx, chain.ReasonBadSignature},
		{"nonce too high", func() *chain.Block { return f.block(g, 9, f.tx(0, f.addr(1), 1, 1, 5, nil)) },
			f.now, chain.ReasonInvalidTx, chain.ReasonNonceTooHigh},
		{"insufficient balance", func() *chain.Block {
			return f.block(g, 10, f.tx(0, f.addr(1), chain.TestnetBalance, 1, 0, nil))
		}, f.now, chain.ReasonInvalidTx, chain.ReasonInsufficientBalance},
		{"fee too low", func() *chain.Block { return f.block(g, 11, f.tx(0, f.addr(1), 1, 0, 0, nil)) },
			f.now, chain.ReasonInvalidTx, chain.ReasonFeeTooLow},
		{"fake genesis", func() *chain.Block { b := *f.g.Block(); b.Header.Time++; return &b },
			f.now, chain.ReasonBadGenesis, 0},
	}
	before := snapshot(t, s)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.block()
			res, err := s.AddBlock(b, tc.now)
			wantReason(t, err, tc.reason)
			if res.Status != Rejected {
				t.Fatalf("status %v", res.Status)
			}
			if tc.inner != 0 {
				if r, _ := chain.TxReasonOf(err); r != tc.inner {
					t.Fatalf("inner reason %v, want %v", r, tc.inner)
				}
			}
			if s.HasBlock(b.ID()) {
				t.Fatal("invalid block is stored")
			}
			if _, id := s.Tip(); id != f.g.ID() {
				t.Fatal("tip moved")
			}
			sameState(t, "after an invalid block", snapshot(t, s), before)
			if tc.reason == chain.ReasonInvalidTx && tc.inner != chain.ReasonBadSignature {
				// Failed against state: remembered, refused again cheaply,
				// and so is any child.
				_, err := s.AddBlock(b, tc.now)
				wantReason(t, err, chain.ReasonInvalidTx)
				if st, r, ok := s.BlockStatus(b.ID()); !ok || st != StatusInvalid || r != chain.ReasonInvalidTx {
					t.Fatalf("status %v %v %v", st, r, ok)
				}
				_, err = s.AddBlock(f.block(&b.Header, 0), tc.now)
				wantReason(t, err, chain.ReasonBadParent)
			}
		})
	}
	// The future block becomes acceptable once the clock catches up.
	f.mustAdd(s, f.block(g, 7), Connected)
	f.mustAdd(s, good, SideChain)
}

func TestReorgTooDeep(t *testing.T) {
	f := newFixture(t, 2, 1)
	s := f.open(Options{})
	g, _ := s.Tip()
	parent := g
	var main []*chain.Block
	for range MaxReorgDepth + 1 {
		b := f.block(parent, 0)
		f.mustAdd(s, b, Connected)
		main = append(main, b)
		parent = &b.Header
	}
	// Forking at genesis would disconnect 101 blocks.
	_, err := s.AddBlock(f.block(g, 1), f.now)
	wantReason(t, err, chain.ReasonReorgTooDeep)
	if r, _ := chain.ReasonOf(err); r.Penalize() {
		t.Fatal("too deep is penalized")
	}
	// Forking at height 1 disconnects exactly MaxReorgDepth: allowed.
	side := f.block(&main[0].Header, 1)
	f.mustAdd(s, side, SideChain)
	// One more main block makes the stored side branch too deep to extend.
	next := f.block(&main[len(main)-1].Header, 0)
	f.mustAdd(s, next, Connected)
	_, err = s.AddBlock(f.block(&side.Header, 0), f.now)
	wantReason(t, err, chain.ReasonReorgTooDeep)
}

// TestReorgToDepthLimit reorgs exactly MaxReorgDepth blocks, with txs,
// through the chunked path on disk.
func TestReorgToDepthLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 200 blocks")
	}
	f := newFixture(t, 4, 2)
	s := f.open(Options{Dir: t.TempDir()})
	g, _ := s.Tip()
	parent := g
	for i := range MaxReorgDepth {
		b := f.block(parent, 0, f.tx(0, f.addr(1), 1, 1, uint64(i), nil))
		f.mustAdd(s, b, Connected)
		parent = &b.Header
	}
	parent = g
	var last AddResult
	for i := range MaxReorgDepth + 1 {
		b := f.block(parent, 1, f.tx(2, f.addr(3), 2, 1, uint64(i), nil))
		want := SideChain
		if i == MaxReorgDepth {
			want = Connected
			s.forceLarge = true
		}
		last = f.mustAdd(s, b, want)
		parent = &b.Header
	}
	if len(last.Disconnected) != MaxReorgDepth || len(last.Connected) != MaxReorgDepth+1 {
		t.Fatalf("disconnected %d connected %d", len(last.Disconnected), len(last.Connected))
	}
	checkConsistent(t, f.g, s)
}

// TestInvalidBranchLeavesStateIntact: a heavier branch whose middle block
// fails against the state is not adopted; the failing block and its
// descendants are marked invalid; the best chain and state are unchanged.
func TestInvalidBranchLeavesStateIntact(t *testing.T) {
	f := newFixture(t, 3, 2)
	s := f.open(Options{})
	g, _ := s.Tip()
	a1 := f.block(g, 0, f.tx(0, f.addr(1), 10, 1, 0, nil))
	a2 := f.block(&a1.Header, 0, f.tx(0, f.addr(1), 10, 1, 1, nil))
	f.mustAdd(s, a1, Connected)
	f.mustAdd(s, a2, Connected)
	before := snapshot(t, s)

	b1 := f.block(g, 1, f.tx(1, f.addr(2), 10, 1, 0, nil))
	bad := f.tx(0, f.addr(2), chain.TestnetBalance, 1, 0, nil) // overspends (fee on top)
	b2 := f.block(&b1.Header, 1, bad)
	b3 := f.block(&b2.Header, 1)
	f.mustAdd(s, b1, SideChain)
	f.mustAdd(s, b2, SideChain) // not checked against state yet: a tie
	_, err := s.AddBlock(b3, f.now)
	wantReason(t, err, chain.ReasonBadParent)
	if r, _ := chain.TxReasonOf(err); r != chain.ReasonInsufficientBalance {
		t.Fatalf("inner reason %v", r)
	}
	if _, id := s.Tip(); id != a2.ID() {
		t.Fatal("tip moved")
	}
	sameState(t, "after a failed reorg", snapshot(t, s), before)
	blocks := checkConsistent(t, f.g, s)
	assertBlocks(t, "best chain", blocks, a1, a2)
	if st, r, _ := s.BlockStatus(b2.ID()); st != StatusInvalid || r != chain.ReasonInvalidTx {
		t.Fatalf("b2: %v %v", st, r)
	}
	if st, r, _ := s.BlockStatus(b3.ID()); st != StatusInvalid || r != chain.ReasonBadParent {
		t.Fatalf("b3: %v %v", st, r)
	}
	if st, _, _ := s.BlockStatus(b1.ID()); st != StatusSide {
		t.Fatalf("b1: %v", st)
	}
	if s.HasBlock(b2.ID()) || s.HasBlock(b3.ID()) {
		t.Fatal("invalid blocks still had")
	}
	_, err = s.AddBlock(f.block(&b3.Header, 0), f.now)
	wantReason(t, err, chain.ReasonBadParent)
	// The valid part of the branch can still win.
	b2ok := f.block(&b1.Header, 2)
	f.mustAdd(s, b2ok, SideChain)
	f.mustAdd(s, f.block(&b2ok.Header, 2), Connected)
	checkConsistent(t, f.g, s)
}

func TestReopenFromDisk(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, 3, 2)
	s, err := Open(f.g, Options{Dir: dir, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := s.Tip()
	a1 := f.block(g, 0, f.tx(0, f.addr(1), 10, 1, 0, nil))
	a2 := f.block(&a1.Header, 0, f.tx(1, f.addr(2), 10, 1, 0, nil))
	b2 := f.block(&a1.Header, 1, f.tx(2, f.addr(0), 10, 1, 0, nil))
	b3 := f.block(&b2.Header, 1)
	for _, b := range []*chain.Block{a1, a2, b2, b3} {
		if _, err := s.AddBlock(b, f.now); err != nil {
			t.Fatal(err)
		}
	}
	wantState := snapshot(t, s)
	wantSeq := s.seq
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddBlock(f.block(&b3.Header, 0), f.now); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddBlock after Close: %v", err)
	}
	if s.HasBlock(a1.ID()) {
		t.Fatal("query after Close found something")
	}

	s = f.open(Options{Dir: dir})
	if _, id := s.Tip(); id != b3.ID() {
		t.Fatalf("tip after reopen %s, want %s", id.Short(), b3.ID().Short())
	}
	if s.seq != wantSeq {
		t.Fatalf("seq %d, want %d", s.seq, wantSeq)
	}
	sameState(t, "after reopen", snapshot(t, s), wantState)
	assertBlocks(t, "best chain", checkConsistent(t, f.g, s), a1, b2, b3)
	if !s.HasBlock(a2.ID()) {
		t.Fatal("side block lost")
	}
	f.mustAdd(s, f.block(&b3.Header, 0), Connected)
}

// TestConcurrentReaders runs queries while blocks are added; the race
// detector and the invariants (a best-chain block is always readable, the
// total supply is constant) catch unsynchronized access and torn commits.
func TestConcurrentReaders(t *testing.T) {
	f := newFixture(t, 4, 2)
	s := f.open(Options{})
	s.forceLarge = true // readers must never see half of a chunked commit
	supply := f.g.TotalSupply()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				tip, id := s.Tip()
				if _, ok := s.BlockIDAt(tip.Height); !ok {
					errs <- "tip height missing from the index"
					return
				}
				if _, ok := s.Block(id); !ok {
					errs <- "tip block unreadable"
					return
				}
				var sum uint64
				s.ForEachAccount(func(_ chain.Address, a chain.Account) bool { sum += a.Balance; return true })
				if sum != supply {
					errs <- "total supply changed: a torn commit was visible"
					return
				}
			}
		})
	}
	g, _ := s.Tip()
	parent := g
	for i := range 30 {
		b := f.block(parent, 0, f.tx(i%4, f.addr((i+1)%4), 5, 1, uint64(i/4), nil))
		f.mustAdd(s, b, Connected)
		parent = &b.Header
	}
	close(stop)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
	checkConsistent(t, f.g, s)
}

func TestNilAndClosed(t *testing.T) {
	f := newFixture(t, 1, 1)
	s := f.open(Options{})
	_, err := s.AddBlock(nil, f.now)
	wantReason(t, err, chain.ReasonMalformed)
	if _, err := Open(nil, Options{}); err == nil {
		t.Fatal("nil genesis accepted")
	}
	s.Close()
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.ForEachAccount(func(chain.Address, chain.Account) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("ForEachAccount after Close: %v", err)
	}
}

// TestFullBlockOneTxnOnDisk: the worst-case block of the default genesis
// (as many minimum-size txs as fit in 1 MiB, every sender and recipient a
// different account) connects in a single badger transaction on disk, as
// the crash guarantee is stated; in memory it takes the chunked path.
func TestFullBlockOneTxnOnDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 6807 account keys")
	}
	// An empty-payload tx encodes in 153 bytes, plus a 2-byte length prefix.
	const n = (chain.DefaultMaxBlockBytes - chain.HeaderSize - 2) / (2 + 2*chain.AddressSize + 3*8 + 1 + chain.SignatureSize)
	f := newFixture(t, n, 1)
	for _, opts := range []Options{{Dir: t.TempDir()}, {}} {
		s := f.open(opts)
		g, _ := s.Tip()
		txs := make([]*chain.Tx, n)
		for i := range txs {
			// Unsigned: added with every tx marked verified.
			txs[i] = &chain.Tx{From: f.addr(i), To: chain.Address{0xee, byte(i >> 8), byte(i)}, Amount: 1, Fee: 1}
		}
		b := f.block(g, 0, txs...)
		if size := b.Size(); size > f.g.MaxBlockBytes {
			t.Fatalf("block of %d bytes", size)
		}
		res, err := s.AddBlockVerified(b, f.now, allVerified)
		if err != nil || res.Status != Connected {
			t.Fatalf("%v %v", res.Status, err)
		}
		if opts.Dir != "" && s.largeCommits != 0 {
			t.Fatal("a full block needed more than one badger transaction on disk")
		}
		if opts.Dir == "" && s.largeCommits == 0 {
			t.Fatal("expected the chunked path in memory")
		}
		checkConsistent(t, f.g, s)
	}
}

// TestBlockSize: a stored block's size comes from the index, within a few
// bytes of its encoding, for a block stored inline and one in Badger's
// value log, on disk and in memory; an unknown block has none.
func TestBlockSize(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		f := newFixture(t, 2, 1)
		s := f.open(Options{Dir: dir})
		g := f.g.Block()
		small := f.block(&g.Header, 0)
		f.mustAdd(s, small, Connected)
		big := f.block(&small.Header, 0, f.tx(0, f.addr(1), 1, 1<<20, 0, make([]byte, 100<<10)))
		f.mustAdd(s, big, Connected)
		for _, b := range []*chain.Block{small, big} {
			n, ok := s.BlockSize(b.ID())
			if want := len(b.Encode()); !ok || n < want-16 || n > want+16 {
				t.Fatalf("dir %q: size %d %v, encoding %d bytes", dir, n, ok, want)
			}
		}
		if _, ok := s.BlockSize(chain.Hash{1}); ok {
			t.Fatal("a size for an unknown block")
		}
	}
}

// TestAddBlockChecked: a block its caller checked is stored and indexed
// under the ids the check returned, as AddBlock stores it; what depends on
// stored state is still refused (an unknown parent), and ids that are not
// the block's are refused before anything is written.
func TestAddBlockChecked(t *testing.T) {
	f := newFixture(t, 2, 1)
	s := f.open(Options{})
	g, _ := s.Tip()
	b := f.block(g, 0, f.tx(0, f.addr(1), 5, 1, 0, nil), f.tx(1, f.addr(0), 3, 1, 0, []byte("x")))
	ids, err := f.g.CheckBlockIDs(b, g, f.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := b.TxIDs(); !slices.Equal(ids, want) {
		t.Fatalf("CheckBlockIDs returned %v, TxIDs %v", ids, want)
	}
	if _, err := s.AddBlockChecked(b, ids[:1], f.now); err == nil {
		t.Fatal("stored a block with the wrong number of ids")
	}
	if _, _, known := s.BlockStatus(b.ID()); known {
		t.Fatal("a refused call stored the block")
	}
	orphan := f.block(&b.Header, 0)
	oids, err := f.g.CheckBlockIDs(orphan, &b.Header, f.now, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AddBlockChecked(orphan, oids, f.now)
	wantReason(t, err, chain.ReasonUnknownParent)

	res, err := s.AddBlockChecked(b, ids, f.now)
	if err != nil || res.Status != Connected {
		t.Fatalf("status %v, err %v", res.Status, err)
	}
	for i, id := range ids {
		if loc, ok := s.TxLocation(id); !ok || loc.Block != b.ID() || loc.Index != i {
			t.Fatalf("tx %d: location %+v %v", i, loc, ok)
		}
	}
	if res, err := s.AddBlockChecked(orphan, oids, f.now); err != nil || res.Status != Connected {
		t.Fatalf("child: status %v, err %v", res.Status, err)
	}
	checkConsistent(t, f.g, s)
}
