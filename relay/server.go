package relay

import (
	"errors"
	"sync"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// peerSlots bounds work in progress per peer and overall: the requests
// served at once (MaxServePerPeer, MaxServeTotal) and each topic's
// validations (MaxTxValidationsPerPeer of TxValidateConcurrency, ...). A
// peer has an entry only while it holds a slot, so the map is bounded by
// the total. A tightly scoped mutex guards the counters; nothing blocks
// under it.
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
func (l *peerSlots) acquire(p PeerID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running >= l.total || l.per[p] >= l.perPeer {
		return false
	}
	l.running++
	l.per[p]++
	return true
}

// release gives back a slot acquire took.
func (l *peerSlots) release(p PeerID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
	if l.per[p]--; l.per[p] <= 0 {
		delete(l.per, p)
	}
}

// handleRequest serves one inbound request (transport.RequestHandler): it
// refuses peers over their budget or the concurrency caps before reading
// anything, reads the request with its cap, and returns the encoded answer
// (nil resets the exchange). The transport runs it on its own goroutine per
// request; the limiter bounds how many run at once per peer and overall.
func (r *Relay) handleRequest(p PeerID, read transport.ReadRequest) []byte {
	overBudget := r.budget != nil && !r.budget.AllowRequest(p, r.now())
	if overBudget || !r.limiter.acquire(p) {
		if overBudget {
			r.log.Debugw("request over budget", "peer", p)
		}
		r.penalize(p, OffenseRequestFlood)
		busy, _ := (&wire.Error{Code: wire.ErrCodeBusy}).Encode()
		r.noteBytes(false, protoRequest, classRequest, wire.FrameSize(len(busy)))
		return busy
	}
	defer r.limiter.release(p)
	data, err := read(wire.MaxRequestFrame)
	r.noteBytes(true, protoRequest, classRequest, wire.FrameSize(len(data)))
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrFrameTooLarge):
			r.penalize(p, OffenseOversize)
		case errors.Is(err, wire.ErrMalformed):
			r.penalize(p, OffenseMalformed)
		}
		return nil
	}
	var resp wire.Response
	req, err := wire.DecodeRequest(data)
	if err != nil {
		r.penalize(p, OffenseMalformed)
		resp = &wire.Error{Code: wire.ErrCodeBadRequest}
	} else {
		resp = r.serve(p, req)
	}
	out, err := resp.Encode()
	if err != nil {
		r.log.Errorw("encode response", "peer", p, "err", err)
		out, _ = (&wire.Error{Code: wire.ErrCodeInternal}).Encode()
	}
	if r.budget != nil && !r.budget.AllowBytes(p, len(out), r.now()) {
		// Over the byte budget: answer busy rather than the body, so an
		// honest peer retries elsewhere and a greedy one gets nothing.
		r.penalize(p, OffenseRequestFlood)
		out, _ = (&wire.Error{Code: wire.ErrCodeBusy}).Encode()
		resp = nil
	}
	class := classRequest
	switch resp.(type) {
	case *wire.Txs, *wire.Block, *wire.BlockTxn, *wire.Blocks:
		class = classBody
	}
	r.noteBytes(false, protoRequest, class, wire.FrameSize(len(out)))
	r.stats.served.Add(1)
	return out
}

// serve answers one decoded request from the pool and chain.
func (r *Relay) serve(p PeerID, req wire.Request) wire.Response {
	switch q := req.(type) {
	case *wire.GetTxs:
		r.metrics.servedRequest("txs")
		out := &wire.Txs{Bodies: make([][]byte, 0, len(q.IDs))}
		size := 0
		for _, id := range q.IDs {
			b, ok := r.pool.GetTx(id)
			if !ok || len(b) == 0 || len(b) > r.cfg.MaxTxBytes {
				b = nil
			}
			if size+len(b) > wire.TxResponseSoftBytes && size > 0 {
				break
			}
			size += len(b)
			out.Bodies = append(out.Bodies, b)
		}
		return out
	case *wire.GetBlock:
		r.metrics.servedRequest("block")
		b, ok := r.chain.GetBlock(q.ID)
		if !ok || len(b) > r.cfg.MaxBlockBytes {
			return &wire.Block{}
		}
		return &wire.Block{Block: b}
	case *wire.GetBlockTxn:
		r.metrics.servedRequest("blocktxn")
		b, ok := r.chain.GetBlock(q.Block)
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
