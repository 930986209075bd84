package syncer

import (
	"testing"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

func poolOf(from, to int) map[wire.ID][]byte {
	m := make(map[wire.ID][]byte, to-from)
	for i := from; i < to; i++ {
		b := txBody(i)
		m[txID(b)] = b
	}
	return m
}

// A node that joins (caught up on blocks) pulls the pools of its peers in
// bounded batches, gets a withheld tx from another peer that listed it,
// and penalizes a peer that serves a body under the wrong id.
func TestCorePoolSync(t *testing.T) {
	full := genChain(nil, 10, "main")
	s := newSim(t, full, CoreConfig{})
	// a lists 0..2999, b 1000..5999 (MaxPoolIDsPerResponse ids); both
	// list the withheld and the wrong one.
	withheld, wrong := txID(txBody(2000)), txID(txBody(2500))
	a := &simPeer{id: "a", chain: full, pool: poolOf(0, 3000),
		withhold: map[wire.ID]bool{withheld: true}, wrongBody: map[wire.ID]bool{wrong: true}}
	b := &simPeer{id: "b", chain: full, pool: poolOf(1000, 6000), latency: 80 * time.Millisecond}
	c := &simPeer{id: "c", chain: full, stallAll: true} // never answers
	s.addPeer(a)
	s.addPeer(b)
	s.addPeer(c)
	all := poolOf(0, 6000)
	s.runUntil(10*time.Second, func() bool {
		for id := range all {
			if !s.pool.HasTx(id) {
				return false
			}
		}
		return true
	})
	if got := len(s.pool.txs); got != 6000 {
		t.Errorf("pool holds %d txs, want 6000", got)
	}
	if s.penalized("a", OffenseMismatch) != 1 {
		t.Errorf("wrong body not penalized once: %+v", s.penalties)
	}
	if s.penalized("b", OffenseMismatch)+s.penalized("b", OffenseStall) != 0 {
		t.Errorf("honest peer penalized: %+v", s.penalties)
	}
	if a.txReqs+b.txReqs > 6000/MaxTxsPerRequest+8 {
		t.Errorf("%d tx requests for 6000 txs at %d per request", a.txReqs+b.txReqs, MaxTxsPerRequest)
	}
	t.Logf("pool sync of %d txs: %v simulated, %d+%d requests", len(s.pool.txs), s.now.Sub(t0), a.txReqs, b.txReqs)
}

// Pool sync waits until the node is no longer behind.
func TestCorePoolSyncWaitsForCatchUp(t *testing.T) {
	full := genChain(nil, 100, "main")
	s := newSim(t, full[:1], CoreConfig{})
	p := &simPeer{id: "p", chain: full, pool: poolOf(0, 50)}
	s.addPeer(p)
	asked := false
	s.hook = func(a Action) {
		if _, ok := a.(*GetPoolIDs); ok && !asked {
			asked = true
			if tip, _ := s.chain.Tip(); tip != 100 {
				t.Errorf("pool ids asked at height %d, before catching up to 100", tip)
			}
		}
	}
	s.runUntil(10*time.Second, func() bool { return len(s.pool.txs) == 50 })
}

// The wanted set is capped; the rest of a huge listing is dropped.
func TestCorePoolWantedCapped(t *testing.T) {
	full := genChain(nil, 1, "main")
	c := NewCore(CoreConfig{}, newFakeChain(full), &fakePool{txs: map[wire.ID][]byte{}}, t0)
	for i := range 4 {
		c.AddPeer(peerID(i), t0)
	}
	var pools []*GetPoolIDs
	for _, a := range c.Actions() {
		if g, ok := a.(*GetTip); ok {
			c.TipResult(g.Req, Tip{Height: 1, ID: full[1].ID}, nil, t0)
		}
	}
	for _, a := range c.Actions() {
		if g, ok := a.(*GetPoolIDs); ok {
			pools = append(pools, g)
		}
	}
	if len(pools) != MaxPoolIDRequestsInFlight {
		t.Fatalf("%d pool id requests, want %d", len(pools), MaxPoolIDRequestsInFlight)
	}
	n := 0
	for _, g := range pools {
		ids := make([]wire.ID, g.Max)
		for i := range ids {
			ids[i] = txID(txBody(n))
			n++
		}
		c.PoolIDsResult(g.Req, ids, nil, t0)
		if len(c.wanted) > MaxWantedTxs {
			t.Fatalf("%d wanted", len(c.wanted))
		}
	}
	if len(c.wanted) != MaxWantedTxs {
		t.Errorf("%d wanted after %d distinct ids, want the cap %d", len(c.wanted), n, MaxWantedTxs)
	}
	// Over-long answer: penalized, nothing taken.
	c2 := NewCore(CoreConfig{}, newFakeChain(full), &fakePool{}, t0)
	c2.AddPeer("x", t0)
	g := c2.Actions()[0].(*GetTip)
	c2.TipResult(g.Req, Tip{Height: 1, ID: full[1].ID}, nil, t0)
	gp := c2.Actions()[0].(*GetPoolIDs)
	c2.PoolIDsResult(gp.Req, make([]wire.ID, gp.Max+1), nil, t0)
	if p, ok := c2.Actions()[0].(*Penalize); !ok || p.Offense != OffenseUnrequested || len(c2.wanted) != 0 {
		t.Errorf("over-long pool answer not rejected")
	}
}

// Ids listed only by a peer that then disconnects are forgotten, so they
// do not hold wanted slots forever; ids it shared with another peer are
// fetched from that one.
func TestCorePoolRemovePeerForgetsItsIDs(t *testing.T) {
	full := genChain(nil, 1, "main")
	s := newSim(t, full, CoreConfig{})
	gone := &simPeer{id: "gone", chain: full, pool: poolOf(0, 2000), latency: time.Second}
	stay := &simPeer{id: "stay", chain: full, pool: poolOf(1500, 2500), latency: 10 * time.Millisecond}
	s.addPeer(gone)
	s.addPeer(stay)
	s.runUntil(10*time.Second, func() bool { return s.core.stats.PoolIDsReceived == 3000 })
	s.core.RemovePeer("gone", s.now)
	s.process()
	s.runUntil(time.Minute, func() bool { return len(s.core.wanted) == 0 && s.core.txReqs == 0 })
	for id := range poolOf(1500, 2500) {
		if !s.pool.HasTx(id) {
			t.Fatalf("tx %s listed by the staying peer not fetched", id.Short())
		}
	}
}
