package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/node/rpc"
	"github.com/rumor-relay/rumor/relay"
)

// journalSweepInterval is how often the node drops from the own-tx journal,
// and from delivery tracking, the transactions its pool no longer holds
// (included in a block, evicted, expired, replaced). Nothing is lost by
// sweeping late: a stale entry only costs its bytes in the file until then,
// and is dropped again on replay. Five seconds keeps that to a few blocks'
// worth at the default 1 s interval while a sweep (one pool lookup per
// tracked tx) stays negligible.
const journalSweepInterval = 5 * time.Second

// ownTxHeldQueue bounds the held events (peers known to hold own txs)
// waiting for the own-tx loop. Only events that name own unconfirmed txs
// are queued (the hook filters the rest), the loop handles one in
// microseconds, and 1024 absorbs a whole mesh fetching a batch at once. A
// full queue drops the event: the peer's holding is learned again from its
// own announcement of the tx, or the tx is confirmed by other peers or by
// its block.
const ownTxHeldQueue = 1024

// ownTxs is the node's side of the transactions its RPC clients submit:
// it stands between the RPC server and the relay (rpc.Relay), makes them
// survive a crash, and tracks their delivery.
//
// Durability (with the journal): a submission is answered only after the
// transaction the pool took is in the own-tx journal (mempool.Journal). On
// start the journal is replayed into the pool and what the pool took is
// announced; a sweep removes what the pool no longer holds.
//
// Delivery: each own tx is tracked (ownTracker) until DeliveryConfirmPeers
// distinct peers are known to hold it (the relay's TxHeldHook: they
// announced it to this node or fetched it from it) or it leaves the pool
// (included in a block, or dropped); until then it is re-announced with
// backoff. Tracking is in memory, with or without the journal: after a
// restart the replayed txs are tracked again from unconfirmed (their
// submission time is the journal's), so what peers held before the
// restart is learned again. A confirmed tx stays tracked, and journaled,
// until it is mined or dropped: confirmation stops its re-announcements,
// not its protection against a crash.
//
// Concurrency: one goroutine (run) owns the tracker. Submissions, tx_get
// and the sweep send it closures on cmds and wait for them to run; the
// relay's hook, on the transport's goroutines, reads watch (the ids
// still unconfirmed) under a read lock and hands matches over the bounded
// held channel, never blocking. Before run starts, open owns the tracker.
type ownTxs struct {
	ctx      context.Context  // the node's lifetime: the loop's, and how long callers wait for it
	j        *mempool.Journal // nil when the node keeps no journal
	pool     *mempool.Pool
	relay    *relay.Relay
	announce func(ids []relay.ID) int // the relay's Announce
	now      func() time.Time

	tracker *ownTracker
	cmds    chan func(*ownTracker)
	held    chan heldTxs

	// watch holds the ids of the tracked, unconfirmed txs: what the held
	// hook passes on. Only the loop writes it.
	watchMu  sync.RWMutex
	watch    map[chain.Hash]struct{}
	watching atomic.Int64 // len(watch), the hook's fast path

	unconfirmed atomic.Int64  // the tracker's, for the metric
	heldDropped atomic.Uint64 // held events dropped on a full queue
}

var _ rpc.Relay = (*ownTxs)(nil)

// heldTxs is a held event the hook passed on: from holds ids, own txs.
type heldTxs struct {
	from relay.PeerID
	ids  []chain.Hash
}

// notJournaledError is SubmitTx's error when the pool took a transaction
// but the journal could not record it: the client is not told it was
// accepted (it may retry; a retry finds the tx known and journals it).
type notJournaledError struct{ err error }

// Error implements error.
func (e *notJournaledError) Error() string { return "transaction not journaled: " + e.err.Error() }

// Unwrap returns the journal's error.
func (e *notJournaledError) Unwrap() error { return e.err }

// RejectReason names the failure in tx_send's error data.
func (e *notJournaledError) RejectReason() string { return "not-journaled" }

// newOwnTxs returns the own-tx tracker for pool, ready to be given to the
// relay as its held hook (noteHeld); open gives it the relay and the
// journal, start its goroutines. ctx is the node's lifetime.
func newOwnTxs(ctx context.Context, pool *mempool.Pool) *ownTxs {
	return &ownTxs{
		ctx:     ctx,
		pool:    pool,
		now:     time.Now,
		tracker: newOwnTracker(DeliveryConfirmPeers, pool.Config().MaxTxs),
		cmds:    make(chan func(*ownTracker)),
		held:    make(chan heldTxs, ownTxHeldQueue),
		watch:   make(map[chain.Hash]struct{}),
	}
}

// open connects the relay (started) and, when keep, opens the journal and
// replays it into the pool: a tx already in the chain, past its TTL, or
// not taken by the pool is removed from the journal; those the pool holds
// stay journaled and are tracked for delivery, and the executable ones are
// announced. The pool file and the chain are already loaded.
func (o *ownTxs) open(cfg mempool.JournalConfig, keep bool, st *store.Store, r *relay.Relay) error {
	o.relay, o.announce = r, r.Announce
	if !keep {
		return nil
	}
	j, entries, err := mempool.OpenJournal(cfg)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	// A sender's txs in nonce order, so each one's parent is back first.
	slices.SortStableFunc(entries, func(a, b mempool.JournalEntry) int {
		if c := slices.Compare(a.Tx.From[:], b.Tx.From[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Tx.Nonce, b.Tx.Nonce)
	})
	now := o.now()
	ttl := o.pool.Config().TTL
	var dead []chain.Hash
	var held []*chain.Tx
	inChain, expired := 0, 0
	for _, e := range entries {
		id := e.Tx.ID()
		if _, ok := st.TxLocation(id); ok {
			inChain++
			dead = append(dead, id)
			continue
		}
		added := e.Added
		if added.After(now) { // the clock went back since
			added = now
		}
		if now.Sub(added) >= ttl {
			expired++
			dead = append(dead, id)
			continue
		}
		if res := o.pool.Add(e.Tx, added); res.Code.Held() || o.pool.Has(id) {
			held = append(held, e.Tx)
			// Delivery state is not journaled: tracked anew, unconfirmed.
			o.trackLocked(o.tracker, id, added, now)
			continue
		}
		dead = append(dead, id)
	}
	// Executable once the whole journal is back (a later tx may have
	// filled an earlier one's gap): below its sender's pending nonce.
	var announce []relay.ID
	for _, tx := range held {
		if tx.Nonce < o.pool.PendingNonce(tx.From) {
			announce = append(announce, relay.ID(tx.ID()))
		}
	}
	if err := j.Remove(context.Background(), dead...); err != nil {
		j.Close()
		return fmt.Errorf("node: own-tx journal: %w", err)
	}
	o.j = j
	k := 0
	if len(announce) > 0 {
		k = o.announce(announce)
	}
	o.unconfirmed.Store(int64(o.tracker.unconfirmed()))
	log.Infow("own-tx journal replayed", "path", cfg.Path, "txs", len(entries), "held", len(held),
		"announced", k, "in_chain", inChain, "expired", expired, "refused", len(dead)-inChain-expired)
	return nil
}

// start starts the loop that owns the tracker and, with the journal, the
// journal's sweep loop; both end with o.ctx.
func (o *ownTxs) start(wg *sync.WaitGroup) {
	wg.Go(o.run)
	if o.j != nil {
		wg.Go(o.sweepLoop)
	}
}

// SubmitTx implements rpc.Relay: the relay adds and announces the tx;
// if the pool holds it now (taken, queued behind a nonce gap, or already
// there), it is journaled (when the journal is kept) before the answer
// goes back, and tracked until delivery. A tx a block already included is
// answered as before, neither journaled nor tracked.
func (o *ownTxs) SubmitTx(body []byte) (relay.ID, relay.Verdict, error) {
	// Tracked before the relay sees it: a peer may fetch it within the
	// relay's batch window, before this call returns, and that fetch is
	// evidence the hook must not drop as someone else's tx.
	pre, fresh := o.preTrack(body)
	untrack := func() {
		if fresh {
			o.untrack(pre)
		}
	}
	id, v, err := o.relay.SubmitTx(body)
	switch {
	case v == relay.Accepted:
	case v == relay.Known && !errors.Is(err, mempool.ErrIncluded):
	case errors.Is(err, ErrQueued):
	default:
		untrack()
		return id, v, err
	}
	if cid := chain.Hash(id); cid != pre {
		// Cannot happen (the relay's id is the decoded tx's), but the
		// tracked id must be the one the relay announces.
		untrack()
		pre, fresh = cid, o.track(cid)
	}
	if o.j == nil {
		return id, v, err
	}
	tx, ok := o.pool.Get(chain.Hash(id))
	if !ok {
		// Evicted or mined between the add and here: journal the body
		// the client sent (the relay decoded it once already, so it does).
		var derr error
		if tx, derr = chain.DecodeTx(body); derr != nil {
			untrack()
			return id, relay.Ignored, &notJournaledError{derr}
		}
	}
	// Not the node's context: Close stops RPC before the journal, so an
	// Append in flight is answered, and its answer is the truth.
	ctx := context.Background()
	jerr := o.j.Append(ctx, tx, o.now())
	if errors.Is(jerr, mempool.ErrJournalFull) {
		// Entries the pool dropped since the last sweep hold the room.
		o.sweep(ctx)
		jerr = o.j.Append(ctx, tx, o.now())
	}
	if jerr != nil {
		untrack()
		return id, relay.Ignored, &notJournaledError{jerr}
	}
	return id, v, err
}

// preTrack tracks the tx body decodes to, if it decodes; fresh reports
// whether this call started tracking it (so a refusal must undo it).
func (o *ownTxs) preTrack(body []byte) (id chain.Hash, fresh bool) {
	tx, err := chain.DecodeTx(body)
	if err != nil {
		return chain.Hash{}, false // the relay refuses it too
	}
	id = tx.ID()
	return id, o.track(id)
}

// track tracks id from now; it reports whether id was not tracked before.
func (o *ownTxs) track(id chain.Hash) bool {
	added := false
	o.do(func(t *ownTracker) { added = o.trackLocked(t, id, o.now(), o.now()) })
	return added
}

// trackLocked tracks id in t, owned by the caller, making room by
// dropping what the pool no longer holds if t is full.
func (o *ownTxs) trackLocked(t *ownTracker, id chain.Hash, submitted, now time.Time) bool {
	res := t.track(id, submitted, now)
	if res == trackFull {
		o.unwatch(t.retain(o.pool.Has)...)
		res = t.track(id, submitted, now)
	}
	switch res {
	case trackAdded:
		o.watchIDs(id)
		return true
	case trackFull:
		log.Warnw("own-tx tracking full: tx not tracked for delivery", "tx", id, "limit", t.limit)
	}
	return false
}

// untrack stops tracking id.
func (o *ownTxs) untrack(id chain.Hash) {
	o.do(func(t *ownTracker) {
		if _, ok := t.forget(id); ok {
			o.unwatch(id)
		}
	})
}

// do runs f on the loop and waits for it; false when the loop has ended
// (the node is closing), and f did not run.
func (o *ownTxs) do(f func(*ownTracker)) bool {
	done := make(chan struct{})
	select {
	case o.cmds <- func(t *ownTracker) { f(t); close(done) }:
	case <-o.ctx.Done():
		return false
	}
	<-done // the loop runs what it took before anything else
	return true
}

// watchIDs adds ids to watch.
func (o *ownTxs) watchIDs(ids ...chain.Hash) {
	o.watchMu.Lock()
	defer o.watchMu.Unlock()
	for _, id := range ids {
		o.watch[id] = struct{}{}
	}
	o.watching.Store(int64(len(o.watch)))
}

// unwatch removes ids from watch.
func (o *ownTxs) unwatch(ids ...chain.Hash) {
	if len(ids) == 0 {
		return
	}
	o.watchMu.Lock()
	defer o.watchMu.Unlock()
	for _, id := range ids {
		delete(o.watch, id)
	}
	o.watching.Store(int64(len(o.watch)))
}

// noteHeld is the relay's TxHeldHook: it passes the ids of own
// unconfirmed txs among ids to the loop, and drops the event when the
// loop's queue is full. It never blocks: one read-locked map lookup per id,
// none while no own tx is unconfirmed.
func (o *ownTxs) noteHeld(from relay.PeerID, ids []relay.ID) {
	if o.watching.Load() == 0 {
		return
	}
	var mine []chain.Hash
	o.watchMu.RLock()
	for _, id := range ids {
		if _, ok := o.watch[chain.Hash(id)]; ok {
			mine = append(mine, chain.Hash(id))
		}
	}
	o.watchMu.RUnlock()
	if len(mine) == 0 {
		return
	}
	select {
	case o.held <- heldTxs{from: from, ids: mine}:
	default:
		if o.heldDropped.Add(1)%ownTxHeldQueue == 1 {
			log.Debugw("own-tx held queue full: events dropped", "dropped", o.heldDropped.Load())
		}
	}
}

// run owns the tracker until o.ctx ends: it records the peers that hold
// own txs, runs submissions' and queries' closures, re-announces the
// unconfirmed txs that are due, and forgets those the pool let go of.
func (o *ownTxs) run() {
	t := o.tracker
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sweep := time.NewTicker(journalSweepInterval)
	defer sweep.Stop()
	for {
		o.unconfirmed.Store(int64(t.unconfirmed()))
		var wake <-chan time.Time
		if next, ok := t.nextDue(); ok {
			timer.Reset(max(0, next.Sub(o.now())))
			wake = timer.C
		}
		select {
		case <-o.ctx.Done():
			return
		case ev := <-o.held:
			for _, id := range ev.ids {
				if t.held(id, ev.from) {
					o.unwatch(id)
					log.Debugw("own tx delivered", "tx", id, "peers", DeliveryConfirmPeers)
				}
			}
		case f := <-o.cmds:
			f(t)
		case <-wake:
			o.reannounce(t, t.popDue(o.now()))
		case <-sweep.C:
			o.unwatch(t.retain(o.pool.Has)...)
		}
	}
}

// reannounce announces again the due txs the pool holds and could mine
// now; one it no longer holds (mined, dropped) stops being tracked, and a
// queued one (nonce gap) waits: the pool's promotion announces it.
func (o *ownTxs) reannounce(t *ownTracker, due []chain.Hash) {
	if len(due) == 0 {
		return
	}
	ids := make([]relay.ID, 0, len(due))
	for _, id := range due {
		tx, ok := o.pool.Get(id)
		if !ok {
			t.forget(id)
			o.unwatch(id)
			continue
		}
		if tx.Nonce < o.pool.PendingNonce(tx.From) {
			ids = append(ids, relay.ID(id))
		}
	}
	if len(ids) == 0 {
		return
	}
	k := o.announce(ids)
	log.Debugw("own txs re-announced", "due", len(due), "announced", k)
}

// status returns the delivery state of own tx id for tx_get; false when
// id is not tracked (or the node is closing).
func (o *ownTxs) status(id chain.Hash) (rpc.OwnTxStatus, bool) {
	var st ownTxStatus
	var ok bool
	if !o.do(func(t *ownTracker) { st, ok = t.status(id) }) || !ok {
		return rpc.OwnTxStatus{}, false
	}
	return rpc.OwnTxStatus{SeenBy: st.SeenBy, Confirmed: st.Confirmed}, true
}

// Unconfirmed returns how many own txs are tracked and not yet confirmed
// delivered (the rumor_own_txs_unconfirmed gauge).
func (o *ownTxs) Unconfirmed() int { return int(o.unconfirmed.Load()) }

// FirstSeen implements rpc.Relay.
func (o *ownTxs) FirstSeen(id relay.ID) (time.Time, bool) { return o.relay.FirstSeen(id) }

// sweep stops journaling the transactions the pool no longer holds.
func (o *ownTxs) sweep(ctx context.Context) {
	n, err := o.j.Retain(ctx, o.pool.Has)
	switch {
	case err != nil:
		log.Debugw("own-tx journal sweep", "err", err)
	case n > 0:
		log.Debugw("own-tx journal sweep", "removed", n)
	}
}

// sweepLoop runs sweep every journalSweepInterval until o.ctx ends.
func (o *ownTxs) sweepLoop() {
	t := time.NewTicker(journalSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-t.C:
			o.sweep(o.ctx)
		}
	}
}

// close closes the journal, if kept; RPC must be closed first.
func (o *ownTxs) close() error {
	if o.j == nil {
		return nil
	}
	return o.j.Close()
}

// journalConfig returns the own-tx journal's config, or false when the
// node keeps none: no JournalPath, no data dir, or an in-memory chain
// (whose txs would be replayed against a fresh genesis). With a memory
// data dir (mem non-nil) the journal lives there, beside its chain.
func (c *Config) journalConfig(pool *mempool.Pool, mem *MemDataDir) (mempool.JournalConfig, bool) {
	p := c.Mempool.JournalPath
	pc := pool.Config()
	jc := mempool.JournalConfig{Sync: c.Mempool.JournalSync, MaxTxs: pc.MaxTxs, MaxBytes: pc.MaxBytes}
	switch {
	case p == "":
		return jc, false
	case mem != nil:
		jc.Path, jc.FS = filepath.Join(string(filepath.Separator), p), mem.fs
		return jc, true
	case c.InMemory || (c.DataDir == "" && !filepath.IsAbs(p)):
		return jc, false
	case !filepath.IsAbs(p):
		p = filepath.Join(c.DataDir, p)
	}
	jc.Path = p
	return jc, true
}
