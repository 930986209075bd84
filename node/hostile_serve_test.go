package node

import (
	"context"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/relay/wire"
)

// TestHostileBudgetSurvivesReconnect: a peer that spent its byte budget
// on a large block is answered busy, and reconnecting does not refill the
// budget (before, its buckets were dropped on disconnect, so a reconnect
// bought another burst of up to 16 MiB).
func TestHostileBudgetSurvivesReconnect(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	// The smallest burst the node accepts (one maximal response); a
	// refill too slow to matter.
	cfg.ServeBudget = peers.LimiterConfig{BytesPerSecond: 1, ByteBurst: chain.MaxBlockSize + 64<<10}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	// A ~900 KiB block: nine fit the burst, the tenth does not.
	var txs []*chain.Tx
	for i := range 9 {
		txs = append(txs, signedTx(g, i%8, 0, uint64(i/8), 1<<20, 100<<10))
	}
	parent, _ := n.Store().Tip()
	blk := g.BuildBlock(parent, time.Now(), authorityKey(), txs)
	if _, err := n.Store().AddBlock(blk, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := newAttacker(t, g.ChainID, nil)
	if err := m.connect(n); err != nil {
		t.Fatal(err)
	}
	req := encode(t, &wire.GetBlock{ID: wire.ID(blk.ID())})
	request := func() string {
		t.Helper()
		resp, err := m.rawRequest(n, req)
		if err != nil {
			t.Fatal(err)
		}
		return describeResp(resp)
	}
	served := 0
	for range 10 {
		if request() == "*wire.Block" {
			served++
		}
	}
	if served != 9 {
		t.Fatalf("%d of 10 %d-byte blocks served under a %d-byte burst, want 9", served, len(blk.Encode()), cfg.ServeBudget.ByteBurst)
	}
	if err := m.h.Network().ClosePeer(n.ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the node to see the attacker gone", func() bool {
		return len(n.Host().Network().ConnsToPeer(m.id())) == 0
	})
	if err := m.connect(n); err != nil {
		t.Fatal(err)
	}
	if got := request(); got != "error busy" {
		t.Fatalf("after reconnecting: %s, want error busy (the budget refilled)", got)
	}
}
