package relay

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/rumor-relay/rumor/relay/recon"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// peerSlots bounds work in progress per peer and overall, in units the
// caller chooses: requests served at once (MaxServePerPeer, MaxServeTotal),
// each topic's validations (MaxTxValidationsPerPeer of
// TxValidateConcurrency, ...), or response bytes held
// (MaxServeResponsesPerPeer, MaxServeBytesInFlight). A peer has an entry only
// while it holds something, so the map is bounded by the total. A tightly
// scoped mutex guards the counters; nothing blocks under it.
type peerSlots struct {
	perPeer, total int

	mu      sync.Mutex
	running int
	per     map[PeerID]int
}

func newPeerSlots(perPeer, total int) *peerSlots {
	return &peerSlots{perPeer: perPeer, total: total, per: make(map[PeerID]int)}
}

// acquire takes one of p's slots; false when p or everyone holds the cap.
func (l *peerSlots) acquire(p PeerID) bool { return l.acquireN(p, 1) }

// release gives back a slot acquire took.
func (l *peerSlots) release(p PeerID) { l.releaseN(p, 1) }

// acquireN takes n units for p; false (and nothing taken) when that would
// put p or everyone over the cap.
func (l *peerSlots) acquireN(p PeerID, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running+n > l.total || l.per[p]+n > l.perPeer {
		return false
	}
	l.running += n
	l.per[p] += n
	return true
}

// releaseN gives back n units acquireN took.
func (l *peerSlots) releaseN(p PeerID, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running -= n
	if l.per[p] -= n; l.per[p] <= 0 {
		delete(l.per, p)
	}
}

// busyAnswer is the encoded ErrCodeBusy answer.
func (r *Relay) busyAnswer() []byte {
	busy, _ := (&wire.Error{Code: wire.ErrCodeBusy}).Encode()
	r.noteBytes(false, protoRequest, classRequest, wire.FrameSize(len(busy)))
	return busy
}

// handleRequest serves one inbound request (transport.RequestHandler). In
// order, each step before any work it guards:
//   - the peer's request budget and its share of the requests served at
//     once (busy and OffenseRequestFlood past either);
//   - the request, read with its cap and decoded;
//   - response bytes: a bound on the answer (exact for whole blocks when
//     the chain is a BlockSizer) is reserved from the peer's share of the
//     bytes held at once and the node's (busy past either: a crowd of
//     honest syncing peers can fill them too); an exact bound is charged
//     to the node's upload cap and the peer's byte budget before the
//     blocks are loaded, anything else once its (small) answer is built;
//   - after building, the reservation shrinks to the answer's size.
//
// The request slot and the bytes are held until the transport has written
// the answer (sent), so slow readers count against the same caps.
func (r *Relay) handleRequest(p PeerID, read transport.ReadRequest) ([]byte, func()) {
	overBudget := r.budget != nil && !r.budget.AllowRequest(p, r.now())
	if overBudget || !r.limiter.acquire(p) {
		if overBudget {
			r.log.Debugw("request over budget", "peer", p)
		}
		r.penalize(p, OffenseRequestFlood)
		return r.busyAnswer(), nil
	}
	held := 0 // response bytes reserved
	sent := func() {
		if held > 0 {
			r.serveBytes.releaseN(p, held)
		}
		r.limiter.release(p)
	}
	data, err := read(wire.MaxRequestFrame)
	reqClass := classRequest
	if len(data) > 0 && data[0] == wire.TagGetSymbols {
		reqClass = classReconcile
	}
	r.noteBytes(true, protoRequest, reqClass, wire.FrameSize(len(data)))
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrFrameTooLarge):
			r.penalize(p, OffenseOversize)
		case errors.Is(err, wire.ErrMalformed):
			r.penalize(p, OffenseMalformed)
		}
		return nil, sent
	}
	req, err := wire.DecodeRequest(data)
	if err != nil {
		r.penalize(p, OffenseMalformed)
		out, _ := (&wire.Error{Code: wire.ErrCodeBadRequest}).Encode()
		r.noteBytes(false, protoRequest, classRequest, wire.FrameSize(len(out)))
		return out, sent
	}
	bound, exact := r.responseBound(req)
	if !r.serveBytes.acquireN(p, bound) {
		r.log.Debugw("response bytes held at cap", "peer", p, "bound", bound)
		r.stats.serveBusy.Add(1)
		return r.busyAnswer(), sent
	}
	held = bound
	if exact && !r.chargeBytes(p, bound) {
		return r.busyAnswer(), sent
	}
	resp := r.serve(p, req)
	out, err := resp.Encode()
	if err != nil {
		r.log.Errorw("encode response", "peer", p, "err", err)
		out, _ = (&wire.Error{Code: wire.ErrCodeInternal}).Encode()
	}
	switch {
	case len(out) < held:
		r.serveBytes.releaseN(p, held-len(out))
		held = len(out)
	case len(out) > held:
		// Only an exact bound can be short (the sizer's estimate, or a
		// reorg between sizing and serving): take the rest, or answer busy.
		if !r.serveBytes.acquireN(p, len(out)-held) {
			r.stats.serveBusy.Add(1)
			return r.busyAnswer(), sent
		}
		held = len(out)
	}
	charge := len(out) // a bound from caps: charged now, in full
	if exact {
		charge = len(out) - bound // charged before loading: only any excess
	}
	if !r.chargeBytes(p, charge) {
		return r.busyAnswer(), sent
	}
	class := classRequest
	switch a := resp.(type) {
	case *wire.Txs:
		class = classBody
		r.noteServedTxs(p, req, a)
	case *wire.Block, *wire.BlockTxn, *wire.Blocks:
		class = classBody
	case *wire.Symbols:
		class = classReconcile
	}
	r.noteBytes(false, protoRequest, class, wire.FrameSize(len(out)))
	r.stats.served.Add(1)
	return out, sent
}

// noteServedTxs tells the TxHeldHook that p is getting the bodies of the
// txs answered, once the answer has passed every charge (a busy answer
// delivers nothing).
func (r *Relay) noteServedTxs(p PeerID, req wire.Request, a *wire.Txs) {
	if r.held == nil {
		return
	}
	var ids []ID
	switch q := req.(type) {
	case *wire.GetTxs:
		ids = q.IDs
	case *wire.GetTxsByPrefix:
		ids, _ = r.resolvePrefixes(q.Prefixes[:len(a.Bodies)], false)
	}
	var held []ID
	for i, b := range a.Bodies {
		if b != nil && !ids[i].IsZero() {
			held = append(held, ids[i])
		}
	}
	r.noteTxHeld(p, held)
}

// chargeBytes takes n bytes from the node's upload cap and then from p's
// byte budget. Over the node's cap is nobody's fault (busy, no penalty);
// over p's budget costs p OffenseRequestFlood. On false the caller answers
// busy: an honest peer retries elsewhere, a greedy one gets nothing.
func (r *Relay) chargeBytes(p PeerID, n int) bool {
	if n <= 0 {
		return true
	}
	now := r.now()
	up := r.upload.ReserveN(now, n)
	if !up.OK() || up.DelayFrom(now) > 0 {
		up.CancelAt(now)
		r.log.Debugw("upload cap reached", "peer", p, "bytes", n)
		r.stats.serveBusy.Add(1)
		return false
	}
	if r.budget != nil && !r.budget.AllowBytes(p, n, now) {
		up.CancelAt(now)
		r.log.Debugw("response over byte budget", "peer", p, "bytes", n)
		r.penalize(p, OffenseRequestFlood)
		return false
	}
	return true
}

// responseFraming is what an answer adds to the bodies it carries, with
// room for a BlockSizer's estimate being a few bytes short per block.
const responseFraming = 1 << 10

// responseBound bounds the encoded answer to req before it is built.
// exact reports a bound computed from the stored blocks' sizes (whole
// blocks with a BlockSizer): the request's cost is then known before any
// block is loaded. Other bounds are the protocol's caps for the request.
func (r *Relay) responseBound(req wire.Request) (bound int, exact bool) {
	sizer, hasSizer := r.chain.(BlockSizer)
	switch q := req.(type) {
	case *wire.GetTxs, *wire.GetTxsByPrefix:
		return r.cfg.maxTxsResponseFrame(), false
	case *wire.GetBlock:
		if !hasSizer {
			return r.cfg.maxResponseFrame(), false
		}
		n, ok := sizer.BlockSize(q.ID)
		if !ok {
			n = 0 // not stored: an empty answer
		}
		return min(n, r.cfg.MaxBlockBytes) + responseFraming, true
	case *wire.GetBlockTxn:
		bound := len(q.Indexes)*(r.cfg.MaxTxBytes+binary.MaxVarintLen32) + responseFraming
		if hasSizer {
			if n, ok := sizer.BlockSize(q.Block); ok {
				bound = min(bound, n+len(q.Indexes)*binary.MaxVarintLen32+responseFraming)
			}
		}
		return min(bound, r.cfg.maxResponseFrame()), false
	case *wire.GetBlocks:
		if !hasSizer {
			return r.cfg.maxResponseFrame(), false
		}
		// The blocks serve will send, cut where serve cuts.
		size, count := 0, 0
		for i := uint64(0); i < uint64(q.Count); i++ {
			h := q.Start + i
			if h < q.Start {
				break
			}
			id, ok := r.chain.BlockIDAt(h)
			if !ok {
				break
			}
			n, ok := sizer.BlockSize(id)
			if !ok || (size+n > r.cfg.MaxBlockBytes && size > 0) {
				break
			}
			size += n
			count++
		}
		return size + count*binary.MaxVarintLen32 + responseFraming, true
	case *wire.GetHeaders:
		n := min(int(q.Max), wire.MaxHeadersPerResponse)
		return min(n*(wire.MaxHeaderBytes+binary.MaxVarintLen32)+responseFraming, r.cfg.maxResponseFrame()), false
	case *wire.GetPoolIDs:
		return min(int(q.Max), wire.MaxPoolIDsPerResponse)*len(ID{}) + responseFraming, false
	case *wire.GetSymbols:
		return recon.BatchSize(int(q.Start), int(q.Count)) + responseFraming, false
	}
	return responseFraming, false // tips and errors
}

// serve answers one decoded request from the pool and chain.
func (r *Relay) serve(p PeerID, req wire.Request) wire.Response {
	switch q := req.(type) {
	case *wire.GetTxs:
		r.metrics.servedRequest("txs")
		owed := r.awaitPendingTxs(q.IDs)
		return r.serveTxs(q.IDs, func(i int) bool { return owed[q.IDs[i]] })
	case *wire.GetTxsByPrefix:
		r.metrics.servedRequest("txprefix")
		ids, owed := r.resolvePrefixes(q.Prefixes, true)
		return r.serveTxs(ids, func(i int) bool { return owed[i] })
	case *wire.GetBlock:
		r.metrics.servedRequest("block")
		b, ok, busy := r.blockToServe(q.ID)
		if busy {
			return &wire.Error{Code: wire.ErrCodeBusy}
		}
		if !ok || len(b) > r.cfg.MaxBlockBytes {
			return &wire.Block{}
		}
		return &wire.Block{Block: b}
	case *wire.GetBlockTxn:
		r.metrics.servedRequest("blocktxn")
		b, ok, busy := r.blockToServe(q.Block)
		if busy {
			return &wire.Error{Code: wire.ErrCodeBusy}
		}
		if !ok {
			return &wire.BlockTxn{Block: q.Block}
		}
		_, txs, err := r.chain.SplitBlock(b)
		if err != nil {
			r.log.Errorw("split stored block", "block", q.Block.Short(), "err", err)
			return &wire.Error{Code: wire.ErrCodeInternal}
		}
		out := &wire.BlockTxn{Block: q.Block, Found: true, Txs: make([][]byte, len(q.Indexes))}
		for i, idx := range q.Indexes {
			if int(idx) >= len(txs) {
				r.penalize(p, OffenseBadRequest)
				return &wire.Error{Code: wire.ErrCodeBadRequest}
			}
			out.Txs[i] = txs[idx]
		}
		return out
	case *wire.GetHeaders:
		r.metrics.servedRequest("headers")
		return &wire.Headers{Headers: r.headersAfter(q)}
	case *wire.GetTip:
		r.metrics.servedRequest("tip")
		h, id := r.chain.Tip()
		return &wire.Tip{Height: h, ID: id}
	case *wire.GetPoolIDs:
		r.metrics.servedRequest("poolids")
		src, ok := r.pool.(PoolIDSource)
		if !ok {
			return &wire.PoolIDs{}
		}
		ids := src.PendingIDs(int(q.Max))
		return &wire.PoolIDs{IDs: ids[:min(len(ids), int(q.Max))]}
	case *wire.GetSymbols:
		r.metrics.servedRequest("symbols")
		return r.serveSymbols(p, q)
	case *wire.GetBlocks:
		r.metrics.servedRequest("blocks")
		out := &wire.Blocks{}
		size := 0
		for i := uint64(0); i < uint64(q.Count); i++ {
			h := q.Start + i
			if h < q.Start { // overflow
				break
			}
			id, ok := r.chain.BlockIDAt(h)
			if !ok {
				break
			}
			b, ok := r.chain.GetBlock(id)
			if !ok || len(b) == 0 || len(b) > r.cfg.MaxBlockBytes {
				break
			}
			// Cut at one maximal block of this chain, which is what the
			// requester's response cap allows (Config.maxResponseFrame).
			if size+len(b) > r.cfg.MaxBlockBytes && size > 0 {
				break
			}
			size += len(b)
			out.Blocks = append(out.Blocks, b)
		}
		return out
	}
	return &wire.Error{Code: wire.ErrCodeBadRequest}
}

// serveTxs answers a request for the txs ids (a zero id: one this node
// holds none for) from the pool, cut at TxResponseSoftBytes and before the
// first id it owes (owed(i): announced early, not held yet): busy when
// that is the first.
func (r *Relay) serveTxs(ids []ID, owed func(i int) bool) wire.Response {
	if owed(0) {
		return &wire.Error{Code: wire.ErrCodeBusy}
	}
	out := &wire.Txs{Bodies: make([][]byte, 0, len(ids))}
	size := 0
	for i, id := range ids {
		if owed(i) {
			// Cut here: the asker takes a short answer as
			// truncated and asks again for the rest.
			break
		}
		var b []byte
		if !id.IsZero() {
			b, _ = r.pool.GetTx(id)
		}
		if len(b) == 0 || len(b) > r.cfg.MaxTxBytes {
			b = nil
		}
		if size+len(b) > wire.TxResponseSoftBytes && size > 0 {
			break
		}
		size += len(b)
		out.Bodies = append(out.Bodies, b)
	}
	return out
}

// blockToServe returns a stored block, or one this node forwarded before
// storing it (cut-through), waiting up to PendingServeWait (or half
// FetchTimeout) for its body.
// busy means the block was on its way but is not here yet (or its import
// failed): not the asker's fault nor a sign that we withhold it, so the
// answer is busy rather than not found.
func (r *Relay) blockToServe(id ID) (block []byte, ok, busy bool) {
	if b, ok := r.chain.GetBlock(id); ok {
		return b, true, false
	}
	b, tracked := r.flight.waitBody(r.ctx, id, r.cfg.pendingServeWait())
	if b == nil {
		// The import may have stored it as the wait ended.
		if b, ok := r.chain.GetBlock(id); ok {
			return b, true, false
		}
		// A block we forwarded whose import failed lately: busy, so the
		// asker does not charge us for what we announced.
		return nil, false, tracked || r.flight.failedSince(id, r.now().Add(-r.cfg.BlockFetchTimeout))
	}
	return b, true, false
}

// awaitPendingTxs waits up to PendingServeWait (or half FetchTimeout) for
// the requested txs this node is fetching behind an announcement it
// forwarded early (cut-through), and returns those that still did not land
// (or whose fetch failed lately): ids we announced and owe, which must not
// be answered "not found" (the asker would charge us). The answer stops
// before the first of them (busy when it is the first id asked).
func (r *Relay) awaitPendingTxs(ids []ID) (owed map[ID]bool) {
	var pending []ID
	for _, id := range ids {
		if !r.pool.HasTx(id) {
			pending = append(pending, id)
		}
	}
	// Peers behind us ask within about a round trip of our forward; a
	// fetch that failed in the last FetchTimeout is still one we owe a
	// busy answer for.
	if len(pending) == 0 || !r.txFlight.wait(r.ctx, pending, r.cfg.pendingServeWait(), r.now(), r.cfg.FetchTimeout) {
		return nil
	}
	for _, id := range pending {
		if !r.pool.HasTx(id) && r.txFlight.owes(id, r.now(), r.cfg.FetchTimeout) {
			if owed == nil {
				owed = make(map[ID]bool)
			}
			owed[id] = true
		}
	}
	return owed
}

// header returns a stored block's encoded header.
func (r *Relay) header(id ID) ([]byte, bool) {
	if hs, ok := r.chain.(HeaderSource); ok {
		return hs.GetHeader(id)
	}
	b, ok := r.chain.GetBlock(id)
	if !ok {
		return nil, false
	}
	h, _, err := r.chain.SplitBlock(b)
	if err != nil {
		return nil, false
	}
	return h, true
}

// headersAfter finds the first locator id on our best chain (genesis when
// none) and returns the best-chain headers after it, up to q.Max or q.Stop.
func (r *Relay) headersAfter(q *wire.GetHeaders) [][]byte {
	start := uint64(0) // height of the fork point
	for _, id := range q.Locator {
		h, ok := r.header(id)
		if !ok {
			continue
		}
		info, err := r.chain.ParseHeader(h)
		if err != nil {
			continue
		}
		if best, ok := r.chain.BlockIDAt(info.Height); ok && best == id {
			start = info.Height
			break
		}
	}
	var out [][]byte
	size := 0
	for h := start + 1; len(out) < int(q.Max); h++ {
		id, ok := r.chain.BlockIDAt(h)
		if !ok {
			break
		}
		hdr, ok := r.header(id)
		if !ok || len(hdr) == 0 || len(hdr) > wire.MaxHeaderBytes {
			break
		}
		// Within the requester's response cap, like block ranges.
		if size += len(hdr) + 3; size > r.cfg.MaxBlockBytes {
			break
		}
		out = append(out, hdr)
		if id == q.Stop {
			break
		}
	}
	return out
}
