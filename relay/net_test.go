package relay

import (
	"fmt"
	"github.com/rumor-relay/rumor/relay/relaytest"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

// TestTxsAndBlocksReachEveryNode runs 8 relays on a memnet sparse random
// graph in each block mode: txs submitted at random nodes reach every pool,
// then a block of those txs published by one node reaches every chain. The
// request-protocol bytes spent on the block show the modes apart: compact
// and push need none (every tx is in every pool), pull fetches the block
// at every hop.
func TestTxsAndBlocksReachEveryNode(t *testing.T) {
	for _, mode := range []BlockMode{BlockCompact, BlockPull, BlockPush} {
		t.Run(string(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n, ntx = 8, 40
				rng := rand.New(rand.NewPCG(1, uint64(len(mode))))
				_, nodes := simNet(t, n, sparseGraph(n, 4, rng), 2*time.Millisecond,
					func(int) Config { return testConfig(mode) })
				ctx := waitCtx(t, 30*time.Second)

				var txs [][]byte
				var ids []ID
				for i := range ntx {
					tx := mkTx(string(mode), i, 200)
					id, v, err := nodes[rng.IntN(n)].r.SubmitTx(tx)
					if v != Accepted || err != nil || id != txID(tx) {
						t.Fatalf("submit: %v %v", v, err)
					}
					txs = append(txs, tx)
					ids = append(ids, id)
				}
				waitPools(t, ctx, nodes, ids)
				for i, nd := range nodes {
					for _, id := range ids {
						if _, ok := nd.r.FirstSeen(id); !ok {
							t.Fatalf("node %d: no first-seen for tx %s", i, id.Short())
						}
					}
				}

				reqBefore := make([]uint64, n)
				for i, nd := range nodes {
					reqBefore[i] = nd.r.Stats().Protocols[protoRequest].In
				}
				prod := nodes[3]
				block, bid := prod.chain.Build(7, txs)
				if _, v, err := prod.chain.AddBlock(block); v != Accepted {
					t.Fatalf("producer AddBlock: %v %v", v, err)
				}
				if err := prod.r.PublishBlock(block); err != nil {
					t.Fatal(err)
				}
				waitBlocks(t, ctx, nodes, bid)

				// First-seen is recorded right after the chain stores the block.
				eventually(t, 5*time.Second, func() error {
					for i, nd := range nodes {
						if _, ok := nd.r.FirstSeen(bid); !ok {
							return fmt.Errorf("node %d: no first-seen for the block", i)
						}
					}
					return nil
				})
				var reqDelta uint64
				for i, nd := range nodes {
					if h, _ := nd.chain.Tip(); h != 1 {
						t.Fatalf("node %d: tip height %d", i, h)
					}
					reqDelta += nd.r.Stats().Protocols[protoRequest].In - reqBefore[i]
				}
				switch mode {
				case BlockPull:
					if reqDelta < uint64((n-1)*len(block)) {
						t.Fatalf("pull: %d request bytes in for a %d-byte block on %d nodes", reqDelta, len(block), n-1)
					}
				default:
					if reqDelta != 0 {
						t.Fatalf("%s: %d request bytes spent on a block whose txs every pool holds", mode, reqDelta)
					}
				}
				st := prod.r.Stats()
				if st.AnnouncementsPublished == 0 || st.AnnouncementsOut == 0 || st.BytesOut == 0 {
					t.Fatalf("producer stats: %+v", st)
				}
			})
		})
	}

}

// TestCompactBlockMissingTxs publishes a compact block with txs no other
// node has seen: receivers rebuild what they can from their pools and fetch
// the rest by index from their announcer (getblocktxn). Txs submitted just
// before the block travel prefilled.
func TestCompactBlockMissingTxs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 6
		rng := rand.New(rand.NewPCG(2, 2))
		_, nodes := simNet(t, n, sparseGraph(n, 2, rng), 2*time.Millisecond,
			func(int) Config {
				c := testConfig(BlockCompact)
				c.TxBatchWindow = 10 * time.Second // hold local announcements until the block flushes them
				c.TxBatchMax = 100
				return c
			})
		ctx := waitCtx(t, 30*time.Second)
		prod := nodes[0]

		// Known txs: announced by another node, so every pool holds them.
		var known, secret, fresh [][]byte
		for i := range 5 {
			tx := mkTx("known", i, 150)
			if _, v, _ := nodes[1].r.SubmitTx(tx); v != Accepted {
				t.Fatal("submit")
			}
			known = append(known, tx)
		}
		nodes[1].r.batch.flush(ctx)
		ids := make([]ID, len(known))
		for i, tx := range known {
			ids[i] = txID(tx)
		}
		waitPools(t, ctx, nodes, ids)

		// Secret txs: only in the producer's pool, never announced.
		for i := range 4 {
			tx := mkTx("secret", i, 300)
			if _, v, _ := prod.pool.AddTx(tx); v != Accepted {
				t.Fatal("add")
			}
			secret = append(secret, tx)
		}
		// Fresh txs: submitted at the producer, still in its batch window.
		for i := range 3 {
			tx := mkTx("fresh", i, 100)
			if _, v, _ := prod.r.SubmitTx(tx); v != Accepted {
				t.Fatal("submit fresh")
			}
			fresh = append(fresh, tx)
		}
		all := append(append(append([][]byte{}, secret[:2]...), known...), append(fresh, secret[2:]...)...)
		block, bid := prod.chain.Build(1, all)
		if _, v, _ := prod.chain.AddBlock(block); v != Accepted {
			t.Fatal("producer add")
		}
		// The fresh txs are still pending: PublishBlock must flush and prefill
		// them. Check the announcement it builds.
		before := make([]uint64, n)
		for i, nd := range nodes {
			before[i] = nd.r.Stats().BodiesReceived
		}
		if err := prod.r.PublishBlock(block); err != nil {
			t.Fatal(err)
		}
		waitBlocks(t, ctx, nodes, bid)
		for i, nd := range nodes[1:] {
			got := nd.r.Stats().BodiesReceived - before[i+1]
			// Each receiver fetched the 4 secret txs by index; the fresh
			// ones came prefilled (their announcements may also arrive, but
			// are then known and fetch nothing new).
			if got < uint64(len(secret)) {
				t.Fatalf("node %d received %d bodies, want >= %d", i+1, got, len(secret))
			}
			if f := nd.r.Stats().Fetches; f == 0 {
				t.Fatalf("node %d made no fetch", i+1)
			}
		}
	})
}

// TestCompactOfPrefillsAndShortIDs checks the compact announcement itself.
func TestCompactOfPrefillsAndShortIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		txs := [][]byte{mkTx("a", 0, 50), mkTx("b", 1, 50), mkTx("c", 2, 50)}
		hdr := relaytest.EncodeHeader(1, ID{}, relaytest.TxRoot(txs), 0)
		pool := relaytest.NewPool()
		r := &Relay{pool: pool}
		c, err := r.compactOf(hdr, txs, map[ID]bool{txID(txs[1]): true})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.ShortIDs) != 2 || len(c.Prefilled) != 1 || c.Prefilled[0].Index != 1 {
			t.Fatalf("compact: %d short ids, prefilled %+v", len(c.ShortIDs), c.Prefilled)
		}
		for _, tx := range txs {
			pool.AddTx(tx)
		}
		key := wire.NewShortIDKey(c.Header, c.Nonce)
		got := pool.LookupShortIDs(key.ShortID, c.ShortIDs)
		if string(got[0]) != string(txs[0]) || string(got[1]) != string(txs[2]) {
			t.Fatal("short ids do not resolve to the block's txs")
		}
	})
}

// TestUnknownParentFetchesAncestors publishes only the last of three new
// blocks: receivers find its parent unknown, fetch the ancestors by id from
// the announcer, and store all three. With the depth limit below the gap,
// nothing is stored.
func TestUnknownParentFetchesAncestors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		depth int
		want  bool
	}{{"within depth", 4, true}, {"beyond depth", 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const n = 4
				_, nodes := simNet(t, n, sparseGraph(n, 0, nil), 2*time.Millisecond, func(int) Config {
					c := testConfig(BlockCompact)
					c.MaxOrphanDepth = tc.depth
					// The ancestor walk alone: sync would (rightly) fill a
					// gap beyond the limit, see TestSyncCatchUpAfterJoin.
					c.NoSync = true
					return c
				})
				ctx := waitCtx(t, 30*time.Second)
				prod := nodes[0]
				var ids []ID
				var last []byte
				for i := range 3 {
					b, id := prod.chain.Build(uint64(i), [][]byte{mkTx("anc", i, 80)})
					prod.pool.AddTx(mkTx("anc", i, 80))
					if _, v, err := prod.chain.AddBlock(b); v != Accepted {
						t.Fatalf("add %d: %v %v", i, v, err)
					}
					ids = append(ids, id)
					last = b
				}
				if err := prod.r.PublishBlock(last); err != nil {
					t.Fatal(err)
				}
				if tc.want {
					waitBlocks(t, ctx, nodes, ids...)
					for i, nd := range nodes[1:] {
						if h, tip := nd.chain.Tip(); h != 3 || tip != ids[2] {
							t.Fatalf("node %d tip %d", i+1, h)
						}
					}
					return
				}
				// Both neighbours of the producer (ring of 4) validate and
				// give up; nothing is stored anywhere.
				eventually(t, 10*time.Second, func() error {
					ign := nodes[1].r.Stats().Ignored + nodes[3].r.Stats().Ignored
					if ign < 2 {
						return fmt.Errorf("ignored %d", ign)
					}
					return nil
				})
				for i, nd := range nodes[1:] {
					if h, _ := nd.chain.Tip(); h != 0 {
						t.Fatalf("node %d stored blocks beyond the ancestor limit", i+1)
					}
				}
			})
		})
	}

}
