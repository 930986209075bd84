package relay

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
)

// TestTxArrivalsLog: since reports the ids accepted after a mark, in
// order; a reader that fell more than MaxTxArrivals behind is told so and
// gets the newest MaxTxArrivals; the wake channel closes at the next
// arrival only.
func TestTxArrivalsLog(t *testing.T) {
	var a txArrivals
	id := func(i int) ID { return ID{byte(i), byte(i >> 8)} }
	a.add(id(0))
	seq := a.mark()
	a.add(id(1))
	a.add(id(2))
	var got []ID
	next, lost, wake := a.since(seq, func(x ID) { got = append(got, x) })
	if lost || next != 3 || len(got) != 2 || got[0] != id(1) || got[1] != id(2) {
		t.Fatalf("since mark: %v lost %v next %d", got, lost, next)
	}
	select {
	case <-wake:
		t.Fatal("woken with nothing new")
	default:
	}
	a.add(id(3))
	select {
	case <-wake:
	default:
		t.Fatal("not woken by an arrival")
	}
	for i := range MaxTxArrivals + 10 {
		a.add(id(100 + i))
	}
	got = got[:0]
	next, lost, _ = a.since(next, func(x ID) { got = append(got, x) })
	if !lost || len(got) != MaxTxArrivals || got[0] != id(110) || next != a.mark() {
		t.Fatalf("behind the log: lost %v, %d ids from %v", lost, len(got), got[0])
	}
}

// TestBlockTxnRacesThePool: X hears a compact block from its proposer P
// over a 100 ms link before one of its txs, which X is meanwhile fetching
// from Q over a 45 ms link. The getblocktxn to P would take 200 ms; the
// block is assembled as soon as the tx reaches X's pool, and the
// getblocktxn is withdrawn.
func TestBlockTxnRacesThePool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.FetchTimeout = time.Second
		cfg.PrefillAge = -1
		net := memnet.New(0)
		t.Cleanup(net.Close)
		p := newNode(t, net, "p", cfg)
		x := newNode(t, net, "x", cfg)
		q := newNode(t, net, "q", cfg)
		net.ConnectLatency(p.id, x.id, 100*time.Millisecond)
		net.ConnectLatency(q.id, x.id, 45*time.Millisecond)
		for _, n := range []*tnode{p, x, q} {
			if err := n.r.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // meshes form
		tx := mkTx("late", 0, 200)
		p.pool.AddTx(tx) // P holds it, but never announced it
		block, bid := p.chain.Build(1, [][]byte{tx})
		if _, v, err := p.chain.AddBlock(block); v != Accepted {
			t.Fatal(v, err)
		}
		start := time.Now()
		if _, v, err := q.r.SubmitTx(tx); v != Accepted {
			t.Fatal(v, err)
		}
		if err := p.r.PublishBlock(block); err != nil {
			t.Fatal(err)
		}
		ctx := waitCtx(t, 10*time.Second)
		waitBlocks(t, ctx, []*tnode{x}, bid)
		took := time.Since(start)
		s := x.r.Stats()
		t.Logf("block stored at x after %v; stats %+v", took, s)
		// The tx reaches X one batch window, a link latency and a fetch
		// round trip after it was submitted: after the block (100 ms),
		// well before the getblocktxn's answer (300 ms).
		if took <= 100*time.Millisecond || took >= 300*time.Millisecond {
			t.Fatalf("block stored after %v, want between the block's arrival and its getblocktxn's answer", took)
		}
		if s.BlockTxnNeeded != 1 || s.BlockTxnFromPool != 1 {
			t.Fatalf("BlockTxnNeeded %d, BlockTxnFromPool %d, want 1 and 1", s.BlockTxnNeeded, s.BlockTxnFromPool)
		}
		if offs := x.offs.all(); len(offs) != 0 {
			t.Fatalf("offenses: %v", offs)
		}
	})
}
