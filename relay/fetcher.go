package relay

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

// txnArg describes a getblocktxn item: which positions of the block to ask
// for and the short ids the answers must match.
type txnArg struct {
	block   ID
	indexes []uint32
	key     wire.ShortIDKey
	short   []uint64 // short[i] is the expected short id of indexes[i]
}

type wantMsg struct {
	waiter uint64
	from   PeerID
	kind   fetchKind
	ids    []ID
	arg    any
	mode   wantMode
	reply  chan []itemResult // buffered 1
}

type srcMsg struct {
	from PeerID
	kind fetchKind
	ids  []ID
}

type doneMsg struct {
	req     uint64
	results []itemResult
}

// fetcher runs the fetch loop: the one goroutine that owns the scheduler
// core (sched), the waiters' reply channels and the request timer. Callers
// (validators) send it wants and wait for their reply; the observer sends it
// alternative sources without blocking; request goroutines send it their
// results. See doc.go.
type fetcher struct {
	r    *Relay
	core *sched

	wantCh   chan wantMsg
	srcCh    chan srcMsg
	doneCh   chan doneMsg
	cancelCh chan uint64
	quit     chan struct{} // closed when the loop has exited

	lastWaiter atomic.Uint64
	droppedSrc atomic.Uint64 // sources dropped because srcCh was full
	wg         sync.WaitGroup
}

func newFetcher(r *Relay) *fetcher {
	cfg := r.cfg
	f := &fetcher{
		r: r,
		core: newSched(schedConfig{
			maxTracked:  MaxTrackedPerPeer,
			maxItems:    MaxFetchItems,
			maxSources:  MaxSourcesPerItem,
			maxRequests: MaxRequestsPerPeer,
			maxBatch:    wire.MaxTxsPerRequest,
			timeout: func(k fetchKind) time.Duration {
				if k == kindBlock {
					return cfg.BlockFetchTimeout
				}
				return cfg.FetchTimeout
			},
			grace: cfg.FetchTimeout,
		}),
		wantCh:   make(chan wantMsg),
		srcCh:    make(chan srcMsg, MaxPendingSources),
		doneCh:   make(chan doneMsg),
		cancelCh: make(chan uint64),
		quit:     make(chan struct{}),
	}
	return f
}

// fetch asks for ids of kind, which from announced, first from from, and
// waits for the outcome of every one of them (in order) or for ctx to end.
func (f *fetcher) fetch(ctx context.Context, from PeerID, kind fetchKind, ids []ID, arg any) ([]itemResult, error) {
	return f.want(ctx, wantMsg{from: from, kind: kind, ids: ids, arg: arg})
}

// fetchLinked is fetch for ids from named in link-mode inventory: past
// from's tracking cap they are dropped without an offense (wantLinked).
func (f *fetcher) fetchLinked(ctx context.Context, from PeerID, kind fetchKind, ids []ID) ([]itemResult, error) {
	return f.want(ctx, wantMsg{from: from, kind: kind, ids: ids, mode: wantLinked})
}

// pull is fetch for ids this node chose to ask for on its own
// (reconciliation): they do not count against from's tracking cap
// (wantSolicited).
func (f *fetcher) pull(ctx context.Context, from PeerID, kind fetchKind, ids []ID) ([]itemResult, error) {
	return f.want(ctx, wantMsg{from: from, kind: kind, ids: ids, mode: wantSolicited})
}

func (f *fetcher) want(ctx context.Context, m wantMsg) ([]itemResult, error) {
	w := f.lastWaiter.Add(1)
	m.waiter, m.reply = w, make(chan []itemResult, 1)
	select {
	case f.wantCh <- m:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-f.quit:
		return nil, ErrClosed
	}
	select {
	case res := <-m.reply:
		return res, nil
	case <-ctx.Done():
		select {
		case f.cancelCh <- w:
		case <-f.quit:
		}
		return nil, ctx.Err()
	case <-f.quit:
		return nil, ErrClosed
	}
}

// addSources hands alternative announcers to the loop without blocking (it
// is called from the transport observer); when the queue is full they are lost.
func (f *fetcher) addSources(from PeerID, kind fetchKind, ids []ID) {
	select {
	case f.srcCh <- srcMsg{from, kind, ids}:
	default:
		f.droppedSrc.Add(1)
	}
}

// run is the fetch loop. It returns when ctx ends, after which request
// goroutines still running finish on their own (their context is ctx).
func (f *fetcher) run(ctx context.Context) {
	defer close(f.quit)
	replies := make(map[uint64]chan []itemResult)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var (
			done []waiterDone
			offs []offense
		)
		select {
		case <-ctx.Done():
			return
		case m := <-f.wantCh:
			replies[m.waiter] = m.reply
			done, offs = f.core.want(m.waiter, m.from, m.kind, m.ids, m.arg, m.mode)
		case m := <-f.srcCh:
			f.core.addSources(m.from, m.kind, m.ids)
		case m := <-f.doneCh:
			done, offs = f.core.complete(m.req, m.results, time.Now())
		case w := <-f.cancelCh:
			f.core.cancel(w)
			delete(replies, w)
		case <-timer.C:
			done, offs = f.core.expire(time.Now())
		}
		for _, d := range done {
			if ch := replies[d.id]; ch != nil {
				ch <- d.results
				delete(replies, d.id)
			}
		}
		for _, o := range offs {
			f.r.penalize(o.peer, o.what)
		}
		now := time.Now()
		for _, rq := range f.core.schedule(now) {
			f.wg.Add(1)
			go f.exec(ctx, rq)
		}
		items, _ := f.core.size()
		f.r.metrics.setInflight(items)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if d, ok := f.core.nextDeadline(); ok {
			timer.Reset(max(d.Sub(now), 0))
		}
	}
}

// exec carries out one request and posts its results to the loop.
func (f *fetcher) exec(ctx context.Context, rq *fetchReq) {
	defer f.wg.Done()
	rctx, cancel := context.WithDeadline(ctx, rq.deadline)
	var res []itemResult
	switch rq.kind {
	case kindTx, kindTxShort:
		res = f.execTxs(rctx, rq)
	case kindBlock:
		res = []itemResult{f.execBlock(rctx, rq)}
	case kindBlockTxn:
		res = []itemResult{f.execBlockTxn(rctx, rq)}
	}
	cancel()
	r := f.r
	if len(res) > 0 {
		f.r.log.Debugw("fetch done", "peer", rq.peer, "kind", rq.kind, "items", len(rq.keys), "status", res[0].status)
	}
	r.stats.fetches.Add(1)
	r.metrics.fetched(rq.kind.String())
	for _, x := range res {
		if x.status != stOK && x.status != stInvalid {
			r.stats.fetchFailures.Add(1)
			r.metrics.fetchFailed(rq.kind.String(), x.status.String())
			break
		}
	}
	select {
	case f.doneCh <- doneMsg{rq.id, res}:
	case <-ctx.Done():
	}
}

// errStatus maps a request error onto a status for every item. A bad
// response becomes the status of the offense it proves, which the
// scheduler reports once per request.
func errStatus(err error) status {
	switch {
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return stTimeout
	case errors.Is(err, ErrBadResponse):
		if o, ok := offenseOfErr(err); ok {
			switch o {
			case OffenseOversize:
				return stOversize
			case OffenseUnrequested:
				return stUnrequested
			}
		}
		return stMalformed
	}
	return stError
}

func fill(keys []fetchKey, st status) []itemResult {
	out := make([]itemResult, len(keys))
	for i, k := range keys {
		out[i] = itemResult{key: k, status: st}
	}
	return out
}

// execTxs fetches a batch of txs (by id, or by id prefix in link mode),
// checks each body against its id or prefix and hands it to the pool.
func (f *fetcher) execTxs(ctx context.Context, rq *fetchReq) []itemResult {
	r := f.r
	ids := make([]ID, len(rq.keys))
	for i, k := range rq.keys {
		ids[i] = k.id
	}
	var (
		bodies [][]byte
		full   []ID // kindTxShort: each body's id, as the checks found it
		err    error
	)
	if rq.kind == kindTxShort {
		prefixes := make([]uint64, len(ids))
		for i, id := range ids {
			prefixes[i] = wire.TxPrefix(id)
		}
		bodies, err = r.RequestTxsByPrefix(ctx, rq.peer, prefixes)
		full = make([]ID, len(ids))
	} else {
		bodies, err = r.RequestTxs(ctx, rq.peer, ids)
	}
	if err != nil {
		return fill(rq.keys, errStatus(err))
	}
	out := make([]itemResult, len(rq.keys))
	var take []int // indices of bodies that match their ids, for the pool
	for i, k := range rq.keys {
		out[i].key = k
		if i >= len(bodies) {
			// Cut at the server's soft limit: ask it again for the rest,
			// unless it served nothing at all.
			out[i].status = stTruncated
			if len(bodies) == 0 {
				out[i].status = stNotFound
			}
			continue
		}
		switch b := bodies[i]; {
		case b == nil:
			out[i].status = stNotFound
		case full != nil:
			id, err := r.pool.TxID(b)
			if err != nil || wire.TxPrefix(id) != wire.TxPrefix(k.id) {
				out[i].status = stMismatch
				continue
			}
			full[i] = id
			take = append(take, i)
		case !r.txMatches(b, k.id):
			out[i].status = stMismatch
		default:
			take = append(take, i)
		}
	}
	took := r.addTxBodies(len(take), func(k int) []byte { return bodies[take[k]] })
	for k, i := range take {
		id := rq.keys[i].id
		if full != nil {
			id = full[i]
			out[i].id = id
		}
		res := took[k]
		r.tookTxBody(id, res.Verdict)
		if res.Verdict == Accepted && (r.cfg.TxMode == TxLink || rq.kind == kindTxShort) {
			// Nothing forwards it for us (GossipSub forwards the
			// announcement in announce mode, but a tx fetched by prefix
			// came by no gossip): announce it in the next batch.
			r.batch.add(r.ctx, id)
		}
		out[i].verdict, out[i].err, out[i].status = res.Verdict, res.Err, stOK
		if res.Verdict == Invalid {
			out[i].status = stInvalid
		}
	}
	return out
}

// addTxBodies hands n received bodies (body(k) for k < n) to the pool: in
// one call when it takes batches (TxBatchPool), else one by one.
func (r *Relay) addTxBodies(n int, body func(k int) []byte) []TxAddResult {
	out := make([]TxAddResult, n)
	if bp, ok := r.pool.(TxBatchPool); ok && n > 1 {
		bodies := make([][]byte, n)
		for k := range n {
			bodies[k] = body(k)
		}
		if res := bp.AddTxs(bodies); len(res) == n {
			return res
		}
		// A pool that answers for the wrong number of bodies is broken;
		// fall back to one by one rather than misattribute verdicts.
	}
	for k := range n {
		res := &out[k]
		res.ID, res.Verdict, res.Err = r.pool.AddTx(body(k))
	}
	return out
}

// takeTxBody hands a received body (already known to hash to id) to the
// pool and keeps the relay's books on it (tookTxBody).
func (r *Relay) takeTxBody(id ID, body []byte) (Verdict, error) {
	_, v, err := r.pool.AddTx(body)
	r.tookTxBody(id, v)
	return v, err
}

// tookTxBody keeps the relay's books on a body the pool judged v: a body
// counted (duplicate when known), junk remembered as rejected, a new tx's
// first-seen time.
func (r *Relay) tookTxBody(id ID, v Verdict) {
	if v == Invalid {
		r.txRejected(id)
	}
	r.noteBody("tx", v == Known)
	if v == Accepted {
		r.txAccepted(id)
	}
}

// txAccepted keeps the books on a tx the pool just accepted: its first-seen
// time, and the arrival log block jobs watch.
func (r *Relay) txAccepted(id ID) {
	r.seen.record(id, r.now())
	r.arrivals.add(id)
}

// execBlock fetches a whole block and checks that its header hashes to id.
func (f *fetcher) execBlock(ctx context.Context, rq *fetchReq) itemResult {
	r := f.r
	k := rq.keys[0]
	res := itemResult{key: k}
	blk, err := r.RequestBlock(ctx, rq.peer, k.id)
	switch {
	case err != nil:
		res.status = errStatus(err)
	case blk == nil:
		res.status = stNotFound
	default:
		if info, err := r.blockInfo(blk); err != nil || info.ID != k.id {
			res.status = stMismatch
			return res
		}
		res.status, res.block = stOK, blk
		r.noteBody("block", r.chain.HasBlock(k.id))
	}
	return res
}

// execBlockTxn fetches the missing txs of a compact block and checks each
// against its short id.
func (f *fetcher) execBlockTxn(ctx context.Context, rq *fetchReq) itemResult {
	r := f.r
	k := rq.keys[0]
	res := itemResult{key: k}
	a, _ := rq.arg.(*txnArg)
	if a == nil {
		res.status = stError
		return res
	}
	txs, found, err := r.RequestBlockTxn(ctx, rq.peer, a.block, a.indexes)
	switch {
	case err != nil:
		res.status = errStatus(err)
		return res
	case !found:
		res.status = stNotFound
		return res
	}
	for i, tx := range txs {
		id, err := r.pool.TxID(tx)
		if err != nil || a.key.ShortID(id) != a.short[i] {
			res.status = stMismatch
			return res
		}
	}
	for range txs {
		r.noteBody("tx", false)
	}
	res.status, res.bodies = stOK, txs
	return res
}

// txMatches reports whether body is the transaction with id under the
// chain's id rule.
func (r *Relay) txMatches(body []byte, id ID) bool {
	got, err := r.pool.TxID(body)
	return err == nil && got == id
}
