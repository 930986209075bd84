package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-relay/rumor/relay/wire"
)

// Errors of the request client. Callers tell them apart with errors.Is.
var (
	// ErrClosed: the relay is closed (or not started).
	ErrClosed = errors.New("relay: closed")
	// ErrTimeout: the peer did not answer within the deadline.
	ErrTimeout = errors.New("relay: request timed out")
	// ErrBadResponse: the peer's answer did not decode, was over its cap or
	// answered another request. The peer has been reported.
	ErrBadResponse = errors.New("relay: bad response")
	// ErrRefused: the peer answered with an error (busy, bad request).
	ErrRefused = errors.New("relay: request refused")
)

// request sends one request to p on a fresh stream and returns its decoded
// response, read with a cap of maxResp bytes. The stream is reset when ctx
// ends, which also unblocks transports without deadlines (mocknet). A
// malformed or oversize answer is reported as an offense.
func (r *Relay) request(ctx context.Context, p peer.ID, req wire.Request, maxResp int, bodyResp bool) (wire.Response, error) {
	payload, err := req.Encode()
	if err != nil {
		return nil, fmt.Errorf("relay: encode request: %w", err)
	}
	s, err := r.host.NewStream(network.WithNoDial(ctx, "relay request"), p, r.proto)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: open stream to %s", ErrTimeout, p.ShortString())
		}
		return nil, fmt.Errorf("relay: open stream to %s: %w", p.ShortString(), err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	n, err := wire.WriteFrame(s, payload)
	r.noteBytes(false, protoRequest, classRequest, n)
	if err != nil {
		_ = s.Reset()
		return nil, r.streamErr(ctx, p, "write", err)
	}
	_ = s.CloseWrite()
	data, n, err := wire.ReadFrame(s, maxResp)
	class := classRequest
	if bodyResp {
		class = classBody
	}
	r.noteBytes(true, protoRequest, class, n)
	if err != nil {
		_ = s.Reset()
		if errors.Is(err, wire.ErrFrameTooLarge) {
			r.penalize(p, OffenseOversize)
			return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		if errors.Is(err, wire.ErrMalformed) {
			r.penalize(p, OffenseMalformed)
			return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		return nil, r.streamErr(ctx, p, "read", err)
	}
	_ = s.Close()
	resp, err := wire.DecodeResponse(data)
	if err != nil {
		r.penalize(p, OffenseMalformed)
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if e, ok := resp.(*wire.Error); ok {
		return nil, fmt.Errorf("%w: %s", ErrRefused, e.Code)
	}
	if resp.Tag() != req.Tag()|0x80 {
		r.penalize(p, OffenseMalformed)
		return nil, fmt.Errorf("%w: answer %#x to request %#x", ErrBadResponse, resp.Tag(), req.Tag())
	}
	return resp, nil
}

func (r *Relay) streamErr(ctx context.Context, p peer.ID, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %s %s", ErrTimeout, op, p.ShortString())
	}
	return fmt.Errorf("relay: %s %s: %w", op, p.ShortString(), err)
}

// RequestTxs asks p for transaction bodies by id (at most
// wire.MaxTxsPerRequest). out[i] answers ids[i], nil when p does not hold
// it; an answer shorter than ids was cut at p's response size limit (ask
// again for the rest). Bodies are not checked against their ids.
func (r *Relay) RequestTxs(ctx context.Context, p peer.ID, ids []ID) ([][]byte, error) {
	resp, err := r.request(ctx, p, &wire.GetTxs{IDs: ids}, wire.MaxTxsResponseFrame, true)
	if err != nil {
		return nil, err
	}
	txs := resp.(*wire.Txs)
	if len(txs.Bodies) > len(ids) {
		r.penalize(p, OffenseUnrequested)
		return nil, fmt.Errorf("%w: %d bodies for %d ids", ErrBadResponse, len(txs.Bodies), len(ids))
	}
	return txs.Bodies, nil
}

// RequestBlock asks p for a whole block by id; nil when p does not hold it.
// The block is not checked against id.
func (r *Relay) RequestBlock(ctx context.Context, p peer.ID, id ID) ([]byte, error) {
	resp, err := r.request(ctx, p, &wire.GetBlock{ID: id}, wire.MaxResponseFrame, true)
	if err != nil {
		return nil, err
	}
	return resp.(*wire.Block).Block, nil
}

// RequestBlockTxn asks p for the transactions at indexes (strictly
// increasing) of block id. found is false when p does not hold the block.
func (r *Relay) RequestBlockTxn(ctx context.Context, p peer.ID, id ID, indexes []uint32) (txs [][]byte, found bool, err error) {
	resp, err := r.request(ctx, p, &wire.GetBlockTxn{Block: id, Indexes: indexes}, wire.MaxResponseFrame, true)
	if err != nil {
		return nil, false, err
	}
	bt := resp.(*wire.BlockTxn)
	if bt.Block != id || (bt.Found && len(bt.Txs) != len(indexes)) {
		r.penalize(p, OffenseMalformed)
		return nil, false, fmt.Errorf("%w: blocktxn answers another block or count", ErrBadResponse)
	}
	return bt.Txs, bt.Found, nil
}

// RequestHeaders asks p for up to max headers of its best chain following
// the first id of locator it knows, stopping at stop (zero: no stop). It is
// the sync layer's headers-first primitive.
func (r *Relay) RequestHeaders(ctx context.Context, p peer.ID, locator []ID, stop ID, max int) ([][]byte, error) {
	if max <= 0 || max > wire.MaxHeadersPerResponse {
		max = wire.MaxHeadersPerResponse
	}
	resp, err := r.request(ctx, p, &wire.GetHeaders{Locator: locator, Stop: stop, Max: uint32(max)}, wire.MaxResponseFrame, false)
	if err != nil {
		return nil, err
	}
	h := resp.(*wire.Headers).Headers
	if len(h) > max {
		r.penalize(p, OffenseUnrequested)
		return nil, fmt.Errorf("%w: %d headers for max %d", ErrBadResponse, len(h), max)
	}
	return h, nil
}

// RequestBlocks asks p for the blocks of its best chain at heights
// start..start+count-1 (count at most wire.MaxBlocksPerRange). p may answer
// fewer (chain end, response size cap); the caller asks again for the rest.
func (r *Relay) RequestBlocks(ctx context.Context, p peer.ID, start uint64, count int) ([][]byte, error) {
	if count <= 0 || count > wire.MaxBlocksPerRange {
		return nil, fmt.Errorf("relay: block range count %d (want 1..%d)", count, wire.MaxBlocksPerRange)
	}
	resp, err := r.request(ctx, p, &wire.GetBlocks{Start: start, Count: uint32(count)}, wire.MaxResponseFrame, true)
	if err != nil {
		return nil, err
	}
	b := resp.(*wire.Blocks).Blocks
	if len(b) > count {
		r.penalize(p, OffenseUnrequested)
		return nil, fmt.Errorf("%w: %d blocks for count %d", ErrBadResponse, len(b), count)
	}
	return b, nil
}
