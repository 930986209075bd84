package relay

import (
	"context"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

// TestBlockModeCost propagates the same 200-tx block (about 55 KB) over 10
// mocknet nodes in each block mode, every tx already in every pool, and
// logs what it cost: bytes on the wire by class, summed over all nodes,
// and the time until the last node stored it. Compact and push must spend
// no request bytes; compact must move far fewer block bytes than push.
//
// Times are indicative only: mocknet applies link latency to streamed
// writes but delivers a write followed by a close at once, so the request
// round trips of pull mode cost no latency here.
func TestBlockModeCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if testing.Short() {
			t.Skip("propagation cost comparison")
		}
		const n, ntx = 10, 200
		bodyBytes := map[BlockMode]uint64{}
		for _, mode := range []BlockMode{BlockCompact, BlockPull, BlockPush} {
			rng := rand.New(rand.NewPCG(9, 9))
			_, nodes := simNet(t, n, sparseGraph(n, 6, rng), 5*time.Millisecond,
				func(int) Config { return testConfig(mode) })
			ctx := waitCtx(t, 60*time.Second)
			var txs [][]byte
			for i := range ntx {
				tx := mkTx("cost-"+string(mode), i, 250)
				for _, nd := range nodes { // every pool holds every tx
					nd.pool.AddTx(tx)
				}
				txs = append(txs, tx)
			}
			before := make([]Stats, n)
			for i, nd := range nodes {
				before[i] = nd.r.Stats()
			}
			prod := nodes[0]
			block, bid := prod.chain.Build(1, txs)
			prod.chain.AddBlock(block)
			start := time.Now()
			if err := prod.r.PublishBlock(block); err != nil {
				t.Fatal(err)
			}
			waitBlocks(t, ctx, nodes, bid)
			took := time.Since(start)
			// Let forwarded copies and duplicates land before counting.
			eventually(t, 5*time.Second, func() error {
				for _, nd := range nodes[1:] {
					if nd.r.Stats().Accepted+nd.r.Stats().Ignored == 0 {
						return errNotYet
					}
				}
				return nil
			})
			var announce, body, req, overhead, dup uint64
			for i, nd := range nodes {
				s := nd.r.Stats()
				announce += s.Classes[classAnnounce].In - before[i].Classes[classAnnounce].In
				body += s.Classes[classBody].In - before[i].Classes[classBody].In
				req += s.Classes[classRequest].In - before[i].Classes[classRequest].In
				overhead += s.Classes[classOverhead].In - before[i].Classes[classOverhead].In
				dup += s.DuplicateBodies - before[i].DuplicateBodies
			}
			bodyBytes[mode] = announce + body
			t.Logf("%-7s block %d B: last node after %-10v bytes in over %d nodes: announce %7d  body %7d  request %5d  gossip overhead %6d  duplicate bodies %d",
				mode, len(block), took.Round(time.Millisecond), n, announce, body, req, overhead, dup)
			for _, nd := range nodes {
				_ = nd.r.Close()
			}
		}
		if bodyBytes[BlockCompact]*3 > bodyBytes[BlockPush] {
			t.Fatalf("compact moved %d block bytes, push %d: expected compact to be several times smaller", bodyBytes[BlockCompact], bodyBytes[BlockPush])
		}
	})
}

// TestTxPushMode: a node in TxPush mode gossips whole txs; nodes in the
// default announce mode take them and forward the messages unchanged, so
// every pool gets every tx without a single tx request. The same txs in
// announce mode cost requests and far fewer gossip bytes.
func TestTxPushMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, ntx = 8, 40
		gossip := map[TxMode]uint64{}
		for _, mode := range []TxMode{TxPush, TxAnnounce} {
			rng := rand.New(rand.NewPCG(3, 3))
			_, nodes := simNet(t, n, sparseGraph(n, 4, rng), 5*time.Millisecond, func(i int) Config {
				cfg := testConfig(BlockCompact)
				cfg.NoSync = true
				if i == 0 {
					cfg.TxMode = mode
				}
				return cfg
			})
			ctx := waitCtx(t, time.Minute)
			var ids []ID
			for i := range ntx {
				id, v, err := nodes[0].r.SubmitTx(mkTx("push-"+string(mode), i, 250))
				if v != Accepted {
					t.Fatal(v, err)
				}
				ids = append(ids, id)
			}
			waitPools(t, ctx, nodes, ids)
			time.Sleep(time.Second) // duplicates land
			var requests, announced, enveloped, bodies uint64
			for _, nd := range nodes {
				s := nd.r.Stats()
				requests += s.Classes[classRequest].In
				announced += s.TxAnnounceBytesIn
				enveloped += s.TxAnnounceWireBytesIn
				bodies += s.TxBodyBytesIn
				if offs := nd.offs.all(); len(offs) != 0 {
					t.Fatalf("%s mode: offenses %v", mode, offs)
				}
			}
			// Pushed txs travel in the gossip; announced ones are fetched.
			gossip[mode] = announced
			if mode == TxPush {
				gossip[mode] = bodies
			}
			t.Logf("%-8s: tx announcements in %d, tx bodies in %d, request bytes in %d", mode, announced, bodies, requests)
			if (mode == TxPush) != (requests == 0) {
				t.Fatalf("%s mode: %d request bytes", mode, requests)
			}
			if (mode == TxPush) != (announced == 0) {
				t.Fatalf("%s mode: %d bytes of tx announcements", mode, announced)
			}
			// memnet counts memnet.EnvelopeBytes around every message.
			if mode == TxAnnounce && enveloped <= announced {
				t.Fatalf("tx announcements with envelopes %d, payloads %d", enveloped, announced)
			}
			// Every node but the origin received every body at least once.
			if least := uint64((n - 1) * ntx * 250); bodies < least {
				t.Fatalf("%s mode: %d bytes of tx bodies counted, want at least %d", mode, bodies, least)
			}
			for _, nd := range nodes {
				_ = nd.r.Close()
			}
		}
		if gossip[TxPush] < 4*gossip[TxAnnounce] {
			t.Fatalf("push gossiped %d bytes, announce %d: bodies should cost several times the ids", gossip[TxPush], gossip[TxAnnounce])
		}
	})
}

// TestTxPushHostile: pushed junk costs its sender and goes no further:
// an invalid body OffenseInvalidTx, a malformed message OffenseMalformed,
// each rejected; a valid push is taken.
func TestTxPushHostile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		net := newNet(t, 0)
		v := newNode(t, net, "V", cfg)
		w := newRogue(t, net, "W", cfg, nil)
		net.ConnectLatency(v.id, w.id, 5*time.Millisecond)
		if err := v.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := waitCtx(t, time.Minute)
		push := func(data []byte) {
			t.Helper()
			if err := w.tx.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		good := mkTx("good", 0, 100)
		data, err := (&wire.TxPush{Bodies: [][]byte{good}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		push(data)
		if !v.pool.HasTx(txID(good)) || len(v.offs.all()) != 0 {
			t.Fatalf("valid push: held %v, offenses %v", v.pool.HasTx(txID(good)), v.offs.all())
		}
		bad := append([]byte{0xFF}, mkTx("bad", 0, 100)...)
		data, err = (&wire.TxPush{Nonce: 1, Bodies: [][]byte{mkTx("fine", 1, 100), bad}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		push(data)
		if !v.offs.has(w.id, OffenseInvalidTx) {
			t.Fatalf("invalid body: offenses %v", v.offs.all())
		}
		push([]byte{wire.TagTxPush, 0, 0, 0, 0, 0, 0, 0, 9, 5, 1})
		if !v.offs.has(w.id, OffenseMalformed) {
			t.Fatalf("malformed push: offenses %v", v.offs.all())
		}
	})
}

// TestTxPushTooLarge: in push mode a tx too large for any gossip message
// is announced instead, and peers fetch it.
func TestTxPushTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		cfg.TxMode = TxPush
		cfg.MaxGossipMessageSize = 64 << 10
		_, nodes := simNet(t, 2, [][2]int{{0, 1}}, 5*time.Millisecond, func(int) Config { return cfg })
		ctx := waitCtx(t, time.Minute)
		small, _, _ := nodes[0].r.SubmitTx(mkTx("small", 0, 250))
		big, v, err := nodes[0].r.SubmitTx(mkTx("big", 0, 70<<10))
		if v != Accepted {
			t.Fatal(v, err)
		}
		waitPools(t, ctx, nodes[1:], []ID{small, big})
		if s := nodes[1].r.Stats(); s.Classes[classBody].In < 70<<10 {
			t.Fatalf("the large tx did not come as a fetched body: %+v", s.Classes)
		}
	})
}
