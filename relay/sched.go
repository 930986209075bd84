package relay

import (
	"time"
)

// This file is the fetch scheduler's core: which item to ask of which peer,
// when a request has timed out, and who is waiting for what. It does no I/O
// and reads no clock; the fetch loop (fetcher.go) owns one sched, feeds it
// events with the current time and carries out the requests it hands back.
//
// Model. An item is something we lack and can name: a tx by id, a block by
// id, or the missing txs of a block (keyed by block id). Each item has an
// ordered list of sources, the peers that announced it: the peer whose
// announcement made us want it first, then others in the order we learned
// of them (a second announcement, or a GossipSub duplicate delivery seen by
// the observer). An item is asked of one source at a time. When that source
// fails (timeout, not found, wrong body, malformed answer) the next one is
// asked at once; when none is left the item is given up. So a withholding
// source delays an item by one timeout, and only when it was first.
//
// Bounds. Each peer is a source of at most maxTracked unfinished items (the
// per-peer announcement cap); the scheduler holds at most maxItems items;
// each item remembers at most maxSources sources; each peer has at most
// maxRequests requests in flight, each of at most maxBatch tx ids.

// fetchKind says what an item is and so which request fetches it.
type fetchKind uint8

const (
	kindTx       fetchKind = iota + 1 // a tx by id: GetTxs, batched
	kindBlock                         // a whole block by id: GetBlock
	kindBlockTxn                      // missing txs of a block: GetBlockTxn
	kindTxShort                       // a tx by id prefix (link mode): GetTxsByPrefix, batched; keyed by prefixKey
)

// isTx reports whether the kind fetches txs into the pool; such items
// share requests (batches of up to maxBatch of one kind).
func (k fetchKind) isTx() bool { return k == kindTx || k == kindTxShort }

// String names the kind for logs and metric labels.
func (k fetchKind) String() string {
	switch k {
	case kindTx:
		return "tx"
	case kindBlock:
		return "block"
	case kindBlockTxn:
		return "blocktxn"
	case kindTxShort:
		return "txprefix"
	}
	return "unknown"
}

// fetchKey names an item.
type fetchKey struct {
	kind fetchKind
	id   ID
}

// status is the outcome of one item in one request, or its final outcome.
type status uint8

const (
	stOK          status = iota + 1 // body delivered and checked (verdict says what became of it)
	stInvalid                       // body matched but breaks a rule: final, penalize the server
	stNotFound                      // server does not hold it
	stMismatch                      // body does not match the id
	stMalformed                     // response did not decode or answered something else
	stTimeout                       // no answer in time
	stError                         // stream failed (reset, refused, busy): no fault proven
	stTruncated                     // server hit its response soft limit: ask it again
	stDropped                       // not tracked: scheduler or per-peer cap reached
	stGaveUp                        // every source failed
	stOversize                      // response over its cap or a body over the chain's limit
	stUnrequested                   // response carried more than was asked
)

// String names the status for logs and metric labels.
func (s status) String() string {
	return [...]string{"", "ok", "invalid", "not_found", "mismatch", "malformed", "timeout", "error", "truncated", "dropped", "gave_up", "oversize", "unrequested"}[s]
}

// offenseOf maps a failed status to the offense of the peer that caused it.
func offenseOf(k fetchKind, s status) (Offense, bool) {
	switch s {
	case stInvalid:
		if k.isTx() {
			return OffenseInvalidTx, true
		}
		return OffenseInvalidBlock, true
	case stNotFound:
		return OffenseNotFound, true
	case stMismatch:
		return OffenseBodyMismatch, true
	case stMalformed:
		return OffenseMalformed, true
	case stTimeout:
		return OffenseTimeout, true
	case stOversize:
		return OffenseOversize, true
	case stUnrequested:
		return OffenseUnrequested, true
	}
	return 0, false
}

// itemResult is what became of one item.
type itemResult struct {
	key     fetchKey
	status  status
	from    PeerID  // the peer that served it (stOK, stInvalid) or failed last
	verdict Verdict // kindTx, kindTxShort: what the pool said of the body
	id      ID      // kindTxShort: the full id of the body delivered
	err     error
	block   []byte   // kindBlock: the block
	bodies  [][]byte // kindBlockTxn: the requested txs in request order
}

// offense is a peer's misdeed found by the scheduler.
type offense struct {
	peer PeerID
	what Offense
}

// waiterDone hands a waiter all its results, in want order.
type waiterDone struct {
	id      uint64
	results []itemResult
}

// fetchReq is a request the loop must carry out: ask peer for keys.
type fetchReq struct {
	id       uint64
	peer     PeerID
	kind     fetchKind
	keys     []fetchKey
	arg      any // kindBlockTxn: *txnArg
	deadline time.Time
}

type schedConfig struct {
	maxTracked  int                           // per peer
	maxItems    int                           // overall
	maxSources  int                           // per item
	maxRequests int                           // per peer in flight
	maxBatch    int                           // tx ids per request
	timeout     func(fetchKind) time.Duration // per-request deadline
	grace       time.Duration                 // how long an item out of sources waits for a new one
}

type fitem struct {
	key     fetchKey
	arg     any
	sources []PeerID
	next    int    // index into sources of the next (or current) source
	req     uint64 // request in flight, 0 when none
	queued  bool   // in sched.ready
	waiters []uint64
	last    status // last failure
	// pulledFrom is the source added by our own pull (wantSolicited),
	// which its peer's tracked count leaves out; "" when none.
	pulledFrom PeerID
}

type fpeer struct {
	tracked  int // unfinished items listing this peer as a source
	inflight int // requests in flight
}

type fwaiter struct {
	keys    []fetchKey
	pending int
	results []itemResult
	index   map[fetchKey]int // key -> position in results
}

type sched struct {
	cfg     schedConfig
	items   map[fetchKey]*fitem
	peers   map[PeerID]*fpeer
	reqs    map[uint64]*fetchReq
	waiters map[uint64]*fwaiter
	ready   []fetchKey
	parked  map[fetchKey]time.Time // items out of sources, until when they wait
	lastReq uint64
}

func newSched(cfg schedConfig) *sched {
	return &sched{
		cfg:     cfg,
		items:   make(map[fetchKey]*fitem),
		peers:   make(map[PeerID]*fpeer),
		reqs:    make(map[uint64]*fetchReq),
		waiters: make(map[uint64]*fwaiter),
		parked:  make(map[fetchKey]time.Time),
	}
}

func (s *sched) peer(p PeerID) *fpeer {
	ps := s.peers[p]
	if ps == nil {
		ps = &fpeer{}
		s.peers[p] = ps
	}
	return ps
}

func (s *sched) gcPeer(p PeerID) {
	if ps := s.peers[p]; ps != nil && ps.tracked == 0 && ps.inflight == 0 {
		delete(s.peers, p)
	}
}

// addSource appends p to it's sources unless present, full, or (when
// capped) p is at its tracking cap. It reports whether p is (now) a source.
// An uncapped source (our own pull) is not counted in p's tracked items.
func (s *sched) addSource(it *fitem, p PeerID, capped bool) bool {
	for _, q := range it.sources {
		if q == p {
			return true
		}
	}
	if len(it.sources) >= s.cfg.maxSources {
		return false
	}
	ps := s.peer(p)
	switch {
	case capped && ps.tracked >= s.cfg.maxTracked:
		s.gcPeer(p)
		return false
	case !capped && it.pulledFrom == "":
		// Our own request: not held against p's announcements.
		it.pulledFrom = p
	default:
		ps.tracked++
	}
	it.sources = append(it.sources, p)
	delete(s.parked, it.key)
	if it.req == 0 && !it.queued {
		it.queued = true
		s.ready = append(s.ready, it.key)
	}
	return true
}

// wantMode says how the ids of a want came to be wanted, which decides
// how from's tracking cap (MaxTrackedPerPeer) applies to them.
type wantMode uint8

const (
	// wantAnnounced: from announced them on a topic. Ids past its cap are
	// dropped and cost it OffenseAnnounceFlood: GossipSub lets a peer
	// announce without bound, so the cap is what bounds it.
	wantAnnounced wantMode = iota
	// wantLinked: from named them in link-mode inventory (wire.TxSeen).
	// Ids past its cap are dropped without an offense: an honest peer
	// crosses the cap whenever this node falls behind (measured: a block
	// producer at 7,000 tx/s charged all three honest peers and banned
	// two), and each of from's messages takes one of its
	// MaxTxValidationsPerPeer fetch slots until its fetch ends, which
	// bounds what it has fetched at once (not its rate: a junk prefix
	// costs it OffenseNotFound once fetched, but dropped ones cost it
	// nothing but the table entries it churns, MaxLinkIDs at most).
	wantLinked
	// wantSolicited: this node decided to ask from for them on its own
	// (reconciliation's pulls). They are neither held against from's cap
	// nor counted in its tracked items, which would otherwise charge an
	// honest peer with our own request; the caller bounds them (one
	// request's worth at a time).
	wantSolicited
)

// want registers waiter w for the items (kind, ids) announced by from. Items
// already tracked gain from as a source; new ones are created with from as
// their first source. An id that cannot be tracked (caps) resolves at once
// as stDropped, and a per-peer cap hit is reported as OffenseAnnounceFlood.
// If every id resolved at once, the waiter is returned done.
// How the cap and the offense apply depends on how the ids came (mode).
func (s *sched) want(w uint64, from PeerID, kind fetchKind, ids []ID, arg any, mode wantMode) (done []waiterDone, offs []offense) {
	solicited := mode == wantSolicited
	wt := &fwaiter{keys: make([]fetchKey, len(ids)), results: make([]itemResult, len(ids)), index: make(map[fetchKey]int, len(ids))}
	s.waiters[w] = wt
	flooded := false
	for i, id := range ids {
		k := fetchKey{kind, id}
		wt.keys[i] = k
		wt.results[i] = itemResult{key: k}
		if _, dup := wt.index[k]; dup {
			// The same id twice in one announcement: answer the first slot
			// only; the second repeats its result at delivery.
			continue
		}
		wt.index[k] = i
		it := s.items[k]
		if it == nil {
			if len(s.items) >= s.cfg.maxItems {
				wt.results[i].status = stDropped
				continue
			}
			if ps := s.peers[from]; !solicited && ps != nil && ps.tracked >= s.cfg.maxTracked {
				wt.results[i].status = stDropped
				flooded = true
				continue
			}
			it = &fitem{key: k, arg: arg}
			s.items[k] = it
		}
		s.addSource(it, from, !solicited)
		it.waiters = append(it.waiters, w)
		wt.pending++
	}
	if flooded && mode == wantAnnounced {
		offs = append(offs, offense{from, OffenseAnnounceFlood})
	}
	if wt.pending == 0 {
		done = append(done, s.finishWaiter(w, wt))
	}
	return done, offs
}

// addSources records p as another announcer of those of (kind, ids) that
// are already tracked (learned from duplicate deliveries). Unknown ids are
// not created: a duplicate alone never makes us fetch.
func (s *sched) addSources(p PeerID, kind fetchKind, ids []ID) {
	for _, id := range ids {
		if it := s.items[fetchKey{kind, id}]; it != nil {
			s.addSource(it, p, true)
		}
	}
}

// cancel forgets waiter w (its caller gave up). Its items keep being fetched
// for other waiters or for the pool.
func (s *sched) cancel(w uint64) {
	wt := s.waiters[w]
	if wt == nil {
		return
	}
	delete(s.waiters, w)
	for k := range wt.index {
		it := s.items[k]
		if it == nil {
			continue
		}
		for i, x := range it.waiters {
			if x == w {
				it.waiters = append(it.waiters[:i], it.waiters[i+1:]...)
				break
			}
		}
	}
}

// schedule assigns ready items to their current source and returns the
// requests to send. Tx items bound for the same peer share requests of up
// to maxBatch ids. An item whose source is at its request limit waits.
func (s *sched) schedule(now time.Time) []*fetchReq {
	if len(s.ready) == 0 {
		return nil
	}
	var out []*fetchReq
	type batchKey struct {
		peer PeerID
		kind fetchKind
	}
	open := make(map[batchKey]*fetchReq) // tx batches being filled
	keep := s.ready[:0]
	for _, k := range s.ready {
		it := s.items[k]
		if it == nil || it.req != 0 || !it.queued {
			continue
		}
		p := it.sources[it.next]
		if k.kind.isTx() {
			if r := open[batchKey{p, k.kind}]; r != nil && len(r.keys) < s.cfg.maxBatch {
				r.keys = append(r.keys, k)
				it.req, it.queued = r.id, false
				continue
			}
		}
		ps := s.peer(p)
		if ps.inflight >= s.cfg.maxRequests {
			keep = append(keep, k)
			continue
		}
		s.lastReq++
		r := &fetchReq{id: s.lastReq, peer: p, kind: k.kind, keys: []fetchKey{k}, arg: it.arg,
			deadline: now.Add(s.cfg.timeout(k.kind))}
		ps.inflight++
		s.reqs[r.id] = r
		it.req, it.queued = r.id, false
		if k.kind.isTx() {
			open[batchKey{p, k.kind}] = r
		}
		out = append(out, r)
	}
	// Clear the tail so dropped keys do not pin memory.
	for i := len(keep); i < len(s.ready); i++ {
		s.ready[i] = fetchKey{}
	}
	s.ready = keep
	return out
}

// complete applies the results of request id. Results for keys the request
// did not carry are ignored; keys without a result count as stError. A
// result for a request that already timed out still completes its items
// when it delivered them.
func (s *sched) complete(id uint64, results []itemResult, now time.Time) (done []waiterDone, offs []offense) {
	r := s.reqs[id]
	if r == nil {
		for _, res := range results {
			if it := s.items[res.key]; it != nil && (res.status == stOK || res.status == stInvalid) {
				done = append(done, s.finish(it, res)...)
			}
		}
		return done, nil
	}
	s.endRequest(r)
	byKey := make(map[fetchKey]int, len(results))
	for i, res := range results {
		byKey[res.key] = i
	}
	seen := make(map[Offense]bool)
	for _, k := range r.keys {
		res := itemResult{key: k, status: stError, from: r.peer}
		if i, ok := byKey[k]; ok {
			res = results[i]
			res.from = r.peer
		}
		it := s.items[k]
		if it == nil || it.req != r.id {
			// Finished meanwhile (a late answer to an earlier request).
			continue
		}
		it.req = 0
		if o, ok := offenseOf(k.kind, res.status); ok && !seen[o] {
			seen[o] = true
			offs = append(offs, offense{r.peer, o})
		}
		switch res.status {
		case stOK, stInvalid:
			done = append(done, s.finish(it, res)...)
		case stTruncated:
			s.requeue(it)
		default:
			done = append(done, s.fail(it, res.status, now)...)
		}
	}
	return done, offs
}

// expire fails every request whose deadline has passed and gives up every
// parked item whose grace period has ended.
func (s *sched) expire(now time.Time) (done []waiterDone, offs []offense) {
	for k, until := range s.parked {
		if now.Before(until) {
			continue
		}
		delete(s.parked, k)
		if it := s.items[k]; it != nil {
			done = append(done, s.giveUp(it)...)
		}
	}
	for _, r := range s.reqs {
		if now.Before(r.deadline) {
			continue
		}
		s.endRequest(r)
		offs = append(offs, offense{r.peer, OffenseTimeout})
		for _, k := range r.keys {
			if it := s.items[k]; it != nil && it.req == r.id {
				it.req = 0
				done = append(done, s.fail(it, stTimeout, now)...)
			}
		}
	}
	return done, offs
}

// nextDeadline returns the earliest request deadline or end of a grace
// period, ok false when none.
func (s *sched) nextDeadline() (t time.Time, ok bool) {
	for _, r := range s.reqs {
		if !ok || r.deadline.Before(t) {
			t, ok = r.deadline, true
		}
	}
	for _, until := range s.parked {
		if !ok || until.Before(t) {
			t, ok = until, true
		}
	}
	return t, ok
}

func (s *sched) endRequest(r *fetchReq) {
	delete(s.reqs, r.id)
	if ps := s.peers[r.peer]; ps != nil {
		ps.inflight--
		s.gcPeer(r.peer)
	}
}

func (s *sched) requeue(it *fitem) {
	if !it.queued {
		it.queued = true
		s.ready = append(s.ready, it.key)
	}
}

// fail moves it to its next source. When none is left it parks the item for
// the grace period if someone waits for it, else gives it up.
func (s *sched) fail(it *fitem, st status, now time.Time) []waiterDone {
	it.last = st
	it.next++
	if it.next < len(it.sources) {
		s.requeue(it)
		return nil
	}
	if s.hasWaiters(it) && s.cfg.grace > 0 && len(it.sources) < s.cfg.maxSources {
		s.parked[it.key] = now.Add(s.cfg.grace)
		return nil
	}
	return s.giveUp(it)
}

func (s *sched) giveUp(it *fitem) []waiterDone {
	return s.finish(it, itemResult{key: it.key, status: stGaveUp, from: it.sources[len(it.sources)-1]})
}

func (s *sched) hasWaiters(it *fitem) bool {
	for _, w := range it.waiters {
		if s.waiters[w] != nil {
			return true
		}
	}
	return false
}

// finish removes it and delivers res to its waiters.
func (s *sched) finish(it *fitem, res itemResult) (done []waiterDone) {
	delete(s.items, it.key)
	delete(s.parked, it.key)
	for _, p := range it.sources {
		if ps := s.peers[p]; ps != nil {
			if p != it.pulledFrom {
				ps.tracked--
			}
			s.gcPeer(p)
		}
	}
	for _, w := range it.waiters {
		wt := s.waiters[w]
		if wt == nil {
			continue
		}
		if i, ok := wt.index[it.key]; ok {
			wt.results[i] = res
			wt.pending--
			if wt.pending == 0 {
				done = append(done, s.finishWaiter(w, wt))
			}
		}
	}
	return done
}

func (s *sched) finishWaiter(w uint64, wt *fwaiter) waiterDone {
	delete(s.waiters, w)
	// Repeated ids in one want share the first slot's result.
	for i, k := range wt.keys {
		if j := wt.index[k]; j != i {
			wt.results[i] = wt.results[j]
		}
	}
	return waiterDone{id: w, results: wt.results}
}

// tracked returns how many unfinished items list p as a source.
func (s *sched) tracked(p PeerID) int {
	if ps := s.peers[p]; ps != nil {
		return ps.tracked
	}
	return 0
}

// size returns the number of tracked items and requests in flight.
func (s *sched) size() (items, requests int) { return len(s.items), len(s.reqs) }
