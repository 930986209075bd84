package relay

import (
	"context"
	"errors"
	"fmt"
	"github.com/rumor-relay/rumor/relay/relaytest"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
)

// The network tests run relays on package memnet's in-process transport
// inside a testing/synctest bubble: time is virtual, so a test that waits
// for a 2 s fetch timeout takes no wall time, and every latency it asserts
// is exact. Package relay/p2p has the tests on real libp2p hosts.

// tnode is one relay on a memnet node with the in-memory test chain.
type tnode struct {
	id    PeerID
	tr    *memnet.Node
	r     *Relay
	chain *relaytest.Chain
	pool  *relaytest.Pool
	offs  *offenseLog
}

type offenseRec struct {
	p PeerID
	o Offense
}

// offenseLog records what the penalty hook receives.
type offenseLog struct {
	relaytest.Notifier
	mu   sync.Mutex
	list []offenseRec
}

func (l *offenseLog) hook(p PeerID, o Offense) {
	l.mu.Lock()
	l.list = append(l.list, offenseRec{p, o})
	l.mu.Unlock()
	l.Notify()
}

func (l *offenseLog) has(p PeerID, o Offense) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.list, offenseRec{p, o})
}

func (l *offenseLog) all() []offenseRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.list)
}

// testConfig shortens the timeouts so fallback tests run in about a second.
func testConfig(mode BlockMode) Config {
	cfg := DefaultConfig("testnet")
	cfg.BlockMode = mode
	cfg.FetchTimeout = 500 * time.Millisecond
	cfg.BlockFetchTimeout = time.Second
	// Reconciliation off: its sessions would add requests (and, with
	// rogue peers, offenses) the tests count; the reconciliation tests
	// turn it on.
	cfg.NoReconcile = true
	return cfg
}

// newNode adds a node named id to net with a relay (not started).
func newNode(t testing.TB, net *memnet.Network, id PeerID, cfg Config, opts ...Option) *tnode {
	t.Helper()
	pool := relaytest.NewPool()
	tr := net.Add(id)
	n := &tnode{id: id, tr: tr, pool: pool, chain: relaytest.NewChain(pool), offs: &offenseLog{}}
	r, err := New(tr, n.chain, pool, cfg, append([]Option{WithPenaltyHook(n.offs.hook)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	n.r = r
	t.Cleanup(func() { _ = r.Close() })
	return n
}

// sparseGraph returns the edges of a ring over n nodes plus extra random
// chords: connected, every degree small (ring 2 + chords).
func sparseGraph(n, extra int, rng *rand.Rand) [][2]int {
	var edges [][2]int
	has := make(map[[2]int]bool)
	add := func(a, b int) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if has[[2]int{a, b}] {
			return
		}
		has[[2]int{a, b}] = true
		edges = append(edges, [2]int{a, b})
	}
	for i := range n {
		add(i, (i+1)%n)
	}
	for range extra {
		add(rng.IntN(n), rng.IntN(n))
	}
	return edges
}

// newNet returns an empty memnet closed when the test ends (after the
// relays, which close first).
func newNet(t testing.TB, latency time.Duration) *memnet.Network {
	net := memnet.New(latency)
	t.Cleanup(net.Close)
	return net
}

// simNet builds n started relays on a memnet connected as edges with the
// given link latency. Call it inside a synctest bubble.
func simNet(t testing.TB, n int, edges [][2]int, latency time.Duration, cfg func(i int) Config) (*memnet.Network, []*tnode) {
	t.Helper()
	net := newNet(t, latency)
	nodes := make([]*tnode, n)
	for i := range nodes {
		nodes[i] = newNode(t, net, PeerID(fmt.Sprintf("n%02d", i)), cfg(i))
	}
	for _, e := range edges {
		net.Connect(nodes[e[0]].id, nodes[e[1]].id)
	}
	for _, nd := range nodes {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return net, nodes
}

// eventually polls cond until it returns nil or d passes (see
// relaytest.Eventually).
func eventually(t testing.TB, d time.Duration, cond func() error) { relaytest.Eventually(t, d, cond) }

func waitCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitPools waits until every node holds (or included) every id.
func waitPools(t testing.TB, ctx context.Context, nodes []*tnode, ids []ID) {
	t.Helper()
	for i, nd := range nodes {
		if err := nd.pool.WaitFor(ctx, func() bool { return nd.pool.Has(ids...) }); err != nil {
			missing := 0
			for _, id := range ids {
				if !nd.pool.HasTx(id) {
					missing++
				}
			}
			for j, x := range nodes {
				t.Logf("node %d: %+v offs %v", j, x.r.Stats(), x.offs.all())
			}
			t.Fatalf("node %d lacks %d of %d txs: %v", i, missing, len(ids), err)
		}
	}
}

// waitBlocks waits until every node stores every block.
func waitBlocks(t testing.TB, ctx context.Context, nodes []*tnode, ids ...ID) {
	t.Helper()
	for i, nd := range nodes {
		err := nd.chain.WaitFor(ctx, func() bool {
			for _, id := range ids {
				if !nd.chain.HasBlock(id) {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatalf("node %d lacks a block: %v", i, err)
		}
	}
}

// mkTx returns a distinct valid test tx of size bytes.
func mkTx(tag string, i, size int) []byte {
	b := fmt.Appendf(nil, "%s-%d-", tag, i)
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

var errNotYet = errors.New("not yet")

// txID is the test chain's tx id.
func txID(b []byte) ID { return relaytest.TxID(b) }
