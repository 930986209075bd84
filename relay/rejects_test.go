package relay

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

// TestRecentRejects: once a tx's body has failed validation, further
// announcements naming it (new messages, mixed with fresh ids so GossipSub
// cannot drop them as duplicates) cost no fetch of it, until the chain's
// tip moves (a new block may change what is valid, as in Bitcoin Core).
// Before, every such announcement made the node fetch and validate the
// same junk again, holding a validation slot each time.
func TestRecentRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		bad := append([]byte{0xFF}, mkTx("bad", 0, 200)...)
		var asked atomic.Int64
		net := newNet(t, 0)
		v := newNode(t, net, "V", cfg)
		w := newRogue(t, net, "W", cfg, serveOnly(bad, &asked))
		net.ConnectLatency(v.id, w.id, 5*time.Millisecond)
		if err := v.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := waitCtx(t, time.Minute)
		announce := func(k int) {
			t.Helper()
			ids := []ID{txID(bad)}
			if k > 0 {
				ids = append(ids, txID(mkTx(fmt.Sprint("filler", k), 0, 100)))
			}
			data, err := (&wire.TxAnnounce{IDs: ids}).Encode()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.tx.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // past any fetch and its timeout
		}
		announce(0)
		if !v.offs.has(w.id, OffenseInvalidTx) || asked.Load() != 1 {
			t.Fatalf("first announcement: asked %d times, offenses %v", asked.Load(), v.offs.all())
		}
		for k := 1; k <= 20; k++ {
			announce(k)
		}
		if n := asked.Load(); n != 1 {
			t.Fatalf("the rejected tx was fetched %d times, want once", n)
		}
		// A new tip forgets the verdicts.
		b, _ := v.chain.Build(1, nil)
		if _, vd, err := v.chain.AddBlock(b); vd != Accepted {
			t.Fatal(vd, err)
		}
		announce(21)
		if n := asked.Load(); n != 2 {
			t.Fatalf("after a new tip the tx was fetched %d times in all, want 2", n)
		}
	})
}

// TestRecentRejectsBound: the table holds at most MaxRecentRejects ids,
// evicting the oldest.
func TestRecentRejectsBound(t *testing.T) {
	var r recentRejects
	tip := ID{7}
	id := func(i int) ID { return ID{byte(i), byte(i >> 8), byte(i >> 16)} }
	for i := range MaxRecentRejects + 10 {
		r.add(id(i), tip)
	}
	if len(r.ids.m) != MaxRecentRejects || len(r.ids.ring) != MaxRecentRejects {
		t.Fatalf("%d ids, ring %d; cap %d", len(r.ids.m), len(r.ids.ring), MaxRecentRejects)
	}
	if r.has(id(0), tip) || !r.has(id(MaxRecentRejects+9), tip) {
		t.Fatal("not the oldest evicted")
	}
	if r.has(id(20), ID{8}) || len(r.ids.m) != 0 {
		t.Fatal("a new tip kept the table")
	}
}
