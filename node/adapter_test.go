package node

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/wire"
)

type adapterFixture struct {
	g        *chain.Genesis
	st       *store.Store
	pool     *mempool.Pool
	a        *chainAdapter
	mu       sync.Mutex
	heads    []chain.Hash
	pending  []chain.Hash
	promoted []chain.Hash
}

func newAdapterFixture(t *testing.T) *adapterFixture {
	t.Helper()
	g := testGenesis(time.Second)
	st, err := store.Open(g, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pool, err := mempool.New(mempool.DefaultConfig(), g, st)
	if err != nil {
		t.Fatal(err)
	}
	f := &adapterFixture{g: g, st: st, pool: pool}
	f.a = &chainAdapter{g: g, store: st, pool: pool, now: time.Now,
		onHead:     func(_ *chain.Header, id chain.Hash) { f.mu.Lock(); f.heads = append(f.heads, id); f.mu.Unlock() },
		onPending:  func(id chain.Hash) { f.mu.Lock(); f.pending = append(f.pending, id); f.mu.Unlock() },
		onPromoted: func(ids []chain.Hash) { f.mu.Lock(); f.promoted = append(f.promoted, ids...); f.mu.Unlock() },
	}
	f.a.start()
	t.Cleanup(f.a.stop)
	return f
}

func TestAdapterTxVerdicts(t *testing.T) {
	f := newAdapterFixture(t)
	g := f.g

	tx0 := signedTx(g, 0, 1, 0, 10, 0)
	id, v, err := f.a.AddTx(tx0.Encode())
	if v != relay.Accepted || err != nil || id != relay.ID(tx0.ID()) {
		t.Fatalf("valid tx: %v %v %v", id, v, err)
	}
	if _, v, _ := f.a.AddTx(tx0.Encode()); v != relay.Known {
		t.Fatalf("resubmitted tx: verdict %v, want known", v)
	}
	if !f.a.HasTx(relay.ID(tx0.ID())) {
		t.Fatal("HasTx false for a pooled tx")
	}
	if b, ok := f.a.GetTx(relay.ID(tx0.ID())); !ok || string(b) != string(tx0.Encode()) {
		t.Fatal("GetTx did not return the encoding")
	}

	// Malformed bytes and a broken signature are the sender's fault.
	if _, v, err := f.a.AddTx([]byte{1, 2, 3}); v != relay.Invalid {
		t.Fatalf("garbage: verdict %v", v)
	} else if r, _ := chain.ReasonOf(err); r != chain.ReasonMalformed {
		t.Fatalf("garbage: reason %v", r)
	}
	bad := signedTx(g, 2, 1, 0, 10, 0)
	bad.Amount++ // signature no longer covers the fields
	if _, v, err := f.a.AddTx(bad.Encode()); v != relay.Invalid {
		t.Fatalf("bad signature: verdict %v (%v)", v, err)
	} else if r, _ := chain.ReasonOf(err); r != chain.ReasonBadSignature {
		t.Fatalf("bad signature: reason %v", r)
	}

	// A fee below the minimum is not a penalty.
	cheap := signedTx(g, 3, 1, 0, 0, 0)
	if _, v, err := f.a.AddTx(cheap.Encode()); v != relay.Ignored {
		t.Fatalf("fee too low: verdict %v (%v)", v, err)
	} else if r, _ := chain.ReasonOf(err); r != chain.ReasonFeeTooLow {
		t.Fatalf("fee too low: reason %v", r)
	}

	// A nonce gap queues (held, not announced); filling it promotes.
	gap := signedTx(g, 4, 1, 1, 10, 0)
	if _, v, err := f.a.AddTx(gap.Encode()); v != relay.Ignored || !errors.Is(err, ErrQueued) {
		t.Fatalf("future nonce: %v %v", v, err)
	}
	fill := signedTx(g, 4, 1, 0, 10, 0)
	if _, v, err := f.a.AddTx(fill.Encode()); v != relay.Accepted {
		t.Fatalf("gap filler: %v %v", v, err)
	}
	// The promoted tx is held: a resubmission is known (the node announces
	// it through Relay.Announce, not through AddTx).
	if _, v, _ := f.a.AddTx(gap.Encode()); v != relay.Known {
		t.Fatalf("promoted tx resubmitted: %v", v)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.promoted) != 1 || f.promoted[0] != gap.ID() {
		t.Fatalf("promoted = %v, want [%v]", f.promoted, gap.ID())
	}
	want := []chain.Hash{tx0.ID(), fill.ID(), gap.ID()}
	if len(f.pending) != len(want) {
		t.Fatalf("pending events %v, want %v", f.pending, want)
	}
	for i := range want {
		if f.pending[i] != want[i] {
			t.Fatalf("pending events %v, want %v", f.pending, want)
		}
	}
}

func TestAdapterBlockVerdicts(t *testing.T) {
	f := newAdapterFixture(t)
	g := f.g
	tx := signedTx(g, 0, 1, 0, 10, 0)
	if _, v, _ := f.a.AddTx(tx.Encode()); v != relay.Accepted {
		t.Fatal("tx not accepted")
	}
	tip, tipID := f.st.Tip()
	blk := g.BuildBlock(tip, time.Now(), authorityKey(), []*chain.Tx{tx})

	id, v, err := f.a.AddBlock(blk.Encode())
	if v != relay.Accepted || err != nil || id != relay.ID(blk.ID()) {
		t.Fatalf("valid block: %v %v %v", id, v, err)
	}
	if h, _ := f.a.Tip(); h != 1 {
		t.Fatalf("tip height %d after block, want 1", h)
	}
	if f.pool.Has(tx.ID()) {
		t.Fatal("included tx still pooled: BlockConnected not called")
	}
	if !f.a.HasTx(relay.ID(tx.ID())) {
		t.Fatal("HasTx false for a just-included tx")
	}
	f.mu.Lock()
	if len(f.heads) != 1 || f.heads[0] != blk.ID() {
		t.Fatalf("head events %v", f.heads)
	}
	f.mu.Unlock()
	if _, v, _ := f.a.AddBlock(blk.Encode()); v != relay.Known {
		t.Fatalf("stored block again: %v", v)
	}

	// Orphan: parent unknown.
	fake := *tip
	fake.Height = 5
	orphan := g.BuildBlock(&fake, time.Now(), authorityKey(), nil)
	if _, v, _ := f.a.AddBlock(orphan.Encode()); v != relay.Orphan {
		t.Fatalf("orphan: verdict %v", v)
	}
	// Signed by a key that is not the authority.
	tip1, _ := f.st.Tip()
	wrong := g.BuildBlock(tip1, time.Now(), chain.TestnetAccountKey(testSeed, 0), nil)
	if _, v, _ := f.a.AddBlock(wrong.Encode()); v != relay.Invalid {
		t.Fatalf("wrong proposer: verdict %v", v)
	}
	// Too far in the future: not the sender's fault.
	future := g.BuildBlock(tip1, time.Now().Add(time.Hour), authorityKey(), nil)
	if _, v, _ := f.a.AddBlock(future.Encode()); v != relay.Ignored {
		t.Fatalf("future block: verdict %v", v)
	}
	if _, v, _ := f.a.AddBlock([]byte("nope")); v != relay.Invalid {
		t.Fatalf("malformed block: verdict %v", v)
	}
	if got, ok := f.a.BlockIDAt(0); !ok || got != relay.ID(tipID) {
		t.Fatal("BlockIDAt(0) is not genesis")
	}
}

func TestAdapterSplitAssembleParse(t *testing.T) {
	f := newAdapterFixture(t)
	g := f.g
	txs := []*chain.Tx{signedTx(g, 0, 1, 0, 10, 5), signedTx(g, 1, 2, 0, 10, 0)}
	tip, _ := f.st.Tip()
	blk := g.BuildBlock(tip, time.Now(), authorityKey(), txs)
	enc := blk.Encode()

	hdr, parts, err := f.a.SplitBlock(enc)
	if err != nil || len(parts) != 2 {
		t.Fatalf("split: %v, %d txs", err, len(parts))
	}
	info, err := f.a.ParseHeader(hdr)
	if err != nil || info.ID != relay.ID(blk.ID()) || info.Height != 1 || info.Parent != relay.ID(blk.Header.Parent) {
		t.Fatalf("parse header: %+v %v", info, err)
	}
	back, err := f.a.AssembleBlock(hdr, parts)
	if err != nil || string(back) != string(enc) {
		t.Fatalf("assemble: %v (equal=%v)", err, string(back) == string(enc))
	}
	if _, err := f.a.AssembleBlock(hdr[:10], parts); err == nil {
		t.Fatal("assembled a truncated header")
	}
	if _, err := f.a.AssembleBlock(hdr, [][]byte{{1}}); err == nil {
		t.Fatal("assembled a garbage tx")
	}

	// Short ids resolve against the pool.
	for _, tx := range txs {
		f.a.AddTx(tx.Encode())
	}
	key := wire.NewShortIDKey(hdr, 7)
	short := []uint64{key.ShortID(relay.ID(txs[1].ID())), key.ShortID(relay.ID{1}), key.ShortID(relay.ID(txs[0].ID()))}
	got := f.a.LookupShortIDs(key.ShortID, short)
	if h, ok := f.a.GetHeader(relay.ID(blk.ID())); ok {
		t.Fatalf("header of a block not stored: %x", h)
	}
	if _, v, err := f.a.AddBlock(enc); v != relay.Accepted {
		t.Fatalf("add: %v %v", v, err)
	}
	if h, ok := f.a.GetHeader(relay.ID(blk.ID())); !ok || string(h) != string(hdr) {
		t.Fatal("GetHeader is not the block's header")
	}
	if id, err := f.a.TxID(txs[0].Encode()); err != nil || id != relay.ID(txs[0].ID()) {
		t.Fatalf("TxID: %v", err)
	}
	if string(got[0]) != string(txs[1].Encode()) || got[1] != nil || string(got[2]) != string(txs[0].Encode()) {
		t.Fatal("LookupShortIDs mismatch")
	}
}

func TestProducerBuildsOnItsSlots(t *testing.T) {
	f := newAdapterFixture(t)
	g := chain.NewTestnetGenesis(testChainID, testSeed, 8, 1, 50*time.Millisecond, time.Now())
	st, err := store.Open(g, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pool, _ := mempool.New(mempool.DefaultConfig(), g, st)
	f.a.g, f.a.store, f.a.pool = g, st, pool
	tx := signedTx(g, 0, 1, 0, 10, 0)
	if _, v, err := f.a.AddTx(tx.Encode()); v != relay.Accepted {
		t.Fatalf("tx: %v %v", v, err)
	}
	p := newProducer(g, authorityKey(), st, pool, f.a)
	f.a.onHead = func(*chain.Header, chain.Hash) { p.wake() }
	published := make(chan []byte, 16)
	p.start(func(b []byte) error { published <- b; return nil })
	defer p.stop()

	var last *chain.Block
	for h := uint64(1); h <= 3; h++ {
		select {
		case b := <-published:
			blk, err := chain.DecodeBlock(b)
			if err != nil {
				t.Fatal(err)
			}
			if blk.Header.Height != h {
				t.Fatalf("published height %d, want %d", blk.Header.Height, h)
			}
			if h == 1 && (len(blk.Txs) != 1 || blk.Txs[0].ID() != tx.ID()) {
				t.Fatalf("first block does not carry the pooled tx")
			}
			if last != nil && blk.Header.Time-last.Header.Time < g.BlockIntervalMs {
				t.Fatalf("blocks %d ms apart, interval %d ms", blk.Header.Time-last.Header.Time, g.BlockIntervalMs)
			}
			last = blk
		case <-time.After(5 * time.Second):
			t.Fatalf("no block at height %d", h)
		}
	}
	if _, tipID := st.Tip(); tipID != last.ID() {
		t.Fatal("store tip is not the last published block")
	}
}

func TestProducerIdleWhenNotItsTurn(t *testing.T) {
	g := chain.NewTestnetGenesis(testChainID, testSeed, 2, 2, 10*time.Millisecond, time.Now())
	st, err := store.Open(g, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pool, _ := mempool.New(mempool.DefaultConfig(), g, st)
	a := &chainAdapter{g: g, store: st, pool: pool, now: time.Now}
	// Authority 0 proposes even heights; height 1 belongs to authority 1.
	p := newProducer(g, chain.TestnetAuthorityKey(testSeed, 0), st, pool, a)
	if _, mine := p.due(); mine {
		t.Fatal("authority 0 thinks height 1 is its slot")
	}
	p1 := newProducer(g, chain.TestnetAuthorityKey(testSeed, 1), st, pool, a)
	if _, mine := p1.due(); !mine {
		t.Fatal("authority 1 does not see height 1 as its slot")
	}
}

// TestAdapterSideChainTxsPooled: the txs of a block stored on a side
// branch that the pool lacks and the best chain does not hold enter the
// pool and are handed on for announcement; a tx the best chain already
// mined, and one whose nonce the best chain spent, do not.
func TestAdapterSideChainTxsPooled(t *testing.T) {
	f := newAdapterFixture(t)
	g := f.g
	genesis, _ := f.st.Tip()
	mined := signedTx(g, 3, 1, 0, 10, 0)
	now := time.Now()
	b1 := g.BuildBlock(genesis, now, authorityKey(), []*chain.Tx{mined})
	b2 := g.BuildBlock(&b1.Header, now, authorityKey(), nil)
	for _, b := range []*chain.Block{b1, b2} {
		if _, v, err := f.a.AddBlock(b.Encode()); v != relay.Accepted {
			t.Fatalf("best chain block: %v %v", v, err)
		}
	}
	fresh := signedTx(g, 0, 1, 0, 10, 0)
	fresh2 := signedTx(g, 0, 1, 1, 10, 0)
	spent := signedTx(g, 3, 2, 0, 11, 0) // the nonce the best chain's tx used
	side := g.BuildBlock(genesis, now, authorityKey(), []*chain.Tx{fresh, fresh2, mined, spent})
	if _, v, err := f.a.AddBlock(side.Encode()); v != relay.Accepted || err != nil {
		t.Fatalf("side block: %v %v", v, err)
	}
	if st, _, ok := f.st.BlockStatus(side.ID()); !ok || st != store.StatusSide {
		t.Fatalf("side block status %v %v, want StatusSide", st, ok)
	}
	if h, _ := f.a.Tip(); h != 2 {
		t.Fatalf("tip %d, want 2", h)
	}
	if !f.pool.Has(fresh.ID()) || !f.pool.Has(fresh2.ID()) {
		t.Fatal("side-branch txs not pooled")
	}
	if f.pool.Has(mined.ID()) || f.pool.Has(spent.ID()) {
		t.Fatal("a mined or conflicting tx pooled")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.promoted) != 2 || f.promoted[0] != fresh.ID() || f.promoted[1] != fresh2.ID() {
		t.Fatalf("announced %v, want the two fresh txs", f.promoted)
	}
}

// TestAdapterBlockPromotesQueued: a tx queued behind a nonce gap that a
// block then fills is executable from that block on, so it is reported
// pending and announced, as a tx the pool takes directly would be. After
// a partition heals a tx often lands before its predecessor, which comes
// only in a block; without this the tx stayed unannounced, and unreported
// to tx_get's subscribers, until a block mined it too.
func TestAdapterBlockPromotesQueued(t *testing.T) {
	f := newAdapterFixture(t)
	g := f.g
	genesis, _ := f.st.Tip()
	first := signedTx(g, 0, 1, 0, 10, 0)
	second := signedTx(g, 0, 1, 1, 10, 0)
	if _, v, err := f.a.AddTx(second.Encode()); v != relay.Ignored || !errors.Is(err, ErrQueued) {
		t.Fatalf("tx after a gap: %v %v, want queued", v, err)
	}
	b1 := g.BuildBlock(genesis, time.Now(), authorityKey(), []*chain.Tx{first})
	if _, v, err := f.a.AddBlock(b1.Encode()); v != relay.Accepted {
		t.Fatalf("block: %v %v", v, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.promoted) != 1 || f.promoted[0] != second.ID() {
		t.Fatalf("announced %v, want the tx the block un-queued", f.promoted)
	}
	if len(f.pending) != 1 || f.pending[0] != second.ID() {
		t.Fatalf("reported pending %v, want the tx the block un-queued", f.pending)
	}

	// A block that mines the queued tx along with its gap promotes nothing.
	third := signedTx(g, 0, 1, 3, 10, 0)
	fourth := signedTx(g, 0, 1, 2, 10, 0)
	if _, v, _ := f.a.AddTx(third.Encode()); v != relay.Ignored {
		t.Fatalf("tx after a gap: %v, want queued", v)
	}
	f.promoted, f.pending = nil, nil
	f.mu.Unlock()
	b2 := g.BuildBlock(&b1.Header, time.Now(), authorityKey(), []*chain.Tx{second, fourth, third})
	_, v, err := f.a.AddBlock(b2.Encode())
	f.mu.Lock()
	if v != relay.Accepted {
		t.Fatalf("block: %v %v", v, err)
	}
	if len(f.promoted) != 0 || len(f.pending) != 0 {
		t.Fatalf("announced %v, reported %v for txs the block mined", f.promoted, f.pending)
	}
}

// TestPrepareTxsCachesVerified: an RPC batch's txs are checked together and
// those that verified are remembered in the pool's signature cache (so the
// tx_send calls that follow skip their own check); a bad signature, junk
// bytes and a tx the pool holds are not added.
func TestPrepareTxsCachesVerified(t *testing.T) {
	g := testGenesis(time.Second)
	st, err := store.Open(g, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sigs := mempool.NewSigCache(64)
	pool, err := mempool.New(mempool.DefaultConfig(), g, st, mempool.WithSigCache(sigs))
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{genesis: g, pool: pool, sigs: sigs}
	held := signedTx(g, 3, 1, 0, 10, 0)
	if r := pool.Add(held, time.Now()); r.Err != nil {
		t.Fatal(r.Err)
	}
	before := sigs.Len()
	bad := signedTx(g, 2, 1, 0, 10, 0)
	bad.Sig[5] ^= 1
	var good []*chain.Tx
	bodies := [][]byte{bad.Encode(), {1, 2, 3}, held.Encode()}
	for i := range uint64(chain.BatchSigMin) {
		tx := signedTx(g, 0, 1, i, 10, 0)
		good = append(good, tx)
		bodies = append(bodies, tx.Encode())
	}
	n.prepareTxs(bodies)
	for _, tx := range good {
		if !sigs.Has(tx.ID()) {
			t.Fatalf("verified tx %s not cached", tx.ID().Short())
		}
	}
	if sigs.Has(bad.ID()) || sigs.Len() != before+len(good) {
		t.Fatalf("cache holds %d ids (bad cached: %v), want %d", sigs.Len(), sigs.Has(bad.ID()), before+len(good))
	}
}
