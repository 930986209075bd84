package relay

import (
	"github.com/rumor-relay/rumor/relay/syncer"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// ID identifies a transaction or a block on the wire (32 bytes). The
// embedding chain defines how an id follows from the bytes: TxPool.TxID for
// a transaction, Chain.ParseHeader for a block (from its header). Whatever
// the rule, a receiver recomputes the id of every body it fetches and
// refuses a body that does not match the id it asked for.
type ID = wire.ID

// PeerID names a peer of the transport (see package relay/transport).
type PeerID = transport.PeerID

// Verdict classifies what happened to a body handed to the chain or the pool.
// The relay maps it onto GossipSub's validation result and onto peer
// penalties. It is the syncer's type (relay/syncer cannot import relay), so
// the chain and pool adapters hand verdicts to the syncer unconverted.
type Verdict = syncer.Verdict

const (
	// Accepted means the item is new and now held: forward its announcement.
	Accepted = syncer.Accepted
	// Known means the item was already held: ignore, no penalty.
	Known = syncer.Known
	// Ignored means the item is valid but was not taken (fee too low, pool
	// full, nonce already used, future nonce queued): ignore, no penalty.
	Ignored = syncer.Ignored
	// Invalid means the item breaks a consensus or format rule: reject the
	// announcement and penalize the peer that sent it.
	Invalid = syncer.Invalid
	// Orphan applies to blocks only: the parent is unknown. The relay fetches
	// the missing ancestors from the announcer and retries.
	Orphan = syncer.Orphan
)

// TxPool is everything the relay needs of a mempool. Implementations must be
// safe for concurrent use. Bodies are the chain's encodings of its
// transactions, opaque to the relay.
type TxPool interface {
	// TxID returns the id of an encoded transaction, or an error when the
	// bytes are not one. It must be cheap (a hash, no validation): the relay
	// calls it for every fetched body to check it against the id it asked
	// for.
	TxID(body []byte) (ID, error)
	// HasTx reports whether the pool holds the transaction, or the chain
	// recently included it (so the relay does not fetch it again).
	HasTx(id ID) bool
	// GetTx returns the encoded transaction if the pool holds it.
	GetTx(id ID) ([]byte, bool)
	// AddTx decodes, validates and adds one encoded transaction. It returns
	// the transaction's id (zero when the body does not decode), the verdict
	// and, for anything but Accepted, an error that says why.
	AddTx(body []byte) (ID, Verdict, error)
	// LookupShortIDs resolves the short ids of a compact block against the
	// pool: out[i] is the encoded transaction whose id maps to short[i]
	// under shortID (the block's keyed short-id function), or nil when none
	// or more than one does.
	LookupShortIDs(shortID func(ID) uint64, short []uint64) (out [][]byte)
}

// TxBatchPool is a TxPool that also adds many transactions in one call,
// for a pool that checks them cheaper together (ed25519 signatures verify
// at about half the cost per signature in batches). The relay hands it
// each fetched batch of bodies that match their ids.
type TxBatchPool interface {
	TxPool
	// AddTxs adds the encoded transactions as AddTx would one after the
	// other, in order, and returns one result per body, in order.
	AddTxs(bodies [][]byte) []TxAddResult
}

// TxAddResult is what TxPool.AddTx returns, for one body of an AddTxs
// batch. It is the syncer's type, so test pools need not import the relay.
type TxAddResult = syncer.TxAddResult

// HeaderInfo is what the relay reads from an encoded block header: its id
// (hash of the header encoding), parent id and height. It is the syncer's
// type, so the two packages share one definition.
type HeaderInfo = syncer.HeaderInfo

// Chain is everything the relay needs of a block store. Implementations must
// be safe for concurrent use.
type Chain interface {
	// Tip returns the height and id of the best block.
	Tip() (height uint64, id ID)
	// HasBlock reports whether the block is stored (on any branch).
	HasBlock(id ID) bool
	// GetBlock returns the encoded block if stored.
	GetBlock(id ID) ([]byte, bool)
	// BlockIDAt returns the id of the block at height on the best chain.
	BlockIDAt(height uint64) (ID, bool)
	// ParseHeader decodes and checks the format of an encoded header.
	ParseHeader(header []byte) (HeaderInfo, error)
	// SplitBlock decodes an encoded block into its encoded header and its
	// encoded transactions, in order.
	SplitBlock(block []byte) (header []byte, txs [][]byte, err error)
	// AssembleBlock joins an encoded header and encoded transactions into an
	// encoded block; it checks format only.
	AssembleBlock(header []byte, txs [][]byte) ([]byte, error)
	// AddBlock validates and stores an encoded block, updating the best chain
	// (and the pool) if it wins fork choice. It returns the block id, a
	// verdict and, for anything but Accepted, an error that says why.
	AddBlock(block []byte) (ID, Verdict, error)
}

// HeaderSource is an optional interface of a Chain that reads a stored
// block's encoded header without loading the whole block; headers requests
// (sync) use it when present, otherwise GetBlock and SplitBlock.
type HeaderSource interface {
	GetHeader(id ID) ([]byte, bool)
}

// HeaderVerifier is an optional interface of a Chain that authenticates an
// encoded header on its own, without its parent or any state: for a chain
// with known block producers, that the header's proposer may produce at its
// height and its signature verifies. It must be cheap (one signature check).
//
// A relay over a Chain that has it checks every announced header before it
// fetches anything for the block, every ancestor it fetches for an orphan
// before it walks further back, and every header sync receives, so a peer
// cannot make the node fetch or store made-up blocks: the first header that
// fails ends the work and costs its sender OffenseInvalidBlock (a header
// sync received counts as a malformed answer there). Without it
// the chain's AddBlock is the first check, and an orphan announcement can
// make the node fetch up to MaxOrphanDepth made-up ancestors.
type HeaderVerifier interface {
	VerifyHeader(header []byte) error
}

// BlockSizer is an optional interface of a Chain that tells a stored
// block's encoded size without loading it (an index lookup), or false when
// the block is not stored. The estimate may be off by a few bytes. With it
// the relay sizes a whole-block response, and charges the requester's byte
// budget, before loading the block; without it, it reserves the largest
// response (MaxBlockBytes) while it builds one and charges afterwards.
type BlockSizer interface {
	BlockSize(id ID) (int, bool)
}

// PoolIDSource is an optional interface of a TxPool that lists the ids of
// its pending (executable) transactions, at most max, best first. The relay
// serves it to peers doing mempool sync (GetPoolIDs); a pool without it
// answers with an empty list.
type PoolIDSource interface {
	PendingIDs(max int) []ID
}

// BodyVerifier is an optional interface of a Chain that checks a block's
// encoded transactions against the commitment in its encoded header (a
// Merkle root) without validating them. With it, a block forwarded before
// it is stored (cut-through) is served to the peers behind as soon as its
// body is known to be the one the header names, and a compact block
// rebuilt with a wrong tx (a short-id collision, or bad short ids from the
// peer that passed it on) goes straight to the whole-block fetch. Without
// it, such a block is served once stored.
type BodyVerifier interface {
	VerifyBody(header []byte, txs [][]byte) error
}
