package relay

import (
	"context"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/relay/recon"
	"github.com/rumor-relay/rumor/relay/wire"
)

// Mempool anti-entropy: every ReconcileInterval the relay reconciles its
// pending-tx set with one peer (the one reconciled least recently) by
// rateless set reconciliation (package relay/recon), pulls the txs the
// peer holds and it lacks, and announces those its pool takes so they
// spread by push again. Gossip loses announcements (full queues,
// throttles, a node restarting, a partition); this repairs what it lost
// at a cost that follows the difference, not the pools.
//
// A session is one request: the peer answers with the first Count coded
// symbols of its pending set under a fresh key, we subtract ours and peel.
// One request keeps both sides' sets a single snapshot (a multi-round
// session would mix symbols of a pool that changed between rounds). When
// the difference does not decode, the next attempt asks for four times as
// many symbols under a new key, up to MaxSymbolsPerBatch; what still does
// not decode is retried at once with the next peer, from the count the
// failed session reached. An attempt that fails at MaxSymbolsPerBatch (a
// difference past ~1,400 ids) falls back to a listing of the peer's pool
// (reconcileByListing): a difference that large is what anti-entropy must
// still repair (a lost tx whose sender's later txs pile up behind it in
// every pool but one, a healed partition), and no symbol count a session
// may ask for would decode it.
const (
	// ReconcileInterval is how often a node starts a session: each node
	// is the requester once and, on average, the server once per
	// interval. 2 s repairs a lost announcement within a few seconds while
	// the steady-state cost (the txs in flight, about 1.5 symbols of 44
	// bytes each) stays a small share of the announcements.
	ReconcileInterval = 2 * time.Second
	// MinReconcileSymbols is the first attempt's symbol count with a peer
	// not reconciled before: a difference of ~20 ids (the txs in flight at
	// 50 tx/s) decodes in one round; a bigger one takes a second.
	MinReconcileSymbols = 32
	// MaxReconcileAttempts bounds the requests of one session (32, 128,
	// 512 symbols...).
	MaxReconcileAttempts = 3
	// ReconcileMinAge leaves txs first seen more recently out of a
	// session: gossip is most likely still delivering them (time to all
	// is under ~800 ms at p99 with 50 ms links, 200 to 1000 nodes, in the
	// sim), and pulling them would fetch and announce them twice.
	ReconcileMinAge = time.Second
	// MaxReconcileSet caps the pending ids put into a session, the pool
	// id listing's cap (wire.MaxPoolIDsPerResponse): the encoder's work
	// and memory stay bounded whatever the pool's size.
	MaxReconcileSet = wire.MaxPoolIDsPerResponse
)

// Errors of a reconciliation session.
var (
	// ErrNoReconcile: this relay's pool cannot list its pending ids
	// (no PoolIDSource), so it neither reconciles nor serves symbols.
	ErrNoReconcile = errors.New("relay: pool does not list pending ids")
	// ErrUndecoded: the difference did not decode within the session's
	// attempts (too large, or the peer's pool changed under it).
	ErrUndecoded = errors.New("relay: reconciliation did not decode")
	// ErrPeerNoReconcile: the peer answered that it does not reconcile.
	ErrPeerNoReconcile = errors.New("relay: peer does not reconcile")
)

// ReconcileListWait is how long a session that fell back to a listing of
// the peer's pool waits before pulling what it lacks of it: the listing
// holds the peer's newest txs too, which gossip is most likely still
// bringing (ReconcileMinAge leaves them out of symbol sessions for the
// same reason), so only what is still missing then is pulled.
const ReconcileListWait = ReconcileMinAge

// ReconcileResult is what one session found.
type ReconcileResult struct {
	// Symbols is how many coded symbols were received, over all attempts.
	Symbols int
	// Missing are the ids the peer holds and we lacked.
	Missing []ID
	// Extra is how many ids we hold and the peer lacks (it pulls them when
	// it reconciles).
	Extra int
	// Added is how many of Missing the pool took.
	Added int
	// Listed says the difference was too large to decode at
	// recon.MaxSymbolsPerBatch symbols, and Missing are the ids of the
	// peer's pool listing (up to MaxReconcileSet) still lacking here after
	// ReconcileListWait; Extra is then 0 (a listing does not tell).
	Listed bool
}

// pendingIDs lists the pool's pending ids for a session, leaving out
// those first seen here less than ReconcileMinAge ago: both sides leave
// them out, so a session neither pulls nor spends symbols on txs gossip
// is still delivering.
func (r *Relay) pendingIDs() ([]ID, bool) {
	src, ok := r.pool.(PoolIDSource)
	if !ok {
		return nil, false
	}
	ids := src.PendingIDs(MaxReconcileSet)
	fresh := r.now().Add(-ReconcileMinAge)
	out := make([]ID, 0, len(ids)) // the pool's slice is not ours to filter
	for _, id := range ids {
		if at, ok := r.seen.get(id); ok && at.After(fresh) {
			continue
		}
		out = append(out, id)
	}
	return out, true
}

// Reconcile runs one session with p: it fetches the txs p holds and we
// lack, adds them to the pool and announces those it takes. Sessions run
// on their own every ReconcileInterval (Config.ReconcileInterval); this is
// also the way to run one now.
func (r *Relay) Reconcile(ctx context.Context, p PeerID) (ReconcileResult, error) {
	var res ReconcileResult
	ids, ok := r.pendingIDs()
	if !ok {
		return res, ErrNoReconcile
	}
	// Marked at the start, whatever the outcome: a peer that fails every
	// session (busy, silent, an older version) must not be picked first
	// round after round.
	r.noteReconcileStart(p)
	count := r.reconSymbols(p)
	var dec *recon.Decoder
	for attempt := 0; ; attempt++ {
		if attempt == MaxReconcileAttempts {
			// The difference is bigger than the last attempt's symbols
			// decode: start the next session (any peer) from there.
			r.noteReconcile(p, count)
			return res, ErrUndecoded
		}
		var key recon.Key
		_, _ = rand.Read(key[:])
		enc := recon.NewEncoder(key)
		for _, id := range ids {
			enc.Add(id)
		}
		dec = recon.NewDecoder(enc)
		q := &wire.GetSymbols{Key: key, Count: uint32(count)}
		resp, err := r.requestClass(ctx, p, q, wire.MaxSymbolsResponseFrame, classReconcile)
		if err != nil {
			return res, err
		}
		batch := resp.(*wire.Symbols).Batch
		if len(batch) == 0 {
			return res, ErrPeerNoReconcile
		}
		start, syms, err := recon.DecodeSymbols(batch)
		switch {
		case err != nil:
			return res, badResponse(OffenseMalformed, "symbols: %v", err)
		case start != 0 || len(syms) != count:
			return res, badResponse(OffenseMalformed, "symbols %d+%d for 0+%d", start, len(syms), count)
		}
		res.Symbols += len(syms)
		if err := dec.Add(0, syms); err != nil {
			// Inconsistent symbols, or past the decoder's bounds: one
			// answer is one snapshot of the peer's pool, so these are not
			// the difference of two pools.
			return res, badResponse(OffenseMalformed, "symbols: %v", err)
		}
		if dec.Decoded() {
			break
		}
		if count == recon.MaxSymbolsPerBatch {
			// No attempt may ask for more, and another key at the same
			// count rarely decodes what this one did not.
			r.noteReconcile(p, count)
			return r.reconcileByListing(ctx, p, res)
		}
		if attempt < MaxReconcileAttempts-1 {
			count = min(4*count, recon.MaxSymbolsPerBatch)
		}
	}
	local := dec.Local()
	res.Missing, res.Extra = dec.Remote(), len(local)
	r.noteReconcile(p, len(res.Missing)+res.Extra)
	r.stats.reconciled.Add(1)
	r.noteReconciledHeld(p, ids, local)
	res.Added = r.pullMissing(ctx, p, res.Missing)
	return res, nil
}

// reconcileByListing ends a session whose difference did not decode at
// the largest symbol count: it asks p for a listing of its pending ids
// (MaxReconcileSet at most, 32 bytes each: what GetPoolIDs serves joining
// peers), waits ReconcileListWait for gossip to bring what it is still
// bringing, and pulls what is still missing. The pool lists its txs by fee
// rate and then oldest first, in each sender's nonce order, so a tx that
// gossip lost and that holds back its sender's later ones comes before
// them and before the newest txs. A peer that lists ids it then answers
// not found costs itself an offense per request, as a lying sketch does.
//
// The session's failed count stays noted for p and as the guess for new
// peers (noteReconcile), so the next session starts at the largest batch
// and, while the difference stays that large, falls back after one
// attempt instead of climbing through three.
func (r *Relay) reconcileByListing(ctx context.Context, p PeerID, res ReconcileResult) (ReconcileResult, error) {
	listed, err := r.requestPoolIDs(ctx, p, MaxReconcileSet, classReconcile)
	if err != nil {
		return res, err
	}
	t := time.NewTimer(ReconcileListWait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return res, ctx.Err()
	}
	dup := make(map[ID]struct{}, len(listed)) // a listing may repeat ids
	for _, id := range listed {
		if _, ok := dup[id]; ok {
			continue
		}
		dup[id] = struct{}{}
		if !r.pool.HasTx(id) && !r.recentlyRejected(id) {
			res.Missing = append(res.Missing, id)
		}
	}
	res.Listed = true
	r.stats.reconcileListed.Add(1)
	res.Added = r.pullMissing(ctx, p, res.Missing)
	r.log.Debugw("reconciled by listing", "peer", p, "listed", len(listed), "missing", len(res.Missing), "added", res.Added)
	return res, nil
}

// noteReconciledHeld tells the TxHeldHook that p holds every id of our
// session set but the decoded extras: the symbols of its pool cancelled
// them. (A peer can lie about that as it can in an announcement; the hook's
// user counts distinct peers.)
func (r *Relay) noteReconciledHeld(p PeerID, set, extra []ID) {
	if r.held == nil || len(set) == 0 {
		return
	}
	lacks := make(map[ID]struct{}, len(extra))
	for _, id := range extra {
		lacks[id] = struct{}{}
	}
	held := make([]ID, 0, len(set)-min(len(extra), len(set)))
	for _, id := range set {
		if _, ok := lacks[id]; !ok {
			held = append(held, id)
		}
	}
	r.noteTxHeld(p, held)
}

// pullMissing fetches ids from p (p first; other announcers the fetcher
// knows of as fallback) and announces what the pool takes.
func (r *Relay) pullMissing(ctx context.Context, p PeerID, ids []ID) int {
	added := 0
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxTxsPerRequest)
		var want []ID
		for _, id := range ids[:n] {
			if !r.pool.HasTx(id) && !r.recentlyRejected(id) {
				want = append(want, id)
			}
		}
		ids = ids[n:]
		if len(want) == 0 {
			continue
		}
		results, err := r.fetch.pull(ctx, p, kindTx, want)
		if err != nil {
			return added
		}
		var got []ID
		for i, res := range results {
			if res.status == stOK && res.verdict == Accepted {
				got = append(got, want[i])
			}
		}
		added += len(got)
		r.stats.reconcilePulled.Add(uint64(len(got)))
		r.Announce(got)
	}
	return added
}

// reconSymbols is the first attempt's symbol count with p: 1.5 symbols per
// id of the last difference found with it (the codec needs ~1.4 for
// differences of tens of ids), at least MinReconcileSymbols. With a peer
// it has no difference for, the node guesses the difference its latest
// session found with any peer: pools differ alike across peers, and after
// a partition heals or a restart empties the pool every peer is far off,
// where starting from the minimum would fail session after session.
func (r *Relay) reconSymbols(p PeerID) int {
	r.reconMu.Lock()
	defer r.reconMu.Unlock()
	d, ok := r.reconDiff[p]
	if !ok {
		d = r.reconGuess
	}
	return min(max(MinReconcileSymbols, d+d/2+8), recon.MaxSymbolsPerBatch)
}

// noteReconcileStart records that a session with p starts now.
func (r *Relay) noteReconcileStart(p PeerID) {
	r.reconMu.Lock()
	defer r.reconMu.Unlock()
	if _, ok := r.reconLast[p]; !ok && len(r.reconLast) >= MaxReconcilePeers {
		return // past the bound (more peers than any node keeps)
	}
	r.reconLast[p] = r.now()
}

// noteReconcile records the difference a session with p found, or for a
// session that did not decode the symbol count of its last attempt (the
// difference is larger: the next session starts at 1.5 times that), for p
// and as the node's guess for peers it has none for.
func (r *Relay) noteReconcile(p PeerID, diff int) {
	r.reconMu.Lock()
	defer r.reconMu.Unlock()
	r.reconGuess = diff
	if _, ok := r.reconDiff[p]; !ok && len(r.reconDiff) >= MaxReconcilePeers {
		return // past the bound: such a peer starts from the minimum
	}
	r.reconDiff[p] = diff
}

// MaxReconcilePeers bounds the per-peer reconciliation state (last
// difference, last session); a peer that leaves is forgotten at the next
// round.
const MaxReconcilePeers = 1024

// reconcileLoop starts a session every interval (jittered by up to a
// quarter either way, so nodes do not all reconcile in step) with the
// connected peer reconciled least recently. A session that did not decode
// is followed at once by one more, with the next peer and from the count
// the failed one reached: a difference that large (a partition healed, a
// restart emptied the pool) is what reconciliation exists to repair, and
// waiting a whole interval for it doubled the repair time. One retry per
// round bounds the work when the difference is beyond any session's reach;
// it never asks the failed peer again (a second session within its
// GetSymbols window would be refused as a flood).
func (r *Relay) reconcileLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(jitter(interval))
	defer t.Stop()
	retried, failed := false, PeerID("")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := jitter(interval)
		p, ok := r.nextReconcilePeer()
		if retried && p == failed {
			// The only peer: asking it again now would exceed its
			// GetSymbols ration (MaxSymbolsPerWindow).
			ok = false
		}
		if ok {
			// A session that falls back to a listing also waits
			// ReconcileListWait before it pulls.
			sctx, cancel := context.WithTimeout(ctx, r.cfg.FetchTimeout+interval+ReconcileListWait)
			res, err := r.Reconcile(sctx, p)
			cancel()
			switch {
			case err == nil:
				if len(res.Missing) > 0 {
					r.log.Debugw("reconciled", "peer", p, "symbols", res.Symbols, "missing", len(res.Missing), "added", res.Added, "extra", res.Extra)
				}
			case errors.Is(err, ErrNoReconcile), errors.Is(err, ErrPeerNoReconcile), errors.Is(err, ErrClosed), ctx.Err() != nil:
			case errors.Is(err, ErrUndecoded):
				if !retried {
					next, failed = 0, p
				}
			default:
				r.log.Debugw("reconciliation failed", "peer", p, "err", err)
				if o, ok := offenseOfErr(err); ok {
					r.penalize(p, o)
				}
			}
		}
		retried = next == 0
		t.Reset(next)
	}
}

func jitter(d time.Duration) time.Duration {
	return d*3/4 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// nextReconcilePeer picks the connected peer reconciled least recently
// (one never reconciled first) and forgets the state of peers that left.
func (r *Relay) nextReconcilePeer() (PeerID, bool) {
	peers := r.tr.Peers()
	if len(peers) == 0 {
		return "", false
	}
	r.reconMu.Lock()
	defer r.reconMu.Unlock()
	connected := make(map[PeerID]bool, len(peers))
	best, bestAt := PeerID(""), time.Time{}
	for _, p := range peers {
		connected[p] = true
		at, seen := r.reconLast[p]
		if !seen {
			at = time.Time{} // never: before any session
		}
		if best == "" || at.Before(bestAt) {
			best, bestAt = p, at
		}
	}
	for p := range r.reconLast {
		if !connected[p] {
			delete(r.reconLast, p)
			delete(r.reconDiff, p)
		}
	}
	return best, true
}

// Serving bounds. Building symbols costs the server an encoder over its
// whole pending set (up to MaxReconcileSet ids hashed: milliseconds) for a
// request of a few bytes, so it is rationed apart from the byte budgets.
const (
	// SymbolsWindow and MaxSymbolsPerWindow ration one peer's GetSymbols:
	// an honest peer runs one session (at most MaxReconcileAttempts
	// requests, back to back) per ReconcileInterval, jittered to no less
	// than 3/4 of it, so a window of half the interval holds one session.
	// More is refused busy with OffenseRequestFlood.
	SymbolsWindow       = ReconcileInterval / 2
	MaxSymbolsPerWindow = MaxReconcileAttempts
	// MaxSymbolBuilds caps the symbol batches built at once over all
	// peers; past it a request is answered busy (no offense: honest peers
	// can arrive together).
	MaxSymbolBuilds = 2
)

// symbolGate rations GetSymbols: per peer by MaxSymbolsPerWindow per
// SymbolsWindow (the map is pruned of expired windows when it reaches
// MaxReconcilePeers), overall by MaxSymbolBuilds.
type symbolGate struct {
	mu     sync.Mutex
	peers  map[PeerID]*symbolWindow
	builds int
}

type symbolWindow struct {
	start time.Time
	n     int
}

// admit reports whether p may have symbols built now; flood says the
// refusal is p's fault.
func (g *symbolGate) admit(p PeerID, now time.Time) (ok, flood bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.peers == nil {
		g.peers = make(map[PeerID]*symbolWindow)
	}
	w := g.peers[p]
	if w != nil && now.Sub(w.start) >= SymbolsWindow {
		w = nil
		delete(g.peers, p)
	}
	if w != nil && w.n >= MaxSymbolsPerWindow {
		return false, true
	}
	if g.builds >= MaxSymbolBuilds {
		return false, false
	}
	if w == nil {
		if len(g.peers) >= MaxReconcilePeers {
			for q, x := range g.peers {
				if now.Sub(x.start) >= SymbolsWindow {
					delete(g.peers, q)
				}
			}
			if len(g.peers) >= MaxReconcilePeers {
				return false, false
			}
		}
		w = &symbolWindow{start: now}
		g.peers[p] = w
	}
	w.n++
	g.builds++
	return true, false
}

func (g *symbolGate) done() {
	g.mu.Lock()
	g.builds--
	g.mu.Unlock()
}

// serveSymbols answers GetSymbols from the pool's pending ids. Only
// symbols from index 0 are served: a session is one request (see the
// package doc), so a later start is nobody's honest request, and it would
// make us build symbols we do not send.
func (r *Relay) serveSymbols(p PeerID, q *wire.GetSymbols) wire.Response {
	if q.Start != 0 {
		r.penalize(p, OffenseBadRequest)
		return &wire.Error{Code: wire.ErrCodeBadRequest}
	}
	ok, flood := r.symbols.admit(p, r.now())
	if !ok {
		if flood {
			r.penalize(p, OffenseRequestFlood)
		}
		r.stats.serveBusy.Add(1)
		return &wire.Error{Code: wire.ErrCodeBusy}
	}
	defer r.symbols.done()
	ids, ok := r.pendingIDs()
	if !ok {
		return &wire.Symbols{}
	}
	enc := recon.NewEncoder(recon.Key(q.Key))
	for _, id := range ids {
		enc.Add(id)
	}
	syms, err := enc.Symbols(int(q.Start), int(q.Count))
	if err != nil {
		return &wire.Error{Code: wire.ErrCodeBadRequest}
	}
	batch, err := recon.AppendSymbols(nil, int(q.Start), syms)
	if err != nil {
		r.log.Errorw("encode symbols", "err", err)
		return &wire.Error{Code: wire.ErrCodeInternal}
	}
	return &wire.Symbols{Batch: batch}
}

// The wire format bounds symbol requests with its own constants (package
// wire cannot import recon); these fail to compile if they disagree.
var (
	_ [wire.MaxSymbolsPerRequest - recon.MaxSymbolsPerBatch]struct{}
	_ [recon.MaxSymbolsPerBatch - wire.MaxSymbolsPerRequest]struct{}
	_ [wire.MaxSymbolIndex - recon.MaxSymbols]struct{}
	_ [recon.MaxSymbols - wire.MaxSymbolIndex]struct{}
	_ [wire.MaxSymbolsBatchBytes - (wire.MaxSymbolsPerRequest*recon.SymbolSize + 16)]struct{}
)
