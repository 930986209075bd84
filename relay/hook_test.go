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

// TestTxHeldHookFromReconciliation: a decoded session tells the hook which
// of this node's txs the peer holds, without a single announcement: B
// learns that A holds the 50 txs they share, and not the 5 only B has.
func TestTxHeldHookFromReconciliation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		net := newNet(t, 5*time.Millisecond)
		var mu sync.Mutex
		heard := map[ID]bool{}
		a := newNode(t, net, "A", cfg)
		b := newNode(t, net, "B", cfg, WithTxHeldHook(func(from PeerID, ids []ID) {
			mu.Lock()
			defer mu.Unlock()
			if from != "A" {
				t.Errorf("held ids from %s", from)
			}
			for _, id := range ids {
				heard[id] = true
			}
		}))
		net.Connect("A", "B")
		for _, n := range []*tnode{a, b} {
			if err := n.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		shared := addTxs(t, a, "shared", 0, 50)
		addTxs(t, b, "shared", 0, 50)
		only := addTxs(t, b, "only-b", 0, 5)
		time.Sleep(ReconcileMinAge)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := b.r.Reconcile(ctx, "A")
		if err != nil || res.Extra != len(only) {
			t.Fatalf("session: %+v %v", res, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, id := range shared {
			if !heard[id] {
				t.Fatal("B did not learn that A holds a tx they share")
			}
		}
		for _, id := range only {
			if heard[id] {
				t.Fatal("B learned that A holds a tx A lacks")
			}
		}
	})
}
