package node

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
)

// chainOf builds n blocks on the store's tip, block i carrying one tx of
// account i (so its signature is not one the pool vouches for).
func chainOf(f *adapterFixture, n int) []*chain.Block {
	parent, _ := f.st.Tip()
	var blocks []*chain.Block
	for i := range n {
		tx := signedTx(f.g, i%8, (i+1)%8, uint64(i/8), 10, 0)
		b := f.g.BuildBlock(parent, time.UnixMilli(int64(parent.Time)+1), authorityKey(), []*chain.Tx{tx})
		blocks = append(blocks, b)
		parent = &b.Header
	}
	return blocks
}

// TestImporterOrdersConcurrentBlocks: blocks offered from many goroutines
// at once, children before parents, are committed one at a time, and the
// head events and the pool follow the chain's order.
func TestImporterOrdersConcurrentBlocks(t *testing.T) {
	f := newAdapterFixture(t)
	blocks := chainOf(f, 12)
	var wg sync.WaitGroup
	errs := make(chan error, len(blocks))
	for i := len(blocks) - 1; i >= 0; i-- {
		wg.Go(func() {
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, v, err := f.a.AddBlock(blocks[i].Encode())
				switch {
				case v == relay.Accepted:
					return
				case v != relay.Orphan || time.Now().After(deadline):
					errs <- err
					return
				}
				time.Sleep(time.Millisecond) // its parent is on its way
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("block not accepted: %v", err)
	}
	if h, id := f.a.Tip(); h != uint64(len(blocks)) || id != relay.ID(blocks[len(blocks)-1].ID()) {
		t.Fatalf("tip %d %v, want the last block", h, id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.heads) != len(blocks) {
		t.Fatalf("%d head events, want %d", len(f.heads), len(blocks))
	}
	for i, b := range blocks {
		if f.heads[i] != b.ID() {
			t.Fatalf("head event %d is %v, want block at height %d", i, f.heads[i].Short(), b.Header.Height)
		}
		if id := b.Txs[0].ID(); f.pool.Has(id) || !f.a.HasTx(relay.ID(id)) {
			t.Fatalf("tx of block %d: pooled %v, known %v", i, f.pool.Has(id), f.a.HasTx(relay.ID(id)))
		}
	}
}

// TestImporterBadSignature: a block whose tx signature fails the caller's
// check is refused by the store with the tx's index, and stored nowhere;
// the honest block at its height is taken afterwards.
func TestImporterBadSignature(t *testing.T) {
	f := newAdapterFixture(t)
	tip, _ := f.st.Tip()
	tx := signedTx(f.g, 0, 1, 0, 10, 0)
	forged := *tx
	forged.Amount++ // the signature no longer covers it
	bad := f.g.BuildBlock(tip, time.UnixMilli(int64(tip.Time)+1), authorityKey(), []*chain.Tx{tx, &forged})
	_, v, err := f.a.AddBlock(bad.Encode())
	var re *chain.RuleError
	if v != relay.Invalid || !errors.As(err, &re) || re.TxIndex != 1 {
		t.Fatalf("forged tx: verdict %v, err %v", v, err)
	}
	if r, _ := chain.ReasonOf(errors.Unwrap(err)); r != chain.ReasonBadSignature {
		t.Fatalf("reason %v, want bad signature", r)
	}
	if f.a.HasBlock(relay.ID(bad.ID())) {
		t.Fatal("block with a forged tx stored")
	}
	good := f.g.BuildBlock(tip, time.UnixMilli(int64(tip.Time)+1), authorityKey(), []*chain.Tx{tx})
	if _, v, err := f.a.AddBlock(good.Encode()); v != relay.Accepted {
		t.Fatalf("honest block: %v %v", v, err)
	}
}

// TestImporterStopped: once stopped, the importer answers Ignored at once
// (the node is closing; not the sender's fault), and stop is idempotent.
func TestImporterStopped(t *testing.T) {
	f := newAdapterFixture(t)
	blocks := chainOf(f, 1)
	f.a.stop()
	f.a.stop()
	_, v, err := f.a.AddBlock(blocks[0].Encode())
	if v != relay.Ignored || !errors.Is(err, errImporterClosed) {
		t.Fatalf("after stop: %v %v", v, err)
	}
	if f.a.HasBlock(relay.ID(blocks[0].ID())) {
		t.Fatal("block stored after stop")
	}
}

// TestImporterStopWithQueuedJob: a block queued behind a commit still
// running when stop is called is answered Ignored, not committed, and its
// caller does not hang.
func TestImporterStopWithQueuedJob(t *testing.T) {
	f := newAdapterFixture(t)
	blocks := chainOf(f, 2)
	release := make(chan struct{})
	f.a.onHead = func(*chain.Header, chain.Hash) { <-release } // holds the first commit
	first := make(chan relay.Verdict, 1)
	go func() { _, v, _ := f.a.AddBlock(blocks[0].Encode()); first <- v }()
	// The second is queued once the first's commit is running.
	second := make(chan error, 1)
	waitFor(t, func() bool { return f.st.HasBlock(blocks[0].ID()) })
	go func() { _, _, err := f.a.AddBlock(blocks[1].Encode()); second <- err }()
	waitFor(t, func() bool { return len(f.a.imp.jobs) == 1 })
	stopped := make(chan struct{})
	go func() { f.a.stop(); close(stopped) }()
	waitFor(t, func() bool {
		select {
		case <-f.a.imp.quit:
			return true
		default:
			return false
		}
	})
	close(release)
	if v := <-first; v != relay.Accepted {
		t.Fatalf("running commit: %v", v)
	}
	if err := <-second; !errors.Is(err, errImporterClosed) {
		t.Fatalf("queued block after stop: %v", err)
	}
	<-stopped
	if f.st.HasBlock(blocks[1].ID()) {
		t.Fatal("a block queued when stop was called was committed")
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
	}
}
