package relay

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

// TestBatcherWindowAndMax runs the batcher on synctest's virtual clock: a
// lone id waits exactly one window; max ids go out at once; a flush sends
// what is pending and returns it.
func TestBatcherWindowAndMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var batches [][]ID
		var at []time.Duration
		start := time.Now()
		b := newBatcher(20*time.Millisecond, 4, func(ids []ID) {
			mu.Lock()
			batches = append(batches, append([]ID(nil), ids...))
			at = append(at, time.Since(start))
			mu.Unlock()
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { b.run(ctx); close(done) }()
		get := func() ([][]ID, []time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			return batches, at
		}

		b.add(ctx, sid(1))
		synctest.Wait()
		if bs, _ := get(); len(bs) != 0 {
			t.Fatal("published before the window")
		}
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		bs, ts := get()
		if len(bs) != 1 || len(bs[0]) != 1 || ts[0] != 20*time.Millisecond {
			t.Fatalf("window: %v at %v", bs, ts)
		}

		for i := range 9 { // 4 + 4 at once, 1 waits
			b.add(ctx, sid(10+i))
		}
		synctest.Wait()
		bs, _ = get()
		if len(bs) != 3 || len(bs[1]) != 4 || len(bs[2]) != 4 {
			t.Fatalf("max: %d batches", len(bs))
		}
		got := b.flush(ctx)
		if len(got) != 1 || got[0] != sid(18) {
			t.Fatalf("flush returned %v", got)
		}
		synctest.Wait()
		if bs, _ = get(); len(bs) != 4 {
			t.Fatalf("flush did not publish: %d batches", len(bs))
		}
		// Nothing pending: the window timer must not fire an empty batch.
		time.Sleep(time.Second)
		synctest.Wait()
		if bs, _ = get(); len(bs) != 4 {
			t.Fatal("empty batch published")
		}
		cancel()
		<-done
	})
}

// TestBatcherFlushTakesQueuedIDs: ids added just before a flush are in the
// flushed batch, however the batcher's select orders the two (a block
// announcement prefills exactly these txs).
func TestBatcherFlushTakesQueuedIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for round := range 100 {
			b := newBatcher(time.Hour, 1000, func([]ID) {})
			ctx, cancel := context.WithCancel(context.Background())
			// Queued before the loop runs: its select then finds both the
			// ids and the flush ready.
			for i := range 3 {
				b.add(ctx, sid(round*3+i))
			}
			done := make(chan struct{})
			go func() { b.run(ctx); close(done) }()
			got := b.flush(ctx)
			cancel()
			<-done
			if len(got) != 3 {
				t.Fatalf("round %d: flush returned %d ids, want 3", round, len(got))
			}
		}
	})
}

func TestFirstSeenBounded(t *testing.T) {
	f := newFirstSeen(3)
	for i := range 5 {
		if !f.record(sid(i), t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("record %d refused", i)
		}
	}
	if f.record(sid(4), t0) {
		t.Fatal("second record of an id accepted")
	}
	if f.len() != 3 {
		t.Fatalf("%d entries, cap 3", f.len())
	}
	for i := range 5 {
		ts, ok := f.get(sid(i))
		if ok != (i >= 2) {
			t.Fatalf("id %d present=%v", i, ok)
		}
		if ok && !ts.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("id %d time %v", i, ts)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("main").Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Config){
		func(c *Config) { c.ChainID = "" },
		func(c *Config) { c.ChainID = "a/b" },
		func(c *Config) { c.BlockMode = "flood" },
		func(c *Config) { c.TxMode = "flood" },
		func(c *Config) { c.TxMode = "PUSH" }, // the publisher compares the mode exactly
		func(c *Config) { c.TxBatchWindow = 0 },
		func(c *Config) { c.TxBatchMax = 1001 },
		func(c *Config) { c.FetchTimeout = 0 },
		func(c *Config) { c.MaxGossipMessageSize = 1 << 30 },
		func(c *Config) { c.FirstSeenCap = 0 },
	}
	for i, mut := range bad {
		c := DefaultConfig("main")
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Fatalf("case %d accepted", i)
		}
	}
	c := DefaultConfig("main")
	// The tag is SHA-256("main")'s first 4 bytes.
	if c.TxTopic() != "/rumor/0d6e4079/tx/3" || c.BlockTopic() != "/rumor/0d6e4079/block/3" || c.RequestProtocol() != "/rumor/main/req/2.0.0" {
		t.Fatal("protocol names")
	}
	if m, err := ParseBlockMode(" Push "); err != nil || m != BlockPush {
		t.Fatal("parse push")
	}
	if _, err := ParseBlockMode("x"); err == nil || !strings.Contains(err.Error(), "compact") {
		t.Fatal("parse x")
	}
}

// TestMetrics: a shared Metrics registers and counts what two relays do.
func TestMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m := NewMetrics(reg)
		net := newNet(t, 5*time.Millisecond)
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true // the tx must travel by gossip and fetch
		n1 := newNode(t, net, "n1", cfg, WithMetrics(m))
		n2 := newNode(t, net, "n2", cfg, WithMetrics(m))
		for _, nd := range []*tnode{n1, n2} {
			if err := nd.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		net.Connect(n1.id, n2.id)
		tx := mkTx("metrics", 0, 100)
		if _, v, _ := n1.r.SubmitTx(tx); v != Accepted {
			t.Fatal("submit")
		}
		ctx := waitCtx(t, 10*time.Second)
		waitPools(t, ctx, []*tnode{n2}, []ID{txID(tx)})
		synctest.Wait()
		mf, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		need := map[string]bool{"rumor_relay_fetches_total": false, "rumor_relay_bytes_total": false,
			"rumor_relay_announcements_total": false, "rumor_relay_mesh_peers": false}
		for _, f := range mf {
			if _, ok := need[f.GetName()]; ok {
				need[f.GetName()] = true
			}
		}
		for name, ok := range need {
			if !ok {
				t.Errorf("metric %s missing", name)
			}
		}
	})
}

// TestCloseLeavesNoGoroutines starts and closes relays and checks that none
// of the relay's goroutines survive Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	net, nodes := simNet(t, 3, sparseGraph(3, 0, nil), 0, func(int) Config { return testConfig(BlockCompact) })
	tx := mkTx("leak", 0, 100)
	nodes[0].r.SubmitTx(tx)
	waitPools(t, waitCtx(t, 10*time.Second), nodes, []ID{txID(tx)})
	for _, nd := range nodes {
		if err := nd.r.Close(); err != nil {
			t.Fatal(err)
		}
	}
	net.Close()
}
