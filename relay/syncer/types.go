package syncer

import (
	"context"
	"errors"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

// Tip is a chain's best block: its height and id.
type Tip struct {
	Height uint64
	ID     wire.ID
}

// HeaderInfo is what the syncer reads from an encoded header: the block id,
// its parent and its height. Linkage is all the syncer checks; the chain
// validates everything else when the block connects.
type HeaderInfo struct {
	ID     wire.ID
	Parent wire.ID
	Height uint64
}

// Verdict is what the chain or the pool made of a body. Package relay uses
// this same type (relay.Verdict is an alias), so there is one definition.
type Verdict int

const (
	// Accepted: new and now held.
	Accepted Verdict = iota
	// Known: already held.
	Known
	// Ignored: valid as far as checked, but not taken for a reason that is
	// not the sender's fault (pool full, a block time ahead of our clock,
	// an I/O error).
	Ignored
	// Invalid: breaks a consensus or format rule; the sender is penalized.
	Invalid
	// Orphan: a block whose parent is unknown.
	Orphan
)

// String names the verdict for logs.
func (v Verdict) String() string {
	switch v {
	case Accepted:
		return "accepted"
	case Known:
		return "known"
	case Ignored:
		return "ignored"
	case Invalid:
		return "invalid"
	case Orphan:
		return "orphan"
	}
	return "unknown"
}

// Offense is misbehaviour the syncer observed. The embedding layer maps it
// onto its peer-scoring penalties (relay maps it onto relay.Offense).
type Offense int

const (
	// OffenseMalformed: a header, block or answer that does not decode.
	OffenseMalformed Offense = iota + 1
	// OffenseBadHeaders: headers that do not link (wrong parent or height)
	// or do not connect to anything our locator named.
	OffenseBadHeaders
	// OffenseInvalidBlock: a served block the chain rejected as invalid,
	// or the headers that announced it.
	OffenseInvalidBlock
	// OffenseMismatch: a served block or tx that is not the one requested
	// (another id at that height, a body that hashes to another id).
	OffenseMismatch
	// OffenseUnrequested: more items than were asked for.
	OffenseUnrequested
	// OffenseStall: no answer within the peer's stall timeout.
	OffenseStall
	// OffenseInvalidTx: a served tx the pool rejected as invalid.
	OffenseInvalidTx
)

// String names the offense for logs and metrics labels.
func (o Offense) String() string {
	switch o {
	case OffenseMalformed:
		return "malformed"
	case OffenseBadHeaders:
		return "bad_headers"
	case OffenseInvalidBlock:
		return "invalid_block"
	case OffenseMismatch:
		return "mismatch"
	case OffenseUnrequested:
		return "unrequested"
	case OffenseStall:
		return "stall"
	case OffenseInvalidTx:
		return "invalid_tx"
	}
	return "unknown"
}

// PenaltyHook receives each offense with the peer that committed it. The
// driver calls it from its loop goroutine; it must be fast and must not call
// back into the Syncer.
type PenaltyHook func(p transport.PeerID, o Offense)

// ErrTimeout is what a Network returns (wrapped) when a peer did not answer
// in time. context.DeadlineExceeded counts the same. Only a timeout counts
// as a stall; other failures (refused, stream reset, not connected) just
// move the work to another peer.
var ErrTimeout = errors.New("syncer: request timed out")

// Network is the request side of the peer-to-peer layer. Every call must
// honour ctx (the driver sets the deadline) and be safe for concurrent use.
// Implementations cap what they read; the syncer checks counts and linkage
// again.
type Network interface {
	// Tip asks p for its best block.
	Tip(ctx context.Context, p transport.PeerID) (Tip, error)
	// Headers asks p for up to max encoded headers of its best chain after
	// the first locator id it holds on that chain (genesis when none).
	Headers(ctx context.Context, p transport.PeerID, locator []wire.ID, max int) ([][]byte, error)
	// Blocks asks p for the encoded blocks of its best chain at heights
	// start..start+count-1. A shorter answer is legal (the chain ends, a
	// size cap); the syncer asks again for the rest.
	Blocks(ctx context.Context, p transport.PeerID, start uint64, count int) ([][]byte, error)
	// PoolIDs asks p for up to max ids of its pool's pending transactions.
	PoolIDs(ctx context.Context, p transport.PeerID, max int) ([]wire.ID, error)
	// Txs asks p for transactions by id (at most MaxTxsPerRequest). out[i]
	// answers ids[i], nil when p does not hold it; a shorter answer was cut
	// at a size limit.
	Txs(ctx context.Context, p transport.PeerID, ids []wire.ID) ([][]byte, error)
}

// ChainView is the read side of the chain, used by the core on its owner's
// goroutine. Implementations must be safe for concurrent use (gossip adds
// blocks at the same time).
type ChainView interface {
	// Tip returns the best block.
	Tip() (height uint64, id wire.ID)
	// BlockIDAt returns the id of the best-chain block at height.
	BlockIDAt(height uint64) (wire.ID, bool)
	// HasBlock reports whether the block is stored on any branch.
	HasBlock(id wire.ID) bool
}

// Chain is everything the syncer needs of a block store.
type Chain interface {
	ChainView
	// ParseHeader decodes an encoded header and checks its format.
	ParseHeader(header []byte) (HeaderInfo, error)
	// ParseBlock decodes an encoded block's header and checks the format
	// of the whole block (not its validity).
	ParseBlock(block []byte) (HeaderInfo, error)
	// AddBlock validates and stores an encoded block.
	AddBlock(block []byte) (wire.ID, Verdict, error)
}

// PoolView is the read side of the mempool, used by the core.
type PoolView interface {
	// HasTx reports whether the pool holds the tx (or the chain recently
	// included it), so it is not fetched.
	HasTx(id wire.ID) bool
	// TxID returns the id of an encoded transaction (the embedding chain's
	// rule), so a served body is checked against the id it was asked by.
	TxID(body []byte) (wire.ID, error)
}

// Pool is everything the syncer needs of a mempool. Safe for concurrent
// use.
type Pool interface {
	PoolView
	// AddTx decodes, validates and adds an encoded transaction.
	AddTx(body []byte) (wire.ID, Verdict, error)
}

// Block is a received block body with the header fields read from it.
type Block struct {
	Info HeaderInfo
	Body []byte
}

// Action is one thing the core asks its driver to do. It is one of
// *GetTip, *GetHeaders, *GetBlocks, *GetPoolIDs, *GetTxs, *ConnectBlock,
// *AddTx or *Penalize.
type Action interface{ action() }

// GetTip asks the driver to request p's tip and report it with
// Core.TipResult.
type GetTip struct {
	Req     uint64
	Peer    transport.PeerID
	Timeout time.Duration
}

// GetHeaders asks for headers; answer with Core.HeadersResult.
type GetHeaders struct {
	Req     uint64
	Peer    transport.PeerID
	Locator []wire.ID
	Max     int
	Timeout time.Duration
}

// GetBlocks asks for a range of blocks; answer with Core.BlocksResult.
type GetBlocks struct {
	Req     uint64
	Peer    transport.PeerID
	Start   uint64
	Count   int
	Timeout time.Duration
}

// GetPoolIDs asks for p's pool ids; answer with Core.PoolIDsResult.
type GetPoolIDs struct {
	Req     uint64
	Peer    transport.PeerID
	Max     int
	Timeout time.Duration
}

// GetTxs asks for transactions by id; answer with Core.TxsResult.
type GetTxs struct {
	Req     uint64
	Peer    transport.PeerID
	IDs     []wire.ID
	Timeout time.Duration
}

// ConnectBlock asks the driver to hand the block to the chain now (blocks
// come in chain order, one at a time) and to report the verdict with
// Core.BlockResult before anything else.
type ConnectBlock struct {
	Height uint64
	ID     wire.ID
	Body   []byte
	Peer   transport.PeerID // the peer that served the body
}

// AddTx asks the driver to add a fetched transaction to the pool and report
// the verdict with Core.TxResult. Its body hashes to ID. Retry marks a
// second attempt at a tx the pool ignored the first time (its nonce gap
// not yet filled when it arrived).
type AddTx struct {
	Peer  transport.PeerID
	ID    wire.ID
	Body  []byte
	Retry bool
}

// Penalize reports an offense.
type Penalize struct {
	Peer    transport.PeerID
	Offense Offense
	Detail  string
}

func (*GetTip) action()       {}
func (*GetHeaders) action()   {}
func (*GetBlocks) action()    {}
func (*GetPoolIDs) action()   {}
func (*GetTxs) action()       {}
func (*ConnectBlock) action() {}
func (*AddTx) action()        {}
func (*Penalize) action()     {}

// TxAddResult is what a pool's AddTx returns, for one body of a batch
// (relay.TxBatchPool).
type TxAddResult struct {
	ID      wire.ID
	Verdict Verdict
	Err     error
}
