package relay

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// tnode is one relay on a real libp2p host with the in-memory test chain.
type tnode struct {
	h     host.Host
	r     *Relay
	chain *testChain
	pool  *testPool
	offs  *offenseLog
}

type offenseRec struct {
	p peer.ID
	o Offense
}

// offenseLog records what the penalty hook receives.
type offenseLog struct {
	notifier
	mu   sync.Mutex
	list []offenseRec
}

func (l *offenseLog) hook(p peer.ID, o Offense) {
	l.mu.Lock()
	l.list = append(l.list, offenseRec{p, o})
	l.mu.Unlock()
	l.notify()
}

func (l *offenseLog) has(p peer.ID, o Offense) bool {
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
	return cfg
}

func newNode(t testing.TB, h host.Host, cfg Config, opts ...Option) *tnode {
	t.Helper()
	pool := newTestPool()
	n := &tnode{h: h, pool: pool, chain: newTestChain(pool), offs: &offenseLog{}}
	r, err := New(h, n.chain, pool, cfg, append([]Option{WithPenaltyHook(n.offs.hook)}, opts...)...)
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

// mockNet builds n relays on a mocknet connected as edges (with the given
// link latency) and waits until every node's mesh holds all its neighbours
// on both topics.
func mockNet(t testing.TB, n int, edges [][2]int, latency time.Duration, cfg func(i int) Config) (mocknet.Mocknet, []*tnode) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	nodes := make([]*tnode, n)
	for i := range nodes {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = newNode(t, h, cfg(i))
	}
	connect(t, mn, nodes, edges)
	ctx := context.Background()
	for _, nd := range nodes {
		if err := nd.r.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitMesh(t, nodes)
	return mn, nodes
}

func connect(t testing.TB, mn mocknet.Mocknet, nodes []*tnode, edges [][2]int) {
	t.Helper()
	for _, e := range edges {
		a, b := nodes[e[0]].h.ID(), nodes[e[1]].h.ID()
		if _, err := mn.LinkPeers(a, b); err != nil {
			t.Fatal(err)
		}
		if _, err := mn.ConnectPeers(a, b); err != nil {
			t.Fatal(err)
		}
	}
}

// waitMesh waits until each node's tx and block meshes contain every
// connected peer (degrees here are at most GossipSub's D).
func waitMesh(t testing.TB, nodes []*tnode) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		for i, nd := range nodes {
			conns := nd.h.Network().Peers()
			tx, blk := nd.r.MeshPeers()
			for _, p := range conns {
				if !slices.Contains(tx, p) || !slices.Contains(blk, p) {
					return fmt.Errorf("node %d: mesh tx %d block %d of %d peers", i, len(tx), len(blk), len(conns))
				}
			}
		}
		return nil
	})
}

// eventually polls cond until it returns nil or d passes. It is for state
// that offers no event to wait on (GossipSub's mesh, counters).
func eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", d, err)
		}
		<-tick.C
	}
}

func waitCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitPools waits until every node holds (or included) every id.
func waitPools(t testing.TB, ctx context.Context, nodes []*tnode, ids []ID) {
	t.Helper()
	for i, nd := range nodes {
		if err := nd.pool.waitFor(ctx, func() bool { return nd.pool.has(ids...) }); err != nil {
			missing := 0
			for _, id := range ids {
				if !nd.pool.HasTx(id) {
					missing++
				}
			}
			t.Fatalf("node %d lacks %d of %d txs: %v", i, missing, len(ids), err)
		}
	}
}

// waitBlocks waits until every node stores every block.
func waitBlocks(t testing.TB, ctx context.Context, nodes []*tnode, ids ...ID) {
	t.Helper()
	for i, nd := range nodes {
		err := nd.chain.waitFor(ctx, func() bool {
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

func txID(b []byte) ID { return sha256.Sum256(b) }

var errNotYet = errors.New("not yet")
