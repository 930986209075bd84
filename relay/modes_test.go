package relay

import (
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
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
