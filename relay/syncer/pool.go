package syncer

import (
	"errors"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

// Mempool sync: pool-id listings, tx fetches with fallback sources, and
// retries of txs the pool ignored on arrival.

// PoolIDsResult reports the answer to a GetPoolIDs.
func (c *Core) PoolIDsResult(req uint64, ids []wire.ID, err error, now time.Time) {
	c.setNow(now)
	r := c.take(req)
	if r == nil {
		return
	}
	defer c.schedule()
	ps := r.peer
	c.release(r)
	if err != nil {
		c.failed(r, err)
		return
	}
	if len(ids) > r.max {
		c.reject(ps, OffenseUnrequested, "%d pool ids for max %d", len(ids), r.max)
		return
	}
	c.success(ps)
	c.stats.PoolIDsReceived += uint64(len(ids))
	for _, id := range ids {
		if c.pool.HasTx(id) {
			continue
		}
		w := c.wanted[id]
		if w == nil {
			if len(c.wanted) >= MaxWantedTxs {
				continue
			}
			w = &want{}
			c.wanted[id] = w
		}
		if len(w.sources) >= MaxTxSources || slices.Contains(w.sources, ps.id) {
			continue
		}
		w.sources = append(w.sources, ps.id)
		ps.txQueue = append(ps.txQueue, id)
	}
}

// TxsResult reports the answer to a GetTxs: bodies[i] answers the i-th id
// asked (nil: not held).
func (c *Core) TxsResult(req uint64, bodies [][]byte, err error, now time.Time) {
	c.setNow(now)
	r := c.take(req)
	if r == nil {
		return
	}
	defer c.schedule()
	ps := r.peer
	if err == nil && len(bodies) > len(r.ids) {
		c.penalize(ps.id, OffenseUnrequested, "%d txs for %d ids", len(bodies), len(r.ids))
		err = errUnrequested
	}
	if err != nil {
		c.release(r)
		c.failed(r, err)
		return
	}
	ps.txReqs--
	c.txReqs--
	r.released = true
	c.success(ps)
	var cut []wire.ID
	for i, id := range r.ids {
		w := c.wanted[id]
		if w == nil || w.inflight != r.id {
			continue
		}
		w.inflight = 0
		switch {
		case i >= len(bodies):
			cut = append(cut, id) // cut at the peer's size limit: ask again
		case bodies[i] == nil:
			c.reroute(id, w, ps.id)
		case !c.txMatches(bodies[i], id):
			c.penalize(ps.id, OffenseMismatch, "tx body for %s hashes to another id", id.Short())
			c.reroute(id, w, ps.id)
		default:
			delete(c.wanted, id)
			c.stats.TxsFetched++
			c.emit(&AddTx{Peer: ps.id, ID: id, Body: bodies[i]})
		}
	}
	if len(cut) > 0 {
		ps.txQueue = append(cut, ps.txQueue...)
	}
}

var errUnrequested = errors.New("syncer: unrequested items")

// TxResult reports the pool's verdict on an AddTx.
func (c *Core) TxResult(a *AddTx, v Verdict, err error, now time.Time) {
	c.setNow(now)
	if a.Retry {
		c.retryLeft--
	}
	switch v {
	case Accepted:
		c.stats.TxsAdded++
		if a.Retry {
			c.retryProgress = true
		}
	case Invalid:
		c.penalize(a.Peer, OffenseInvalidTx, "tx %s: %v", a.ID.Short(), err)
	case Ignored:
		if c.retryBytes+len(a.Body) <= MaxRetryTxBytes {
			c.retry = append(c.retry, &AddTx{Peer: a.Peer, ID: a.ID, Body: a.Body, Retry: true})
			c.retryBytes += len(a.Body)
		}
	}
	if a.Retry && c.retryLeft == 0 {
		if !c.retryProgress {
			// A whole pass added nothing: what is left will not fit.
			c.retry, c.retryBytes = nil, 0
		}
		c.schedule()
	}
}

// retryTxs offers the ignored txs to the pool again once no fetch is in
// flight, one pass at a time, while passes make progress.
func (c *Core) retryTxs() {
	if len(c.retry) == 0 || c.retryLeft > 0 || c.txReqs > 0 || c.poolReqs > 0 {
		return
	}
	batch := c.retry
	c.retry, c.retryBytes = nil, 0
	c.retryLeft, c.retryProgress = len(batch), false
	for _, a := range batch {
		c.emit(a)
	}
}

func (c *Core) syncPool() {
	// Only once caught up with every tip we know: a pool's txs spend state
	// from blocks we may lack. A peer whose tip is not known yet does not
	// hold up the others.
	if c.cfg.NoPoolSync || c.behind() {
		return
	}
	for _, ps := range c.peerList {
		if c.poolReqs >= MaxPoolIDRequestsInFlight {
			break
		}
		if ps.bad || ps.poolAsked || !ps.tipKnown || c.now.Before(ps.coolUntil) {
			continue
		}
		ps.poolAsked = true
		ps.poolTries++
		r := c.newRequest(ps, reqPoolIDs)
		r.max = MaxPoolIDsPerResponse
		c.poolReqs++
		c.emit(&GetPoolIDs{Req: r.id, Peer: ps.id, Max: r.max, Timeout: ps.timeout})
	}
	c.assignTxs()
	c.retryTxs()
}

func (c *Core) assignTxs() {
	for _, ps := range c.peerList {
		if c.now.Before(ps.coolUntil) {
			continue
		}
		for ps.txReqs < MaxTxRequestsPerPeer && len(ps.txQueue) > 0 {
			ids := make([]wire.ID, 0, min(MaxTxsPerRequest, len(ps.txQueue)))
			n := 0
			for n < len(ps.txQueue) && len(ids) < MaxTxsPerRequest {
				id := ps.txQueue[n]
				n++
				w := c.wanted[id]
				if w == nil || w.inflight != 0 {
					continue
				}
				if c.pool.HasTx(id) {
					delete(c.wanted, id) // arrived by gossip meanwhile
					continue
				}
				ids = append(ids, id)
			}
			ps.txQueue = ps.txQueue[n:]
			if len(ps.txQueue) == 0 {
				ps.txQueue = nil
			}
			if len(ids) == 0 {
				continue
			}
			r := c.newRequest(ps, reqTxs)
			r.ids = ids
			for _, id := range ids {
				c.wanted[id].inflight = r.id
			}
			ps.txReqs++
			c.txReqs++
			c.emit(&GetTxs{Req: r.id, Peer: ps.id, IDs: ids, Timeout: ps.timeout})
		}
	}
}

// reroute moves a wanted tx from a source that failed to serve it to the
// next source, or forgets it when none is left.
func (c *Core) reroute(id wire.ID, w *want, from transport.PeerID) {
	w.sources = slices.DeleteFunc(w.sources, func(p transport.PeerID) bool { return p == from || c.peers[p] == nil })
	if len(w.sources) == 0 {
		delete(c.wanted, id)
		return
	}
	next := c.peers[w.sources[0]]
	next.txQueue = append(next.txQueue, id)
}

// txMatches reports whether body is the tx with id under the chain's id rule.
func (c *Core) txMatches(body []byte, id wire.ID) bool {
	got, err := c.pool.TxID(body)
	return err == nil && got == id
}
