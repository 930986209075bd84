package relay

import (
	"context"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"
)

// Cut-through for tx announcements: a first announcement of txs we lack is
// forwarded as soon as it is checked, and the bodies are fetched behind it;
// a peer that asks for them meanwhile waits for the fetch (PendingServeWait)
// and is served from the pool. A tx hop then costs one link latency instead
// of three (announce, request, body), and the bodies trail the
// announcement by one round trip at the far end only.
//
// What keeps it honest:
//   - only the pool serves: a body that failed its checks never goes
//     further than the one hop that fetched it;
//   - a request for an id that was on its way but did not arrive is
//     answered busy, which costs the honest forwarder nothing; the
//     announcer that withheld pays its direct peers (OffenseNotFound);
//   - a peer that committed any offense in the last OffenderCooldown, or
//     whose early-forwarded announcement delivered none of its txs (a
//     busy answer is no offense), gets its announcements fetched before
//     they are forwarded, so its junk travels the network once per
//     cooldown at most; ids whose fetch failed lately are not news;
//   - at most MaxEarlyTxIDs ids are in flight behind early forwards, well
//     under MaxTrackedPerPeer, the ids a peer behind us tracks under our
//     name before it calls us a flooder;
//   - only where links are long: cut-through saves a round trip per hop,
//     but a peer behind us that fetches from us while we still fetch takes
//     a path one hop longer than the copy it might get from the origin.
//     On a LAN or loopback, where a round trip costs less than the work
//     of a hop, that loses (measured on 8 process nodes on loopback at 500
//     tx/s: tx to all p50 50-97 ms with cut-through against 28-33 ms
//     without). So txs cut through only once recent request round trips
//     (their low quartile) reach TxCutThroughMinRTT;
//   - only news is forwarded early: at least one id must be neither held
//     nor already on its way here, else the announcement takes the
//     fetch-first path (so distinct messages naming the same ids cannot
//     ride on one fetch).

// txFlight is the set of tx ids being fetched behind an early-forwarded
// announcement, each with a channel closed when its fetch ends, and those
// whose fetch failed lately: a peer behind us asks one link latency after
// we forwarded, possibly after our fetch failed, and must hear busy then
// too. At most MaxEarlyTxIDs in flight and MaxFetchItems failures (the
// oldest makes room).
type txFlight struct {
	mu     sync.Mutex
	m      map[ID]chan struct{}
	failed idRing[time.Time] // when the fetch failed
}

// begin registers the ids neither in flight nor failed since notSince and
// returns them; nil when that would put more than MaxEarlyTxIDs in flight.
func (f *txFlight) begin(ids []ID, notSince time.Time) []ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.m)+len(ids) > MaxEarlyTxIDs {
		return nil
	}
	if f.m == nil {
		f.m = make(map[ID]chan struct{})
	}
	var mine []ID
	for _, id := range ids {
		if _, ok := f.m[id]; ok {
			continue
		}
		if at, ok := f.failed.get(id); ok && at.After(notSince) {
			continue // a replay of ids that did not come: not news
		}
		f.m[id] = make(chan struct{})
		mine = append(mine, id)
	}
	return mine
}

// end closes the fetches of ids (those begin returned); the ones in
// failed did not land and are remembered as of now.
func (f *txFlight) end(ids, failed []ID, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if ch, ok := f.m[id]; ok {
			close(ch)
			delete(f.m, id)
		}
	}
	f.failed.cap = MaxFetchItems
	for _, id := range failed {
		f.failed.put(id, now)
	}
}

// wait waits up to timeout (or ctx) for the fetches of those ids that are
// in flight; it reports whether any was, or failed since now-recent.
func (f *txFlight) wait(ctx context.Context, ids []ID, timeout time.Duration, now time.Time, recent time.Duration) (tracked bool) {
	f.mu.Lock()
	var chans []chan struct{}
	for _, id := range ids {
		if ch, ok := f.m[id]; ok {
			chans = append(chans, ch)
		} else if at, ok := f.failed.get(id); ok && now.Sub(at) < recent {
			tracked = true
		}
	}
	f.mu.Unlock()
	if len(chans) == 0 {
		return tracked
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-t.C:
			return true
		case <-ctx.Done():
			return true
		}
	}
	return true
}

// offenders remembers the peers that committed an offense recently, at
// most MaxOffenders of them (past that, the oldest entry makes room).
type offenders struct {
	mu sync.Mutex
	m  map[PeerID]time.Time
}

func (o *offenders) note(p PeerID, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[PeerID]time.Time)
	}
	if _, ok := o.m[p]; !ok && len(o.m) >= MaxOffenders {
		var oldest PeerID
		var at time.Time
		for q, t := range o.m {
			if oldest == "" || t.Before(at) {
				oldest, at = q, t
			}
		}
		delete(o.m, oldest)
	}
	o.m[p] = now
}

// recent reports whether p committed an offense within cooldown of now.
func (o *offenders) recent(p PeerID, now time.Time, cooldown time.Duration) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.m[p]
	if ok && now.Sub(t) >= cooldown {
		delete(o.m, p)
		return false
	}
	return ok
}

// owes reports whether id is in flight here, or its fetch failed within
// recent of now.
func (f *txFlight) owes(id ID, now time.Time, recent time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.m[id]; ok {
		return true
	}
	at, ok := f.failed.get(id)
	return ok && now.Sub(at) < recent
}

// txCutThroughAllowed reports whether txs from announces may go on before
// their bodies are here, in either tx mode: not when configured
// fetch-first, not for a peer that offended lately, and only where recent
// request round trips are long enough for a hop to be worth saving (on
// short links a fetch here costs less than a longer path).
func (r *Relay) txCutThroughAllowed(from PeerID) bool {
	if r.cfg.TxFetchBeforeForward || r.offenders.recent(from, r.now(), OffenderCooldown) {
		return false
	}
	min := r.cfg.txCutThroughMinRTT()
	return min == 0 || r.rtt.lowQuartile() >= min
}

// forwardTxsEarly tries the cut-through path for an announcement whose
// ids in want we lack: it returns Accept with the fetch running behind,
// or ok false when the announcement must be fetched before it is
// forwarded (the option is off, the announcer offended recently, nothing
// in it is news, or a bound is reached).
func (r *Relay) forwardTxsEarly(from PeerID, ann []ID, want []ID) (res transport.Validation, ok bool) {
	if !r.txCutThroughAllowed(from) {
		return 0, false
	}
	if !r.txImports.acquire(from) {
		return 0, false
	}
	now := r.now()
	mine := r.txFlight.begin(want, now.Add(-r.cfg.FetchTimeout))
	if len(mine) == 0 {
		r.txImports.release(from)
		return 0, false
	}
	started := r.spawn(func() {
		defer r.txImports.release(from)
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.txValidateTimeout())
		defer cancel()
		if _, err := r.fetch.fetch(ctx, from, kindTx, want, nil); err != nil {
			r.log.Debugw("tx announcement forwarded early: fetch failed", "from", from, "err", err)
		}
		var failed []ID
		for _, id := range mine {
			if !r.pool.HasTx(id) {
				failed = append(failed, id)
			}
		}
		r.txFlight.end(mine, failed, r.now())
		if len(failed) == len(mine) {
			// Nothing of what it announced came, whatever the answer
			// (a busy or reset stream is no offense): its next
			// announcements are fetched before they go further.
			r.offenders.note(from, r.now())
		}
		// What the scheduler found wrong it has charged to the server
		// that answered. Ids that arrived count as announced from here,
		// so a replay of this announcement dies at the first hop.
		r.seen.markAnnounced(ann)
	})
	if !started { // closing
		r.txFlight.end(mine, nil, now)
		r.txImports.release(from)
		return 0, false
	}
	r.stats.earlyTxForward.Add(1)
	return transport.Accept, true
}
