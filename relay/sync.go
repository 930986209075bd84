package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/rumor-relay/rumor/relay/syncer"
	"github.com/rumor-relay/rumor/relay/wire"
)

// This file wires package relay/syncer (headers-first catch-up and mempool
// sync) into the relay: the request-protocol side of syncer.Network, the
// adapters of Chain and TxPool, and penalties. Peers reach the syncer
// through the observer (observer.go).

// RequestTip asks p for its best block's height and id.
func (r *Relay) RequestTip(ctx context.Context, p PeerID) (uint64, ID, error) {
	resp, err := r.request(ctx, p, &wire.GetTip{}, wire.MaxTipResponseFrame, false)
	if err != nil {
		return 0, ID{}, err
	}
	t := resp.(*wire.Tip)
	return t.Height, t.ID, nil
}

// RequestPoolIDs asks p for up to max (1..wire.MaxPoolIDsPerResponse) ids
// of its pending transactions.
func (r *Relay) RequestPoolIDs(ctx context.Context, p PeerID, max int) ([]ID, error) {
	if max <= 0 || max > wire.MaxPoolIDsPerResponse {
		return nil, fmt.Errorf("relay: pool ids max %d (want 1..%d)", max, wire.MaxPoolIDsPerResponse)
	}
	return r.requestPoolIDs(ctx, p, max, classRequest)
}

// requestPoolIDs is RequestPoolIDs with its bytes counted under class
// (reconciliation's listing counts as reconciliation); max is in range.
func (r *Relay) requestPoolIDs(ctx context.Context, p PeerID, max int, class string) ([]ID, error) {
	resp, err := r.requestClass(ctx, p, &wire.GetPoolIDs{Max: uint32(max)}, wire.MaxPoolIDsResponseFrame, class)
	if err != nil {
		return nil, err
	}
	ids := resp.(*wire.PoolIDs).IDs
	if len(ids) > max {
		return nil, badResponse(OffenseUnrequested, "%d pool ids for max %d", len(ids), max)
	}
	return ids, nil
}

// SyncStats returns the syncer's progress and counters; ok is false when
// sync is off.
func (r *Relay) SyncStats() (s syncer.Stats, ok bool) {
	if r.sync == nil {
		return syncer.Stats{}, false
	}
	return r.sync.Stats(), true
}

// newSyncer builds the relay's syncer (nil when cfg.NoSync).
func (r *Relay) newSyncer() (*syncer.Syncer, error) {
	if r.cfg.NoSync {
		return nil, nil
	}
	return syncer.New(syncNetwork{r}, syncChain{r}, syncPool{r}, r.cfg.Sync,
		syncer.WithPenaltyHook(r.syncPenalty))
}

// noteOrphan tells the syncer that from holds a block we cannot connect
// (its parent is unknown and too far back for the ancestor walk), so a node
// that fell behind starts catching up at once instead of at the next tip
// poll.
func (r *Relay) noteOrphan(from PeerID, info HeaderInfo) {
	if r.sync != nil {
		r.sync.NoteTip(from, info.Height, info.ID)
	}
}

// syncPenalty maps the syncer's offenses onto the relay's.
func (r *Relay) syncPenalty(p PeerID, o syncer.Offense) {
	switch o {
	case syncer.OffenseMalformed:
		r.penalize(p, OffenseMalformed)
	case syncer.OffenseBadHeaders, syncer.OffenseInvalidBlock:
		r.penalize(p, OffenseInvalidBlock)
	case syncer.OffenseMismatch:
		r.penalize(p, OffenseBodyMismatch)
	case syncer.OffenseUnrequested:
		r.penalize(p, OffenseUnrequested)
	case syncer.OffenseStall:
		r.penalize(p, OffenseTimeout)
	case syncer.OffenseInvalidTx:
		r.penalize(p, OffenseInvalidTx)
	}
}

// syncErr adapts a request error for the syncer. Timeouts become the
// syncer's, so they count as stalls. A bad response is reported here, once,
// with the offense the client found (oversize, unrequested, malformed); the
// syncer then only moves the work elsewhere (it penalizes just its own
// findings: stalls, bad linkage, mismatched bodies).
func (r *Relay) syncErr(p PeerID, err error) error {
	switch {
	case err == nil:
	case errors.Is(err, ErrTimeout):
		return fmt.Errorf("%w: %w", syncer.ErrTimeout, err)
	default:
		if o, ok := offenseOfErr(err); ok {
			r.penalize(p, o)
		}
	}
	return err
}

// syncNetwork is syncer.Network over the request protocol.
type syncNetwork struct{ r *Relay }

var _ syncer.Network = syncNetwork{}

func (n syncNetwork) Tip(ctx context.Context, p PeerID) (syncer.Tip, error) {
	h, id, err := n.r.RequestTip(ctx, p)
	return syncer.Tip{Height: h, ID: id}, n.r.syncErr(p, err)
}

func (n syncNetwork) Headers(ctx context.Context, p PeerID, locator []ID, max int) ([][]byte, error) {
	hs, err := n.r.RequestHeaders(ctx, p, locator, ID{}, max)
	return hs, n.r.syncErr(p, err)
}

func (n syncNetwork) Blocks(ctx context.Context, p PeerID, start uint64, count int) ([][]byte, error) {
	bs, err := n.r.RequestBlocks(ctx, p, start, count)
	for range bs {
		n.r.noteBody("block", false)
	}
	return bs, n.r.syncErr(p, err)
}

func (n syncNetwork) PoolIDs(ctx context.Context, p PeerID, max int) ([]ID, error) {
	ids, err := n.r.RequestPoolIDs(ctx, p, max)
	return ids, n.r.syncErr(p, err)
}

func (n syncNetwork) Txs(ctx context.Context, p PeerID, ids []ID) ([][]byte, error) {
	txs, err := n.r.RequestTxs(ctx, p, ids)
	for _, b := range txs {
		if b != nil {
			n.r.noteBody("tx", false)
		}
	}
	return txs, n.r.syncErr(p, err)
}

// syncChain is syncer.Chain over the relay's Chain. Blocks the syncer
// stores are recorded as first seen, like gossiped ones.
type syncChain struct{ r *Relay }

var _ syncer.Chain = syncChain{}

func (c syncChain) Tip() (uint64, ID)             { return c.r.chain.Tip() }
func (c syncChain) BlockIDAt(h uint64) (ID, bool) { return c.r.chain.BlockIDAt(h) }
func (c syncChain) HasBlock(id ID) bool           { return c.r.chain.HasBlock(id) }

// ParseHeader also authenticates the header (HeaderVerifier), so sync
// refuses made-up headers before it asks anyone for their bodies.
func (c syncChain) ParseHeader(b []byte) (syncer.HeaderInfo, error) {
	info, err := c.r.chain.ParseHeader(b)
	if err != nil {
		return info, err
	}
	return info, c.r.verifyHeader(b)
}

// ParseBlock authenticates the block's header too, as ParseHeader does.
func (c syncChain) ParseBlock(b []byte) (syncer.HeaderInfo, error) {
	hdr, info, err := c.r.blockHeader(b)
	if err != nil {
		return info, err
	}
	return info, c.r.verifyHeader(hdr)
}

func (c syncChain) AddBlock(b []byte) (ID, syncer.Verdict, error) {
	id, v, err := c.r.chain.AddBlock(b)
	if v == Accepted {
		c.r.seen.record(id, c.r.now())
	}
	return id, v, err
}

// syncPool is syncer.Pool over the relay's TxPool.
type syncPool struct{ r *Relay }

var _ syncer.Pool = syncPool{}

// HasTx counts recently rejected txs as held, so pool sync does not fetch
// them again.
func (p syncPool) HasTx(id ID) bool { return p.r.pool.HasTx(id) || p.r.recentlyRejected(id) }

func (p syncPool) TxID(b []byte) (ID, error) { return p.r.pool.TxID(b) }

func (p syncPool) AddTx(b []byte) (ID, syncer.Verdict, error) {
	id, v, err := p.r.pool.AddTx(b)
	switch v {
	case Accepted:
		p.r.txAccepted(id)
	case Invalid:
		p.r.txRejected(id)
	}
	return id, v, err
}
