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
		m := CPUModel{Cores: 1, TxVerify: time.Millisecond, BlockBase: 10 * time.Millisecond, CommitPerMiB: 0}
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
	})
}
