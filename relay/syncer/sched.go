package syncer

import (
	"context"
	"errors"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

// Request bookkeeping, the header chain and the scheduling of work: the
// parts of Core that its event handlers share.

func (c *Core) newRequest(ps *peerState, kind reqKind) *request {
	c.nextReq++
	r := &request{id: c.nextReq, kind: kind, peer: ps, timeout: ps.timeout, epoch: ps.epoch, deadline: c.now.Add(ps.timeout), gen: c.gen}
	c.reqs[r.id] = r
	ps.reqs[r.id] = struct{}{}
	return r
}

// take removes an outstanding request; nil when it is not (any more).
func (c *Core) take(id uint64) *request {
	r, ok := c.reqs[id]
	if !ok {
		return nil
	}
	delete(c.reqs, id)
	delete(r.peer.reqs, id)
	switch r.kind {
	case reqTip:
		c.tipReqs--
		r.peer.tipReq = 0
	case reqHeaders:
		if c.headersReq == id {
			c.headersReq = 0
		}
	}
	return r
}

// release returns a taken request's work to the queues (idempotent per
// request: only called once, right after take).
func (c *Core) release(r *request) {
	if r.released {
		return
	}
	r.released = true
	ps := r.peer
	switch r.kind {
	case reqBlocks:
		ps.blocksInFlight -= r.count
		for h := r.start; h < r.start+uint64(r.count); h++ {
			if c.assigned[h] == r.id {
				delete(c.assigned, h)
			}
		}
	case reqPoolIDs:
		c.poolReqs--
	case reqTxs:
		ps.txReqs--
		c.txReqs--
		for _, id := range r.ids {
			if w := c.wanted[id]; w != nil && w.inflight == r.id {
				w.inflight = 0
				c.reroute(id, w, ps.id)
			}
		}
	}
}

// failed handles a request that got no usable answer: a timeout is a stall.
func (c *Core) failed(r *request, err error) {
	ps := r.peer
	c.release(r)
	switch {
	case isTimeout(err) && r.epoch == ps.epoch:
		// One stall per timeout level: requests sent together under the
		// same deadline that all time out are one stall, not several.
		c.stats.Stalls++
		ps.stalls++
		ps.epoch++
		c.penalize(ps.id, OffenseStall, "no answer within %v", r.timeout)
		ps.timeout = min(2*ps.timeout, c.cfg.MaxStallTimeout)
	case isTimeout(err):
	case errors.Is(err, ErrMalformed):
		c.penalize(ps.id, OffenseMalformed, "%v", err)
		ps.coolUntil = c.now.Add(FailBackoff)
	default:
		ps.coolUntil = c.now.Add(FailBackoff)
	}
	if r.kind == reqPoolIDs && ps.poolTries < maxPoolTries {
		ps.poolAsked = false // ask again later
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// success resets a peer's stall state: it answered a request for data.
// A tip answer does not count, so a peer cannot hide stalled block
// requests behind prompt answers to tiny ones.
func (c *Core) success(ps *peerState) {
	ps.timeout = c.cfg.StallTimeout
	ps.stalls = 0
}

func (c *Core) requestTip(ps *peerState) {
	if ps.tipReq != 0 {
		return
	}
	r := c.newRequest(ps, reqTip)
	ps.tipReq = r.id
	c.tipReqs++
	c.emit(&GetTip{Req: r.id, Peer: ps.id, Timeout: ps.timeout})
}

func (c *Core) pollTips() {
	c.nextPoll = c.now.Add(c.cfg.TipPollInterval)
	for _, ps := range c.peerList {
		if !ps.bad {
			c.requestTip(ps)
		}
	}
}

// headerEnd is the newest block we hold or hold the header of.
func (c *Core) headerEnd() Tip {
	if n := len(c.hdrs); n > 0 {
		return Tip{Height: c.hdrs[n-1].Height, ID: c.hdrs[n-1].ID}
	}
	h, id := c.chain.Tip()
	return Tip{Height: h, ID: id}
}

// ahead reports whether ps's tip is a block we lack above our end.
func (c *Core) ahead(ps *peerState, end Tip) bool {
	if ps.bad || !ps.tipKnown || ps.tip.Height <= end.Height {
		return false
	}
	if _, ok := c.byID[ps.tip.ID]; ok {
		return false
	}
	return !c.chain.HasBlock(ps.tip.ID)
}

// behind reports whether some peer has blocks we lack.
func (c *Core) behind() bool {
	if len(c.hdrs) > 0 {
		return true
	}
	end := c.headerEnd()
	for _, ps := range c.peerList {
		if c.ahead(ps, end) {
			return true
		}
	}
	return false
}

func (c *Core) lowerTip(ps *peerState, t Tip) {
	if ps.tipKnown && ps.tip.Height > t.Height {
		ps.tip = t
	}
	ps.agree = min(ps.agree, t.Height)
}

func (c *Core) markBad(p transport.PeerID) {
	if ps := c.peers[p]; ps != nil {
		ps.bad = true
		ps.agree = 0
	}
}

// refreshAgree updates what we know of ps's agreement with the header
// chain from its tip.
func (c *Core) refreshAgree(ps *peerState) {
	if !ps.tipKnown {
		return
	}
	if h, ok := c.byID[ps.tip.ID]; ok && h == ps.tip.Height {
		ps.agree = max(ps.agree, h)
	}
}

// locator lists block ids from the newest we know down to genesis: the
// newest locatorDense one by one, then with a doubling step.
func (c *Core) locator() []wire.ID {
	end := c.headerEnd()
	loc := make([]wire.ID, 0, MaxLocatorIDs)
	if c.hint != nil {
		loc = append(loc, *c.hint)
		c.hint = nil
	}
	step := uint64(1)
	h := end.Height
	for len(loc) < MaxLocatorIDs-1 {
		if id, ok := c.idAt(h); ok {
			loc = append(loc, id)
		}
		if h == 0 {
			return loc
		}
		if len(loc) >= locatorDense {
			step *= 2
		}
		if h < step {
			break
		}
		h -= step
	}
	if id, ok := c.chain.BlockIDAt(0); ok {
		loc = append(loc, id)
	}
	return loc
}

// idAt is the id of the header chain at height, else of our best chain.
func (c *Core) idAt(h uint64) (wire.ID, bool) {
	if h > c.base && h-c.base-1 < uint64(len(c.hdrs)) {
		return c.hdrs[h-c.base-1].ID, true
	}
	return c.chain.BlockIDAt(h)
}

// resetFrom drops the headers at height and above with their bodies, and
// cancels every block request in flight (their answers are for the old
// chain).
func (c *Core) resetFrom(height uint64) {
	if height <= c.base {
		height = c.base + 1
	}
	keep := int(height - c.base - 1)
	if keep < len(c.hdrs) {
		for _, h := range c.hdrs[keep:] {
			delete(c.byID, h.ID)
		}
		c.hdrs = c.hdrs[:keep]
	}
	for h, b := range c.bodies {
		if h >= height {
			c.bufBytes -= len(b.Body)
			delete(c.bodies, h)
		}
	}
	c.gen++
	for id, r := range c.reqs {
		if r.kind == reqBlocks {
			c.take(id)
			c.release(r)
		}
	}
	for _, ps := range c.peerList {
		ps.agree = min(ps.agree, height-1)
	}
	c.ignored = 0
	c.headInvalid = 0
	if c.connecting {
		c.connecting = false
	}
	if len(c.hdrs) == 0 {
		c.base = 0
	}
}

func (c *Core) popFront() {
	h := c.hdrs[0]
	delete(c.byID, h.ID)
	if b, ok := c.bodies[h.Height]; ok {
		c.bufBytes -= len(b.Body)
		delete(c.bodies, h.Height)
	}
	c.hdrs = c.hdrs[1:]
	c.base = h.Height
	if len(c.hdrs) == 0 {
		c.hdrs = nil
	}
}

// advance connects what can be connected: skips blocks the chain holds
// already (gossip got there first) and hands the next body to the driver.
func (c *Core) advance() {
	for !c.connecting && len(c.hdrs) > 0 {
		h := c.hdrs[0]
		if c.chain.HasBlock(h.ID) {
			c.ignored, c.headInvalid = 0, 0
			c.popFront()
			continue
		}
		b, ok := c.bodies[h.Height]
		if !ok || c.now.Before(c.pauseUntil) {
			return
		}
		c.connecting = true
		c.emit(&ConnectBlock{Height: h.Height, ID: h.ID, Body: b.Body, Peer: b.from})
		return
	}
}

// schedule hands out whatever work can start now.
func (c *Core) schedule() {
	c.requestHeaders()
	c.assignBlocks()
	if c.behind() {
		c.wasBehind = true
	} else if c.wasBehind && c.headersReq == 0 {
		// A round of catching up ended; the tips we had are old by now.
		c.wasBehind = false
		c.pollTips()
	}
	c.syncPool()
}

// pick chooses the best peer for which ok holds: peers without stalls
// first, then by better. A stalled peer is chosen only when no peer
// without stalls qualifies.
func (c *Core) pick(ok func(*peerState) bool, better func(a, b *peerState) bool) *peerState {
	var best *peerState
	for _, ps := range c.peerList {
		if ps.bad || c.now.Before(ps.coolUntil) || !ok(ps) {
			continue
		}
		if best == nil {
			best = ps
			continue
		}
		if a, b := ps.stalls == 0, best.stalls == 0; a != b {
			if a {
				best = ps
			}
			continue
		}
		if better(ps, best) {
			best = ps
		}
	}
	return best
}

func (c *Core) requestHeaders() {
	if c.headersReq != 0 || len(c.hdrs) >= MaxHeadersAhead {
		return
	}
	end := c.headerEnd()
	ps := c.pick(func(ps *peerState) bool { return c.ahead(ps, end) },
		func(a, b *peerState) bool { return a.tip.Height > b.tip.Height })
	if ps == nil {
		return
	}
	r := c.newRequest(ps, reqHeaders)
	r.max = min(MaxHeadersPerRequest, MaxHeadersAhead-len(c.hdrs))
	c.headersReq = r.id
	c.emit(&GetHeaders{Req: r.id, Peer: ps.id, Locator: c.locator(), Max: r.max, Timeout: ps.timeout})
}

func (c *Core) assignBlocks() {
	limit := min(len(c.hdrs), DownloadWindow)
	if limit == 0 {
		return
	}
	free := func(i int) bool {
		h := c.base + 1 + uint64(i)
		_, busy := c.assigned[h]
		_, have := c.bodies[h]
		return !busy && !have
	}
	anyAgrees := false
	for i := 0; i < limit && c.bufBytes < MaxBufferedBlockBytes; i++ {
		if !free(i) {
			continue
		}
		h := c.base + 1 + uint64(i)
		// A peer without stalls that could serve h, busy or not: while one
		// exists, stalled peers get nothing.
		healthy := false
		for _, ps := range c.peerList {
			if !ps.bad && ps.agree >= h && ps.stalls == 0 {
				healthy = true
				break
			}
		}
		ps := c.pick(func(ps *peerState) bool {
			if ps.agree < h {
				return false
			}
			anyAgrees = true
			return ps.blocksInFlight < MaxBlocksInFlightPerPeer && (ps.stalls == 0 || !healthy)
		}, func(a, b *peerState) bool { return a.blocksInFlight < b.blocksInFlight })
		if ps == nil {
			continue
		}
		n := 1
		for i+n < limit && n < BlocksPerRequest && ps.blocksInFlight+n < MaxBlocksInFlightPerPeer &&
			h+uint64(n) <= ps.agree && free(i+n) {
			n++
		}
		r := c.newRequest(ps, reqBlocks)
		r.start, r.count = h, n
		for k := 0; k < n; k++ {
			c.assigned[h+uint64(k)] = r.id
		}
		ps.blocksInFlight += n
		c.stats.BlocksRequested += uint64(n)
		c.emit(&GetBlocks{Req: r.id, Peer: ps.id, Start: h, Count: n, Timeout: ps.timeout})
		i += n - 1
	}
	if !anyAgrees && len(c.assigned) == 0 && c.headersReq == 0 && !c.connecting {
		// Nobody can serve the headers we hold (their source left, or every
		// peer moved on): drop them and start over from a fresh locator.
		if _, have := c.bodies[c.base+1]; !have {
			c.resetFrom(c.base + 1)
			c.requestHeaders()
		}
	}
}
