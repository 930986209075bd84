package relay

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/syncer"
	"github.com/rumor-relay/rumor/relay/wire"
)

// The syncer's constants and the wire caps must agree, and the relay's
// verdicts must convert to the syncer's one to one.
func TestSyncConstantsAgree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if syncer.MaxPoolIDsPerResponse != wire.MaxPoolIDsPerResponse ||
			syncer.MaxHeadersPerRequest != wire.MaxHeadersPerResponse ||
			syncer.MaxTxsPerRequest != wire.MaxTxsPerRequest ||
			syncer.BlocksPerRequest > wire.MaxBlocksPerRange ||
			syncer.MaxLocatorIDs != wire.MaxLocatorIDs {
			t.Fatal("syncer limits disagree with the wire caps")
		}
		for v, want := range map[Verdict]syncer.Verdict{Accepted: syncer.Accepted, Known: syncer.Known,
			Ignored: syncer.Ignored, Invalid: syncer.Invalid, Orphan: syncer.Orphan} {
			if syncer.Verdict(v) != want || v.String() != want.String() {
				t.Errorf("verdict %v converts to %v", v, syncer.Verdict(v))
			}
		}
	})
}

// joinNode adds a node to net, starts it and connects it to peers.
func joinNode(t *testing.T, net *memnet.Network, cfg Config, peers ...*tnode) *tnode {
	t.Helper()
	j := newNode(t, net, "joiner", cfg)
	if err := j.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		net.Connect(j.id, p.id)
	}
	return j
}

// extend adds n blocks (one tx each) on top of src's tip to every node's
// chain directly, as if they had been produced and relayed while the
// joiner was away. It returns the last block's id.
func extend(t *testing.T, n int, nodes ...*tnode) ID {
	t.Helper()
	var last ID
	for i := range n {
		h, _ := nodes[0].chain.Tip()
		b, id := nodes[0].chain.Build(h, [][]byte{mkTx("sync", int(h), 120)})
		for _, nd := range nodes {
			if _, v, err := nd.chain.AddBlock(b); v != Accepted {
				t.Fatalf("block %d: %v %v", i, v, err)
			}
		}
		last = id
	}
	return last
}

// A node that joins after the network produced 250 blocks (1000 without
// -short) catches up to the same tip from several peers, and keeps up with
// blocks published while it syncs.
func TestSyncCatchUpAfterJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 1000
		if testing.Short() {
			n = 250
		}
		net, nodes := simNet(t, 3, [][2]int{{0, 1}, {1, 2}, {0, 2}}, time.Millisecond, func(int) Config {
			return testConfig(BlockCompact)
		})
		extend(t, n, nodes...)
		start := time.Now()
		j := joinNode(t, net, testConfig(BlockCompact), nodes...)
		// Meanwhile the network moves on: node 0 produces and publishes.
		var want ID
		for i := range 3 {
			h, _ := nodes[0].chain.Tip()
			b, id := nodes[0].chain.Build(uint64(1000+i), [][]byte{mkTx("live", i, 100)})
			if _, v, err := nodes[0].chain.AddBlock(b); v != Accepted {
				t.Fatalf("live block at %d: %v %v", h+1, v, err)
			}
			if err := nodes[0].r.PublishBlock(b); err != nil {
				t.Fatal(err)
			}
			want = id
		}
		ctx := waitCtx(t, 25*time.Second)
		waitBlocks(t, ctx, nodes, want)
		if err := j.chain.WaitFor(ctx, func() bool { _, id := j.chain.Tip(); return id == want }); err != nil {
			st, _ := j.r.SyncStats()
			h, _ := j.chain.Tip()
			t.Fatalf("joiner at height %d, not on the network's tip %d: %v; sync %+v", h, n+3, err, st)
		}
		el := time.Since(start)
		st, _ := j.r.SyncStats()
		for _, o := range j.offs.all() {
			t.Errorf("joiner penalized an honest peer: %+v", o)
		}
		for i, nd := range nodes {
			for _, o := range nd.offs.all() {
				if o.p == j.id {
					t.Errorf("node %d penalized the joiner: %+v", i, o)
				}
			}
		}
		t.Logf("joined %d blocks behind: on the tip after %v; sync %+v", n, el, st)
	})
}

// A node joining a network whose pools hold several thousand pending txs
// holds them within seconds.
func TestSyncPoolOnJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 5000
		if testing.Short() {
			n = 3000
		}
		net, nodes := simNet(t, 3, [][2]int{{0, 1}, {1, 2}, {0, 2}}, time.Millisecond, func(int) Config {
			return testConfig(BlockCompact)
		})
		ids := make([]ID, n)
		for i := range n {
			tx := mkTx("pending", i, 150)
			ids[i] = txID(tx)
			for _, nd := range nodes {
				nd.pool.AddTx(tx)
			}
		}
		start := time.Now()
		j := joinNode(t, net, testConfig(BlockCompact), nodes...)
		ctx := waitCtx(t, 20*time.Second)
		if err := j.pool.WaitFor(ctx, func() bool { return j.pool.Count() >= n }); err != nil {
			st, _ := j.r.SyncStats()
			t.Fatalf("joiner holds %d of %d txs: %v; sync %+v", j.pool.Count(), n, err, st)
		}
		el := time.Since(start)
		// The pool can hold the last batch before the syncer has counted
		// it: let every goroutine of the bubble settle first.
		synctest.Wait()
		if !j.pool.Has(ids...) {
			t.Fatal("joiner holds other txs than the network's")
		}
		if el > 5*time.Second {
			t.Errorf("pool sync of %d txs took %v", n, el)
		}
		st, _ := j.r.SyncStats()
		if st.PoolIDsReceived > uint64(3*wire.MaxPoolIDsPerResponse) || st.TxsFetched != uint64(n) {
			t.Errorf("sync stats %+v: want %d txs fetched once each", st, n)
		}
		for _, o := range j.offs.all() {
			t.Errorf("joiner penalized an honest peer: %+v", o)
		}
		t.Logf("joined with %d pending txs in the network: all held after %v; sync %+v", n, el, st)
	})
}

// The tip and pool-id requests over the wire, against a live relay.
func TestSyncRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := simNet(t, 2, [][2]int{{0, 1}}, 0, func(int) Config {
			c := testConfig(BlockCompact)
			c.NoSync = true
			return c
		})
		last := extend(t, 5, nodes[0])
		for i := range 10 {
			nodes[0].pool.AddTx(mkTx("req", i, 64))
		}
		ctx := waitCtx(t, 10*time.Second)
		p := nodes[0].id
		h, id, err := nodes[1].r.RequestTip(ctx, p)
		if err != nil || h != 5 || id != last {
			t.Fatalf("tip %d %s %v", h, id.Short(), err)
		}
		got, err := nodes[1].r.RequestPoolIDs(ctx, p, 4)
		if err != nil || len(got) != 4 || !slices.Equal(got, nodes[0].pool.PendingIDs(4)) {
			t.Fatalf("pool ids %d %v", len(got), err)
		}
		if _, err := nodes[1].r.RequestPoolIDs(ctx, p, wire.MaxPoolIDsPerResponse+1); err == nil {
			t.Error("over-cap pool ids request sent")
		}
		if _, ok := nodes[1].r.SyncStats(); ok {
			t.Error("sync stats with NoSync")
		}
	})
}

// Blocks near the chain's size limit: range and header answers stay
// within the requester's response cap (one maximal block), so a joiner
// catches up without calling its honest peers' answers oversize.
func TestSyncLargeBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.MaxTxBytes, cfg.MaxBlockBytes = 256<<10, 1<<20
		net, nodes := simNet(t, 2, [][2]int{{0, 1}}, time.Millisecond, func(int) Config { return cfg })
		var last ID
		for i := range 6 {
			txs := [][]byte{mkTx("big", 2*i, 200<<10), mkTx("big", 2*i+1, 200<<10)} // ~400 KB blocks
			b, id := nodes[0].chain.Build(uint64(i), txs)
			for _, nd := range nodes {
				if _, v, err := nd.chain.AddBlock(b); v != Accepted {
					t.Fatalf("block %d: %v %v", i, v, err)
				}
			}
			last = id
		}
		ctx := waitCtx(t, 20*time.Second)
		bs, err := nodes[1].r.RequestBlocks(ctx, nodes[0].id, 1, 6)
		if err != nil || len(bs) != 2 {
			t.Fatalf("range of 6 blocks of ~400 KB under a 1 MiB cap: %d blocks, %v (want 2)", len(bs), err)
		}
		j := joinNode(t, net, cfg, nodes...)
		if err := j.chain.WaitFor(ctx, func() bool { _, id := j.chain.Tip(); return id == last }); err != nil {
			st, _ := j.r.SyncStats()
			t.Fatalf("joiner did not catch up: %v; sync %+v", err, st)
		}
		if offs := j.offs.all(); len(offs) != 0 {
			t.Fatalf("joiner penalized honest peers: %v", offs)
		}
	})
}
