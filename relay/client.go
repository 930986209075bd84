package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/rumor-relay/rumor/relay/wire"
)

// Errors of the request client. Callers tell them apart with errors.Is.
var (
	// ErrClosed: the relay is closed (or not started).
	ErrClosed = errors.New("relay: closed")
	// ErrTimeout: the peer did not answer within the deadline.
	ErrTimeout = errors.New("relay: request timed out")
	// ErrBadResponse: the peer's answer did not decode, was over its cap or
	// answered another request. The error is a *BadResponseError naming
	// the offense; the client reports nothing itself: the caller decides
	// what the failure costs the peer, once.
	ErrBadResponse = errors.New("relay: bad response")
	// ErrRefused: the peer answered with an error (busy, bad request).
	ErrRefused = errors.New("relay: request refused")
)

// BadResponseError is a peer's answer that broke the protocol, with the
// offense it amounts to. It matches ErrBadResponse under errors.Is.
type BadResponseError struct {
	Offense Offense
	Err     error
}

func (e *BadResponseError) Error() string { return fmt.Sprintf("%v: %v", ErrBadResponse, e.Err) }

// Is makes errors.Is(err, ErrBadResponse) true.
func (e *BadResponseError) Is(target error) bool { return target == ErrBadResponse }

// Unwrap returns the underlying error.
func (e *BadResponseError) Unwrap() error { return e.Err }

func badResponse(o Offense, format string, args ...any) error {
	return &BadResponseError{Offense: o, Err: fmt.Errorf(format, args...)}
}

// offenseOfErr returns the offense a request error proves, if any.
func offenseOfErr(err error) (Offense, bool) {
	var bad *BadResponseError
	if errors.As(err, &bad) {
		return bad.Offense, true
	}
	return 0, false
}

// overLimit is an oversize bad response when any item is over limit bytes
// (the embedding chain's limit, tighter than the wire's ceiling).
func overLimit(items [][]byte, limit int, what string) error {
	for _, it := range items {
		if len(it) > limit {
			return badResponse(OffenseOversize, "%s of %d bytes over the limit %d", what, len(it), limit)
		}
	}
	return nil
}

// request sends one request to p and returns its decoded response, read
// with a cap of maxResp bytes. Errors: ErrTimeout when ctx ended, a
// *BadResponseError for an answer that breaks the protocol, ErrRefused for
// an error answer, anything else for a transport failure (no fault
// proven). It reports no offense.
func (r *Relay) request(ctx context.Context, p PeerID, req wire.Request, maxResp int, bodyResp bool) (wire.Response, error) {
	class := classRequest
	if bodyResp {
		class = classBody
	}
	return r.requestClass(ctx, p, req, maxResp, class)
}

// requestClass is request with the class its response's bytes count in
// (the request's own bytes count as "request", or as "reconcile" for a
// reconciliation).
func (r *Relay) requestClass(ctx context.Context, p PeerID, req wire.Request, maxResp int, class string) (wire.Response, error) {
	payload, err := req.Encode()
	if err != nil {
		return nil, fmt.Errorf("relay: encode request: %w", err)
	}
	reqClass := classRequest
	if class == classReconcile {
		reqClass = classReconcile
	}
	r.noteBytes(false, protoRequest, reqClass, wire.FrameSize(len(payload)))
	start := r.now()
	data, err := r.tr.Request(ctx, p, r.proto, payload, maxResp)
	rtt := r.now().Sub(start)
	r.noteBytes(true, protoRequest, class, wire.FrameSize(len(data)))
	switch req.(type) {
	case *wire.GetBlock, *wire.GetBlockTxn:
		r.stats.blockIn.Add(uint64(wire.FrameSize(len(data))))
	case *wire.GetTxs, *wire.GetTxsByPrefix:
		r.stats.txBodyIn.Add(uint64(wire.FrameSize(len(data))))
	}
	switch {
	case err == nil:
	case errors.Is(err, wire.ErrFrameTooLarge):
		return nil, badResponse(OffenseOversize, "%v", err)
	case errors.Is(err, wire.ErrMalformed):
		return nil, badResponse(OffenseMalformed, "%v", err)
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded):
		// The transport may see the deadline pass before ctx's timer does.
		return nil, fmt.Errorf("%w: %s: %v", ErrTimeout, p.ShortString(), err)
	default:
		return nil, fmt.Errorf("relay: request to %s: %w", p.ShortString(), err)
	}
	resp, err := wire.DecodeResponse(data)
	if err != nil {
		return nil, badResponse(OffenseMalformed, "%v", err)
	}
	if e, ok := resp.(*wire.Error); ok {
		return nil, fmt.Errorf("%w: %s", ErrRefused, e.Code)
	}
	want := req.Tag() | 0x80
	if req.Tag() == wire.TagGetTxsByPrefix {
		want = wire.TagTxs // answered like GetTxs
	}
	if resp.Tag() != want {
		return nil, badResponse(OffenseMalformed, "answer %#x to request %#x", resp.Tag(), req.Tag())
	}
	switch req.(type) {
	case *wire.GetTip, *wire.GetTxs, *wire.GetTxsByPrefix:
		// Small answers: their round trips are the links' (sync asks
		// every new peer for its tip, so there are samples before the
		// first tx). Refusals (busy after a cut-through wait) are not.
		r.rtt.add(rtt)
	}
	return resp, nil
}

// RequestTxs asks p for transaction bodies by id (at most
// wire.MaxTxsPerRequest). out[i] answers ids[i], nil when p does not hold
// it; an answer shorter than ids was cut at p's response size limit (ask
// again for the rest). Bodies are not checked against their ids.
func (r *Relay) RequestTxs(ctx context.Context, p PeerID, ids []ID) ([][]byte, error) {
	return r.requestTxBodies(ctx, p, &wire.GetTxs{IDs: ids}, len(ids))
}

// requestTxBodies sends a request for n tx bodies and checks the Txs
// answer's shape: no more bodies than asked, none over the chain's limit.
func (r *Relay) requestTxBodies(ctx context.Context, p PeerID, req wire.Request, n int) ([][]byte, error) {
	resp, err := r.request(ctx, p, req, r.cfg.maxTxsResponseFrame(), true)
	if err != nil {
		return nil, err
	}
	txs := resp.(*wire.Txs)
	if len(txs.Bodies) > n {
		return nil, badResponse(OffenseUnrequested, "%d bodies for %d asked", len(txs.Bodies), n)
	}
	if err := overLimit(txs.Bodies, r.cfg.MaxTxBytes, "tx"); err != nil {
		return nil, err
	}
	return txs.Bodies, nil
}

// RequestTxsByPrefix asks p for transaction bodies by the prefixes of their
// ids it announced (link mode, at most wire.MaxTxsPerRequest); the answer
// is read as RequestTxs reads one. Bodies are not checked against the
// prefixes.
func (r *Relay) RequestTxsByPrefix(ctx context.Context, p PeerID, prefixes []uint64) ([][]byte, error) {
	return r.requestTxBodies(ctx, p, &wire.GetTxsByPrefix{Prefixes: prefixes}, len(prefixes))
}

// RequestBlock asks p for a whole block by id; nil when p does not hold it.
// The block is not checked against id.
func (r *Relay) RequestBlock(ctx context.Context, p PeerID, id ID) ([]byte, error) {
	resp, err := r.request(ctx, p, &wire.GetBlock{ID: id}, r.cfg.maxResponseFrame(), true)
	if err != nil {
		return nil, err
	}
	b := resp.(*wire.Block).Block
	if err := overLimit([][]byte{b}, r.cfg.MaxBlockBytes, "block"); err != nil {
		return nil, err
	}
	return b, nil
}

// RequestBlockTxn asks p for the transactions at indexes (strictly
// increasing) of block id. found is false when p does not hold the block.
func (r *Relay) RequestBlockTxn(ctx context.Context, p PeerID, id ID, indexes []uint32) (txs [][]byte, found bool, err error) {
	resp, err := r.request(ctx, p, &wire.GetBlockTxn{Block: id, Indexes: indexes}, r.cfg.maxResponseFrame(), true)
	if err != nil {
		return nil, false, err
	}
	bt := resp.(*wire.BlockTxn)
	if bt.Block != id || (bt.Found && len(bt.Txs) != len(indexes)) {
		return nil, false, badResponse(OffenseMalformed, "blocktxn answers another block or count")
	}
	if err := overLimit(bt.Txs, r.cfg.MaxTxBytes, "tx"); err != nil {
		return nil, false, err
	}
	return bt.Txs, bt.Found, nil
}

// RequestHeaders asks p for up to max headers of its best chain following
// the first id of locator it knows, stopping at stop (zero: no stop). It is
// the sync layer's headers-first primitive.
func (r *Relay) RequestHeaders(ctx context.Context, p PeerID, locator []ID, stop ID, max int) ([][]byte, error) {
	if max <= 0 || max > wire.MaxHeadersPerResponse {
		max = wire.MaxHeadersPerResponse
	}
	resp, err := r.request(ctx, p, &wire.GetHeaders{Locator: locator, Stop: stop, Max: uint32(max)}, r.cfg.maxResponseFrame(), false)
	if err != nil {
		return nil, err
	}
	h := resp.(*wire.Headers).Headers
	if len(h) > max {
		return nil, badResponse(OffenseUnrequested, "%d headers for max %d", len(h), max)
	}
	return h, nil
}

// RequestBlocks asks p for the blocks of its best chain at heights
// start..start+count-1 (count at most wire.MaxBlocksPerRange). p may answer
// fewer (chain end, response size cap); the caller asks again for the rest.
func (r *Relay) RequestBlocks(ctx context.Context, p PeerID, start uint64, count int) ([][]byte, error) {
	if count <= 0 || count > wire.MaxBlocksPerRange {
		return nil, fmt.Errorf("relay: block range count %d (want 1..%d)", count, wire.MaxBlocksPerRange)
	}
	resp, err := r.request(ctx, p, &wire.GetBlocks{Start: start, Count: uint32(count)}, r.cfg.maxResponseFrame(), true)
	if err != nil {
		return nil, err
	}
	b := resp.(*wire.Blocks).Blocks
	if len(b) > count {
		return nil, badResponse(OffenseUnrequested, "%d blocks for count %d", len(b), count)
	}
	if err := overLimit(b, r.cfg.MaxBlockBytes, "block"); err != nil {
		return nil, err
	}
	return b, nil
}
