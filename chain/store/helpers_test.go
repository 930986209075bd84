package store

import (
	"crypto/ed25519"
	"errors"
	"maps"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/rumor-relay/rumor/chain"
)

const testSeed = "store-test"

// genesisTime is fixed so tests are deterministic.
var genesisTime = time.UnixMilli(1_700_000_000_000)

// fixture builds signed blocks and transactions for a test genesis.
type fixture struct {
	t     testing.TB
	g     *chain.Genesis
	auth  []ed25519.PrivateKey // authority keys by index
	accts []ed25519.PrivateKey // funded account keys by index
	// now is the clock passed to AddBlock: far after every block built
	// here, so the future-timestamp rule never interferes unless a test
	// wants it to.
	now time.Time
}

func newFixture(t testing.TB, accounts, authorities int) *fixture {
	t.Helper()
	g := chain.NewTestnetGenesis("store-test", testSeed, accounts, authorities, time.Second, genesisTime)
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, g: g, now: genesisTime.Add(240 * time.Hour)}
	for i := range authorities {
		f.auth = append(f.auth, chain.TestnetAuthorityKey(testSeed, i))
	}
	for i := range accounts {
		f.accts = append(f.accts, chain.TestnetAccountKey(testSeed, i))
	}
	return f
}

func (f *fixture) open(opts Options) *Store {
	f.t.Helper()
	s, err := Open(f.g, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

func (f *fixture) addr(i int) chain.Address { return chain.AddressOf(f.accts[i]) }

// tx returns a signed transfer from account i.
func (f *fixture) tx(from int, to chain.Address, amount, fee, nonce uint64, payload []byte) *chain.Tx {
	tx := &chain.Tx{From: f.addr(from), To: to, Amount: amount, Fee: fee, Nonce: nonce, Payload: payload}
	tx.Sign(f.g.ChainID, f.accts[from])
	return tx
}

// block builds the child of parent, signed by the authority whose turn it
// is. variant shifts the timestamp, so that siblings with the same txs
// differ.
func (f *fixture) block(parent *chain.Header, variant int, txs ...*chain.Tx) *chain.Block {
	h := parent.Height + 1
	key := f.auth[h%uint64(len(f.auth))]
	when := f.g.SlotTime(h).Add(time.Duration(variant) * time.Millisecond)
	return f.g.BuildBlock(parent, when, key, txs)
}

func (f *fixture) mustAdd(s *Store, b *chain.Block, want AddStatus) AddResult {
	f.t.Helper()
	res, err := s.AddBlock(b, f.now)
	if err != nil {
		f.t.Fatalf("AddBlock(height %d %s): %v", b.Header.Height, b.ID().Short(), err)
	}
	if res.Status != want {
		f.t.Fatalf("AddBlock(height %d): status %v, want %v", b.Header.Height, res.Status, want)
	}
	return res
}

func wantReason(t testing.TB, err error, want chain.Reason) {
	t.Helper()
	var re *chain.RuleError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want a *chain.RuleError with reason %v", err, err, want)
	}
	if re.Reason != want {
		t.Fatalf("reason %v (%v), want %v", re.Reason, err, want)
	}
}

// snapshot reads every account at the tip.
func snapshot(t testing.TB, s *Store) map[chain.Address]chain.Account {
	t.Helper()
	m := make(map[chain.Address]chain.Account)
	if err := s.ForEachAccount(func(a chain.Address, acct chain.Account) bool {
		m[a] = acct
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// replay computes the state after blocks (genesis's children first) from
// scratch: the reference the store's incremental state must equal.
func replay(t testing.TB, g *chain.Genesis, blocks []*chain.Block) map[chain.Address]chain.Account {
	t.Helper()
	st := g.State()
	for _, b := range blocks {
		changes, err := chain.ApplyBlockTxs(b, func(a chain.Address) chain.Account { return st[a] }, g.MinFee)
		if err != nil {
			t.Fatalf("replay of block %d: %v", b.Header.Height, err)
		}
		maps.Copy(st, changes)
	}
	maps.DeleteFunc(st, func(_ chain.Address, a chain.Account) bool { return a == chain.Account{} })
	return st
}

func sameState(t testing.TB, what string, got, want map[chain.Address]chain.Account) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	for a, w := range want {
		if g, ok := got[a]; !ok || g != w {
			t.Errorf("%s: account %s: got %+v (present %v), want %+v", what, a.String()[:8], g, ok, w)
		}
	}
	for a, g := range got {
		if _, ok := want[a]; !ok {
			t.Errorf("%s: unexpected account %s: %+v", what, a.String()[:8], g)
		}
	}
	t.Fatalf("%s: state differs (%d accounts, want %d)", what, len(got), len(want))
}

// bestChain returns the best chain's blocks above genesis, read back
// through the height index, checking parent links.
func bestChain(t testing.TB, s *Store) []*chain.Block {
	t.Helper()
	tip, tipID := s.Tip()
	var out []*chain.Block
	prev := s.GenesisID()
	for h := uint64(1); h <= tip.Height; h++ {
		id, ok := s.BlockIDAt(h)
		if !ok {
			t.Fatalf("no block at height %d (tip %d)", h, tip.Height)
		}
		b, ok := s.Block(id)
		if !ok {
			t.Fatalf("block %s at height %d unreadable", id.Short(), h)
		}
		if b.Header.Parent != prev || b.Header.Height != h {
			t.Fatalf("height %d: block %s has parent %s height %d, want parent %s", h, id.Short(), b.Header.Parent.Short(), b.Header.Height, prev.Short())
		}
		if st, _, _ := s.BlockStatus(id); st != StatusConnected {
			t.Fatalf("best-chain block at %d has status %v", h, st)
		}
		prev = id
		out = append(out, b)
	}
	if prev != tipID {
		t.Fatalf("height index ends at %s, tip is %s", prev.Short(), tipID.Short())
	}
	if _, ok := s.BlockIDAt(tip.Height + 1); ok {
		t.Fatalf("height index has an entry above the tip")
	}
	return out
}

// checkConsistent verifies the whole store against a replay of its best
// chain: state, height index, tx index.
func checkConsistent(t testing.TB, g *chain.Genesis, s *Store) []*chain.Block {
	t.Helper()
	blocks := bestChain(t, s)
	want := replay(t, g, blocks)
	sameState(t, "state vs replay", snapshot(t, s), want)
	// Account answers through its cache, which earlier calls filled: every
	// replayed account, and every one the replay lacks but the cache may
	// still hold from an abandoned branch, reads as the replay says.
	for a, acct := range want {
		if got := s.Account(a); got != acct {
			t.Fatalf("Account(%s) = %+v, replay %+v", a, got, acct)
		}
	}
	s.tipAccts.mu.Lock()
	cached := s.tipAccts.lru.Keys()
	s.tipAccts.mu.Unlock()
	for _, a := range cached {
		if got := s.Account(a); got != want[a] {
			t.Fatalf("cached Account(%s) = %+v, replay %+v", a, got, want[a])
		}
	}
	for _, b := range blocks {
		id := b.ID()
		for i, tx := range b.Txs {
			loc, ok := s.TxLocation(tx.ID())
			if !ok || loc != (TxLocation{Block: id, Height: b.Header.Height, Index: i}) {
				t.Fatalf("tx %d of block %d: location %+v %v", i, b.Header.Height, loc, ok)
			}
		}
	}
	checkIndexCounts(t, s, blocks)
	return blocks
}

// countPrefix counts the keys with a prefix.
func countPrefix(t testing.TB, s *Store, p byte) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkIndexCounts verifies that only best-chain blocks have tx-index,
// height-index and undo entries (nothing left behind by a disconnect).
func checkIndexCounts(t testing.TB, s *Store, blocks []*chain.Block) {
	t.Helper()
	txs := 0
	for _, b := range blocks {
		txs += len(b.Txs)
	}
	if n := countPrefix(t, s, prefixTx); n != txs {
		t.Fatalf("%d tx-index entries, best chain has %d txs", n, txs)
	}
	if n := countPrefix(t, s, prefixHeight); n != len(blocks)+1 {
		t.Fatalf("%d height-index entries, best chain has %d blocks", n, len(blocks)+1)
	}
	if n := countPrefix(t, s, prefixUndo); n != len(blocks) {
		t.Fatalf("%d undo records, best chain has %d blocks above genesis", n, len(blocks))
	}
}
