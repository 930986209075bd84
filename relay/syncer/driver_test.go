package syncer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay/wire"
)

// Driver tests: real chain/store in-memory stores and real mempools behind
// the syncer's interfaces, and an in-memory Network that answers from other
// nodes' stores and pools. Timing is real but short (stall timeouts of tens
// of milliseconds); the tests wait on Syncer.Changed, never a fixed sleep.

const testSeed = "syncer-test"

var genesisTime = time.UnixMilli(1_700_000_000_000)

// storeChain is the syncer's Chain over a chain/store Store.
type storeChain struct {
	g   *chain.Genesis
	s   *store.Store
	now time.Time
}

func (c *storeChain) Tip() (uint64, wire.ID) { h, id := c.s.Tip(); return h.Height, wire.ID(id) }
func (c *storeChain) BlockIDAt(h uint64) (wire.ID, bool) {
	id, ok := c.s.BlockIDAt(h)
	return wire.ID(id), ok
}
func (c *storeChain) HasBlock(id wire.ID) bool { return c.s.HasBlock(chain.Hash(id)) }

func (c *storeChain) ParseHeader(b []byte) (HeaderInfo, error) {
	h, err := chain.DecodeHeader(b)
	if err != nil {
		return HeaderInfo{}, err
	}
	return HeaderInfo{ID: sha256.Sum256(b), Parent: wire.ID(h.Parent), Height: h.Height}, nil
}

func (c *storeChain) ParseBlock(b []byte) (HeaderInfo, error) {
	blk, err := chain.DecodeBlock(b)
	if err != nil {
		return HeaderInfo{}, err
	}
	return HeaderInfo{ID: wire.ID(blk.ID()), Parent: wire.ID(blk.Header.Parent), Height: blk.Header.Height}, nil
}

func (c *storeChain) AddBlock(b []byte) (wire.ID, Verdict, error) {
	blk, err := chain.DecodeBlock(b)
	if err != nil {
		return wire.ID{}, Invalid, err
	}
	res, err := c.s.AddBlock(blk, c.now)
	if err != nil {
		r, ok := chain.ReasonOf(err)
		switch {
		case ok && r == chain.ReasonUnknownParent:
			return wire.ID(blk.ID()), Orphan, err
		case ok && r.Penalize():
			return wire.ID(blk.ID()), Invalid, err
		}
		return wire.ID(blk.ID()), Ignored, err
	}
	if res.Status == store.Known {
		return wire.ID(res.ID), Known, nil
	}
	return wire.ID(res.ID), Accepted, nil
}

// memPool is the syncer's Pool over a mempool.Pool.
type memPool struct {
	p   *mempool.Pool
	now time.Time
}

func (m *memPool) HasTx(id wire.ID) bool { return m.p.Known(chain.Hash(id)) }

func (m *memPool) TxID(b []byte) (wire.ID, error) { return sha256.Sum256(b), nil }

func (m *memPool) AddTx(b []byte) (wire.ID, Verdict, error) {
	tx, err := chain.DecodeTx(b)
	if err != nil {
		return wire.ID{}, Invalid, err
	}
	res := m.p.Add(tx, m.now)
	switch {
	case res.Code.Held():
		return wire.ID(res.ID), Accepted, nil
	case res.Code == mempool.AlreadyKnown:
		return wire.ID(res.ID), Known, res.Err
	case res.Code.Penalize():
		return wire.ID(res.ID), Invalid, res.Err
	}
	return wire.ID(res.ID), Ignored, res.Err
}

type testNode struct {
	chain *storeChain
	pool  *memPool
}

func newTestNode(t testing.TB, g *chain.Genesis) *testNode {
	t.Helper()
	s, err := store.Open(g, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := genesisTime.Add(240 * time.Hour)
	p, err := mempool.New(mempool.DefaultConfig(), g, s)
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{chain: &storeChain{g: g, s: s, now: now}, pool: &memPool{p: p, now: now}}
}

// buildChain makes n signed blocks on genesis, each with txs transfers.
func buildChain(t testing.TB, g *chain.Genesis, n, txs int) []*chain.Block {
	parent := g.Block().Header
	var out []*chain.Block
	nonce := make(map[int]uint64)
	for h := 1; h <= n; h++ {
		var body []*chain.Tx
		for i := range txs {
			from := (h*txs + i) % len(g.Accounts)
			key := chain.TestnetAccountKey(testSeed, from)
			tx := &chain.Tx{From: chain.AddressOf(key), To: g.Accounts[(from+1)%len(g.Accounts)].Address,
				Amount: 1, Fee: chain.TestnetMinFee, Nonce: nonce[from]}
			nonce[from]++
			tx.Sign(g.ChainID, key)
			body = append(body, tx)
		}
		idx := -1
		for i, a := range g.Authorities {
			if a == g.ProposerAt(uint64(h)) {
				idx = i
			}
		}
		b := g.BuildBlock(&parent, time.UnixMilli(parent.Time+1000), chain.TestnetAuthorityKey(testSeed, idx), body)
		out = append(out, b)
		parent = b.Header
	}
	return out
}

func (n *testNode) addBlocks(t testing.TB, bs []*chain.Block) {
	t.Helper()
	for _, b := range bs {
		if _, v, err := n.chain.AddBlock(b.Encode()); v != Accepted {
			t.Fatalf("add block %d: %v %v", b.Header.Height, v, err)
		}
	}
}

// memNet answers the syncer's requests from other test nodes.
type memNet struct {
	mu    sync.Mutex
	nodes map[transport.PeerID]*testNode
	stall map[transport.PeerID]bool // block requests get no answer
	bad   map[transport.PeerID]bool // blocks served with a flipped byte
	calls map[string]int
}

func newMemNet() *memNet {
	return &memNet{nodes: map[transport.PeerID]*testNode{}, stall: map[transport.PeerID]bool{}, bad: map[transport.PeerID]bool{}, calls: map[string]int{}}
}

func (m *memNet) node(p transport.PeerID, call string) (*testNode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[call]++
	n := m.nodes[p]
	if n == nil {
		return nil, errors.New("not connected")
	}
	return n, nil
}

func (m *memNet) Tip(ctx context.Context, p transport.PeerID) (Tip, error) {
	n, err := m.node(p, "tip")
	if err != nil {
		return Tip{}, err
	}
	h, id := n.chain.Tip()
	return Tip{Height: h, ID: id}, nil
}

func (m *memNet) Headers(ctx context.Context, p transport.PeerID, locator []wire.ID, max int) ([][]byte, error) {
	n, err := m.node(p, "headers")
	if err != nil {
		return nil, err
	}
	start := uint64(0)
	for _, id := range locator {
		if h, ok := n.chain.s.Header(chain.Hash(id)); ok {
			if best, ok := n.chain.s.BlockIDAt(h.Height); ok && wire.ID(best) == id {
				start = h.Height
				break
			}
		}
	}
	var out [][]byte
	for h := start + 1; len(out) < max; h++ {
		id, ok := n.chain.s.BlockIDAt(h)
		if !ok {
			break
		}
		hdr, _ := n.chain.s.Header(id)
		out = append(out, hdr.Encode())
	}
	return out, nil
}

func (m *memNet) Blocks(ctx context.Context, p transport.PeerID, start uint64, count int) ([][]byte, error) {
	n, err := m.node(p, "blocks")
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	stall, bad := m.stall[p], m.bad[p]
	m.mu.Unlock()
	if stall {
		<-ctx.Done()
		return nil, fmt.Errorf("%w: %v", ErrTimeout, ctx.Err())
	}
	var out [][]byte
	for h := start; h < start+uint64(count); h++ {
		id, ok := n.chain.s.BlockIDAt(h)
		if !ok {
			break
		}
		b, _ := n.chain.s.BlockBytes(id)
		if bad {
			// Flip a byte of the last tx's signature: the header (and so
			// the block id) is unchanged, the body no longer matches its
			// tx root.
			b = append([]byte(nil), b...)
			b[len(b)-1] ^= 1
		}
		out = append(out, b)
	}
	return out, nil
}

func (m *memNet) PoolIDs(ctx context.Context, p transport.PeerID, max int) ([]wire.ID, error) {
	n, err := m.node(p, "poolids")
	if err != nil {
		return nil, err
	}
	var out []wire.ID
	for _, id := range n.pool.p.IDs(max) {
		out = append(out, wire.ID(id))
	}
	return out, nil
}

func (m *memNet) Txs(ctx context.Context, p transport.PeerID, ids []wire.ID) ([][]byte, error) {
	n, err := m.node(p, "txs")
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		if tx, ok := n.pool.p.Get(chain.Hash(id)); ok {
			out[i] = tx.Encode()
		}
	}
	return out, nil
}

type penaltyLog struct {
	mu sync.Mutex
	by map[transport.PeerID][]Offense
}

func (l *penaltyLog) hook(p transport.PeerID, o Offense) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[transport.PeerID][]Offense{}
	}
	l.by[p] = append(l.by[p], o)
}

func (l *penaltyLog) count(p transport.PeerID, o Offense) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.by[p] {
		if x == o {
			n++
		}
	}
	return n
}

// waitFor waits on the syncer's turns until cond holds.
func waitFor(t *testing.T, s *Syncer, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(limit)
	for {
		ch := s.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: not reached within %v; stats %+v", what, limit, s.Stats())
		}
	}
}

func startSyncer(t *testing.T, net Network, n *testNode, cfg Config, opts ...Option) *Syncer {
	t.Helper()
	s, err := New(net, n.chain, n.pool, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A node 300 blocks behind catches up from three peers, one of which
// stalls every block request, and ends on the same tip.
func TestSyncerCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := chain.NewTestnetGenesis("syncer-test", testSeed, 64, 3, time.Second, genesisTime)
		blocks := buildChain(t, g, 300, 2)
		net := newMemNet()
		for _, p := range []transport.PeerID{"a", "b", "staller"} {
			n := newTestNode(t, g)
			n.addBlocks(t, blocks)
			net.nodes[p] = n
		}
		net.stall["staller"] = true
		joiner := newTestNode(t, g)
		var pen penaltyLog
		// The test runs in virtual time (synctest): an honest in-memory peer
		// answers within its latency, however loaded the machine, so only
		// the staller ever looks stalled.
		s := startSyncer(t, net, joiner, Config{StallTimeout: 300 * time.Millisecond, MaxStallTimeout: 2400 * time.Millisecond},
			WithPenaltyHook(pen.hook))
		for _, p := range []transport.PeerID{"staller", "a", "b"} {
			s.AddPeer(p)
		}
		want := wire.ID(blocks[len(blocks)-1].ID())
		start := time.Now()
		waitFor(t, s, 20*time.Second, "catch up", func() bool {
			_, id := joiner.chain.Tip()
			return id == want
		})
		el := time.Since(start)
		st := s.Stats()
		if st.BlocksConnected != 300 {
			t.Errorf("connected %d blocks, want 300", st.BlocksConnected)
		}
		// The staller is dropped as a block source after its first stall
		// while the others serve, so it stalls at most a few times.
		if n := pen.count("staller", OffenseStall); n < 1 || n > 3 {
			t.Errorf("staller penalized %d times", n)
		}
		if pen.count("a", OffenseStall)+pen.count("b", OffenseStall) != 0 {
			t.Errorf("honest peers penalized: %+v", pen.by)
		}
		t.Logf("300 blocks (2 txs each) caught up in %v: %+v", el, st)
	})
}

// A node joining a network whose pools hold 3000 pending txs (5000 without
// -short) holds them all within seconds.
func TestSyncerPoolSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		total := 5000
		if testing.Short() {
			total = 3000
		}
		const perSender = 50 // below the pool's per-sender cap
		senders := total / perSender
		g := chain.NewTestnetGenesis("syncer-test", testSeed, senders+1, 1, time.Second, genesisTime)
		src := newTestNode(t, g)
		var ids []wire.ID
		for s := range senders {
			key := chain.TestnetAccountKey(testSeed, s)
			for nonce := range perSender {
				tx := &chain.Tx{From: chain.AddressOf(key), To: g.Accounts[senders].Address, Amount: 1,
					Fee: chain.TestnetMinFee + uint64(nonce%7), Nonce: uint64(nonce)}
				tx.Sign(g.ChainID, key)
				if _, v, err := src.pool.AddTx(tx.Encode()); v != Accepted {
					t.Fatalf("source pool: %v %v", v, err)
				}
				ids = append(ids, wire.ID(tx.ID()))
			}
		}
		net := newMemNet()
		net.nodes["a"] = src
		net.nodes["b"] = src // a second peer with the same pool: ids dedup
		joiner := newTestNode(t, g)
		s := startSyncer(t, net, joiner, Config{})
		start := time.Now()
		s.AddPeer("a")
		s.AddPeer("b")
		waitFor(t, s, 20*time.Second, "pool sync", func() bool { return joiner.pool.p.Stats().Count >= total })
		el := time.Since(start)
		for _, id := range ids {
			if !joiner.pool.p.Has(chain.Hash(id)) {
				t.Fatalf("tx %s missing", id.Short())
			}
		}
		if el > 5*time.Second {
			t.Errorf("pool sync of %d txs took %v", total, el)
		}
		net.mu.Lock()
		txCalls := net.calls["txs"]
		net.mu.Unlock()
		if txCalls > total/MaxTxsPerRequest+4 {
			t.Errorf("%d tx requests for %d txs", txCalls, total)
		}
		t.Logf("pool sync of %d txs in %v with %d tx requests; %+v", total, el, txCalls, s.Stats())
	})
}

// A peer that serves corrupt bodies under the right ids is penalized and
// dropped as a source; the honest header source is not blamed, and the node
// still ends on the tip.
func TestSyncerCorruptBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := chain.NewTestnetGenesis("syncer-test", testSeed, 64, 3, time.Second, genesisTime)
		blocks := buildChain(t, g, 120, 1)
		net := newMemNet()
		for _, p := range []transport.PeerID{"honest", "corrupt"} {
			n := newTestNode(t, g)
			n.addBlocks(t, blocks)
			net.nodes[p] = n
		}
		net.bad["corrupt"] = true
		joiner := newTestNode(t, g)
		var pen penaltyLog
		s := startSyncer(t, net, joiner, Config{StallTimeout: time.Second}, WithPenaltyHook(pen.hook))
		s.AddPeer("honest")
		s.AddPeer("corrupt")
		want := wire.ID(blocks[len(blocks)-1].ID())
		waitFor(t, s, 20*time.Second, "catch up", func() bool { _, id := joiner.chain.Tip(); return id == want })
		if s.Stats().InvalidBlocks > 0 && pen.count("corrupt", OffenseInvalidBlock) == 0 {
			t.Error("corrupt peer not penalized")
		}
		if n := len(pen.by["honest"]); n != 0 {
			t.Errorf("honest peer penalized: %v", pen.by["honest"])
		}
		t.Logf("stats %+v, penalties %v", s.Stats(), pen.by)
	})
}
