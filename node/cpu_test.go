package node

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
)

// TestCPUModelChargesInVirtualTime: a node under a CPU model pays the
// modelled cost of a tx (one verification) and of a block (base, per MiB,
// and one verification per tx its pool had not verified), queued on its
// cores. Two imports at once on one core take twice as long, and neither
// waits on a mutex while the clock must move (which would stop virtual
// time: this test would hang).
func TestCPUModelChargesInVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newAdapterFixture(t)
		m := CPUModel{Cores: 1, TxVerify: time.Millisecond, TxVerifyBatched: 300 * time.Microsecond, BlockBase: 10 * time.Millisecond, CommitPerMiB: 0}
		f.a.cpu = newCPU(&m)
		g := f.g

		tx := signedTx(g, 0, 1, 0, 10, 0)
		start := time.Now()
		if _, v, err := f.a.AddTx(tx.Encode()); v != relay.Accepted {
			t.Fatal(v, err)
		}
		if d := time.Since(start); d != time.Millisecond {
			t.Fatalf("tx charged %v, want 1ms", d)
		}
		start = time.Now()
		if _, v, _ := f.a.AddTx(tx.Encode()); v != relay.Known || time.Since(start) != 0 {
			t.Fatalf("known tx: %v charged %v, want free", v, time.Since(start))
		}

		tip, _ := f.st.Tip()
		other := signedTx(g, 1, 2, 0, 10, 0) // not in the pool: verified with the block
		blk := g.BuildBlock(tip, time.Now(), authorityKey(), []*chain.Tx{tx, other})
		start = time.Now()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { f.a.AddBlock(blk.Encode()) })
		}
		wg.Wait()
		// Each import: 10 ms base + 1 ms for the tx the pool did not hold
		// (the second one sees the same pool); one core runs them in turn.
		if d := time.Since(start); d != 22*time.Millisecond {
			t.Fatalf("two block imports took %v of virtual time, want 22ms", d)
		}
		if h, _ := f.a.Tip(); h != 1 {
			t.Fatalf("tip %d", h)
		}

		// A fetched batch: its new txs at the batched price, in one
		// charge; a known one free. Below chain.BatchSigMin, full price.
		var bodies [][]byte
		for n := range uint64(chain.BatchSigMin) {
			bodies = append(bodies, signedTx(g, 2, 3, n, 10, 0).Encode())
		}
		start = time.Now()
		res := f.a.AddTxs(append(bodies, tx.Encode()))
		if d, want := time.Since(start), time.Duration(chain.BatchSigMin)*300*time.Microsecond; d != want {
			t.Fatalf("batch of %d new txs and a known one charged %v, want %v (%+v)", chain.BatchSigMin, d, want, res)
		}
		start = time.Now()
		if res := f.a.AddTxs([][]byte{signedTx(g, 3, 2, 0, 10, 0).Encode(), signedTx(g, 3, 2, 1, 10, 0).Encode()}); res[0].Verdict != relay.Accepted {
			t.Fatalf("small batch: %+v", res)
		}
		if d := time.Since(start); d != 2*time.Millisecond {
			t.Fatalf("batch of 2 charged %v, want 2ms (checked one by one)", d)
		}
	})
}
