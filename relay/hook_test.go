package relay

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestTxHeldHook: a node learns that a peer holds a tx when the peer
// fetches its body from it or announces it: on the line A-B-C, A learns
// that B holds A's tx (B fetched it), B that A and C do (A announced it,
// C fetched it), C that B does.
func TestTxHeldHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		net := newNet(t, 5*time.Millisecond)
		var mu sync.Mutex
		heard := map[PeerID]map[PeerID][]ID{} // at -> from -> ids
		hook := func(at PeerID) Option {
			return WithTxHeldHook(func(from PeerID, ids []ID) {
				mu.Lock()
				defer mu.Unlock()
				if heard[at] == nil {
					heard[at] = map[PeerID][]ID{}
				}
				heard[at][from] = append(heard[at][from], ids...)
			})
		}
		a := newNode(t, net, "A", cfg, hook("A"))
		b := newNode(t, net, "B", cfg, hook("B"))
		c := newNode(t, net, "C", cfg, hook("C"))
		net.Connect("A", "B")
		net.Connect("B", "C")
		for _, n := range []*tnode{a, b, c} {
			if err := n.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		id, v, err := a.r.SubmitTx(mkTx("own", 0, 100))
		if v != Accepted {
			t.Fatal(v, err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		has := func(at, from PeerID) bool {
			for _, x := range heard[at][from] {
				if x == id {
					return true
				}
			}
			return false
		}
		for _, w := range [][2]PeerID{{"A", "B"}, {"B", "A"}, {"B", "C"}, {"C", "B"}} {
			if !has(w[0], w[1]) {
				t.Fatalf("%s never learned that %s holds the tx: %v", w[0], w[1], heard)
			}
		}
	})
}
