package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/rumor-relay/rumor/relay/syncer"
	"github.com/rumor-relay/rumor/relay/wire"
)

// BlockMode selects how this node announces the blocks it publishes.
// Receivers understand all three whatever their own mode.
type BlockMode string

const (
	// BlockCompact announces the header, a nonce and 6-byte keyed short ids
	// of the block's transactions (BIP152); receivers rebuild the block from
	// their mempool and fetch only what they lack. The default.
	BlockCompact BlockMode = "compact"
	// BlockPull announces the header only; receivers fetch the whole block
	// from the announcer.
	BlockPull BlockMode = "pull"
	// BlockPush carries the whole block inside the GossipSub message.
	BlockPush BlockMode = "push"
)

// ParseBlockMode parses a block mode name; "" means BlockCompact.
func ParseBlockMode(s string) (BlockMode, error) {
	switch m := BlockMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return BlockCompact, nil
	case BlockCompact, BlockPull, BlockPush:
		return m, nil
	}
	return "", fmt.Errorf("relay: unknown block mode %q (want compact, pull or push)", s)
}

// TxMode selects how this node gossips the transactions it publishes.
// Receivers understand all three whatever their own mode (a node takes
// link-mode inventory on a transport.Messenger, and passes on what it
// fetched by prefix in its own mode).
type TxMode string

const (
	// TxAnnounce gossips batches of ids; receivers pull the bodies they
	// lack from the announcer (push-pull). The default.
	TxAnnounce TxMode = "announce"
	// TxPush gossips batches of whole transactions, as a relay built on
	// GossipSub alone would: one hop per link latency, each body received
	// once per mesh peer. The baseline announce mode is measured against.
	TxPush TxMode = "push"
	// TxLink announces 8-byte id prefixes per link, to each tx mesh peer
	// that does not know them yet, outside GossipSub (txlink.go); receivers
	// fetch by prefix. It needs a transport that is a
	// transport.Messenger (relay/p2p and relay/memnet are).
	TxLink TxMode = "link"
)

// ParseTxMode parses a tx mode name; "" means TxAnnounce.
func ParseTxMode(s string) (TxMode, error) {
	switch m := TxMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return TxAnnounce, nil
	case TxAnnounce, TxPush, TxLink:
		return m, nil
	}
	return "", fmt.Errorf("relay: unknown tx mode %q (want announce, push or link)", s)
}

// Defaults of Config. Each says where its number comes from.
const (
	// TxBatchWindow is how long a locally submitted tx id may wait for
	// company before its announcement goes out. 20 ms is below a single
	// intercontinental RTT, so batching never costs a whole round trip, and
	// at 1000 tx/s it packs ~20 ids per message instead of 20 messages.
	TxBatchWindow = 20 * time.Millisecond
	// TxLinkWindow is TxBatchWindow for link mode (txlink.go), where every
	// hop batches, not only the origin: 20 ms at each of 4 hops cost 0.26x
	// of the mesh floor at p99 on 50 ms links (200-node sim), for nothing
	// in bytes at 50 tx/s (a window then rarely holds two ids), and 5 ms
	// took that back with the same bytes (19% of bodies enveloped). A
	// window still gathers what a node learned from all its peers; the
	// messenger writes whatever is queued for a peer at once.
	TxLinkWindow = 5 * time.Millisecond
	// TxBatchMax is how many ids trigger an announcement before the window
	// ends: go-ethereum's 256 txs per request, so a receiver fetches one
	// announcement's bodies with a single request.
	TxBatchMax = wire.MaxTxsPerRequest
	// FetchTimeout is how long a peer has to answer a tx or getblocktxn
	// request before we ask another announcer. go-ethereum waits 5 s; 2 s is
	// still ten times a transcontinental RTT and halves the delay a
	// withholding peer can cause.
	FetchTimeout = 2 * time.Second
	// BlockFetchTimeout is FetchTimeout for whole blocks (pull mode, orphan
	// ancestors, full-block fallback): up to 8 MiB must cross the link.
	BlockFetchTimeout = 10 * time.Second
	// MaxOrphanDepth is how many missing ancestors of an announced block the
	// relay fetches by id before giving up and leaving the gap to sync.
	// Bitcoin Core keeps 100 orphan txs; eth2 clients look up parent chains
	// of up to 32 blocks (Lighthouse's PARENT_DEPTH_TOLERANCE).
	MaxOrphanDepth = 32
	// MaxGossipMessageSize is the gossip message size limit. GossipSub's
	// default is 1 MiB; push mode carries a whole block and the genesis
	// default block limit is 1 MiB, so allow 2 MiB (blocks above it fall
	// back to a compact announcement). The p2p transport's default.
	MaxGossipMessageSize = 2 << 20
	// FirstSeenCap bounds the first-seen table (txs and blocks together):
	// 2^20 entries is about 60 MB, enough for a long testnet run; the oldest
	// entries are dropped first.
	FirstSeenCap = 1 << 20
	// MaxTxBytes is the default largest transaction the relay fetches,
	// serves or forwards: go-ethereum's 128 KiB txMaxSize.
	MaxTxBytes = 128 << 10
	// MaxBlockBytes is the default largest block: 8 MiB.
	MaxBlockBytes = 8 << 20
	// MaxBlockTxs is the default most transactions in one block: a
	// maximal block of 150-byte transactions.
	MaxBlockTxs = MaxBlockBytes / 150
	// MaxAncestorBytes bounds the blocks held while walking back from an
	// orphan to a known ancestor: 32 MiB, MaxOrphanDepth blocks of 1 MiB.
	// The walk stops (and leaves the gap to sync) when it would exceed it.
	MaxAncestorBytes = 32 << 20
)

// Config configures a Relay. DefaultConfig fills every field; zero values are
// not defaults (Validate rejects them) except where a field says otherwise.
type Config struct {
	// ChainID names the topics and the request protocol, so nodes of
	// different chains never exchange messages. Required.
	ChainID string
	// BlockMode selects how locally produced blocks are announced.
	BlockMode BlockMode
	// TxMode selects how locally published txs are gossiped ("" is
	// TxAnnounce).
	TxMode TxMode
	// TxBatchWindow is the longest a submitted tx waits to be announced.
	TxBatchWindow time.Duration
	// TxLinkWindow replaces TxBatchWindow in link mode, where ids wait
	// for it at every hop. Zero means TxLinkWindow.
	TxLinkWindow time.Duration
	// TxBatchMax is the announcement size that flushes a batch early
	// (1..wire.MaxAnnounceIDs).
	TxBatchMax int
	// FetchTimeout bounds one tx or getblocktxn request to one peer; after it
	// the next announcer is asked.
	FetchTimeout time.Duration
	// BlockFetchTimeout bounds one whole-block request to one peer.
	BlockFetchTimeout time.Duration
	// TxValidateTimeout bounds the GossipSub validation of one tx
	// announcement (fetches included). Zero means 2*FetchTimeout + 1 s: time
	// for one withholding announcer and one honest fallback.
	TxValidateTimeout time.Duration
	// BlockValidateTimeout bounds the validation of one block announcement
	// (missing txs, full-block fallback and orphan ancestors included). Zero
	// means 3*BlockFetchTimeout.
	BlockValidateTimeout time.Duration
	// MaxOrphanDepth bounds the ancestors fetched for a block whose parent
	// is unknown (0 disables the ancestor fetch).
	MaxOrphanDepth int
	// StoreBeforeForward makes a node forward a block announcement only
	// once the block is stored (store-and-forward). By default, on a chain
	// that authenticates headers (HeaderVerifier), an announcement goes on
	// as soon as its header verifies and its parent is stored or being
	// brought in (cut-through, as BIP152's high-bandwidth mode); the block
	// is then fetched, rebuilt and stored behind it.
	StoreBeforeForward bool
	// TxFetchBeforeForward makes a node forward a tx announcement only
	// once it holds the bodies. By default a first announcement of txs
	// the node lacks goes on at once and the bodies are fetched behind it
	// (cut-through, txcut.go).
	TxFetchBeforeForward bool
	// TxCutThroughMinRTT is the round trip below which tx announcements
	// are fetched before they are forwarded even without
	// TxFetchBeforeForward: the low quartile of recent tip and tx request round trips
	// must reach it (rtt.go keeps them). Zero means
	// DefaultTxCutThroughMinRTT; negative means always cut through.
	TxCutThroughMinRTT time.Duration
	// PrefillAge makes a compact block carry whole the txs this node
	// first saw less than PrefillAge ago, besides those still in its
	// announcement batch, which always travel whole. Zero or negative
	// (the default) prefills only the batch: a receiver still fetching a
	// tx when the header arrives completes the block from its pool
	// (prefill.go). A positive age is for networks whose txs trail their
	// blocks by more than a round trip.
	PrefillAge time.Duration
	// MaxGossipMessageSize is the transport's message size limit in bytes
	// (give the transport the same): a push-mode block that would not fit
	// goes out as a compact block.
	MaxGossipMessageSize int
	// FirstSeenCap bounds the first-seen table (entries).
	FirstSeenCap int
	// MaxTxBytes is the embedding chain's largest encoded transaction
	// (1..wire.MaxTxBytes); larger bodies are refused as oversize.
	MaxTxBytes int
	// MaxBlockBytes is the chain's largest encoded block
	// (1..wire.MaxBlockBytes).
	MaxBlockBytes int
	// MaxBlockTxs is the chain's most transactions per block
	// (1..wire.MaxBlockTxs).
	MaxBlockTxs int
	// MaxAncestorBytes bounds the bytes of ancestors fetched for one
	// orphan block (>= MaxBlockBytes).
	MaxAncestorBytes int
	// UploadBytesPerSecond caps the response bytes served to all peers
	// together; its burst is one second's worth or one maximal response,
	// whichever is larger. Zero means DefaultUploadBytesPerSecond.
	UploadBytesPerSecond float64
	// ReconcileInterval is how often the relay reconciles its pending
	// txs with one peer (mempool anti-entropy, reconcile.go). Zero means
	// ReconcileInterval.
	ReconcileInterval time.Duration
	// NoReconcile turns reconciliation off (this node starts no session;
	// it still answers peers' requests for symbols).
	NoReconcile bool
	// Sync configures catch-up (headers-first block download) and mempool
	// sync with newly connected peers (package relay/syncer); zero fields
	// take syncer's defaults.
	Sync syncer.Config
	// NoSync turns sync off: the node then learns blocks and txs from
	// gossip only (tests of gossip alone, or an embedder that syncs by
	// other means).
	NoSync bool
}

// DefaultConfig returns the defaults for chainID.
func DefaultConfig(chainID string) Config {
	return Config{
		ChainID:              chainID,
		BlockMode:            BlockCompact,
		TxMode:               TxAnnounce,
		TxBatchWindow:        TxBatchWindow,
		TxBatchMax:           TxBatchMax,
		FetchTimeout:         FetchTimeout,
		BlockFetchTimeout:    BlockFetchTimeout,
		MaxOrphanDepth:       MaxOrphanDepth,
		MaxGossipMessageSize: MaxGossipMessageSize,
		FirstSeenCap:         FirstSeenCap,
		MaxTxBytes:           MaxTxBytes,
		MaxBlockBytes:        MaxBlockBytes,
		MaxBlockTxs:          MaxBlockTxs,
		MaxAncestorBytes:     MaxAncestorBytes,
		Sync:                 syncer.DefaultConfig(),
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.ChainID == "" || strings.ContainsAny(c.ChainID, "/ \t\n") {
		errs = append(errs, fmt.Errorf("chain id %q: must be non-empty without '/' or spaces", c.ChainID))
	}
	if _, err := ParseBlockMode(string(c.BlockMode)); err != nil || c.BlockMode == "" {
		errs = append(errs, fmt.Errorf("block mode %q: want compact, pull or push", c.BlockMode))
	}
	switch c.TxMode {
	case "", TxAnnounce, TxPush, TxLink: // exact: the publisher compares it as is
	default:
		errs = append(errs, fmt.Errorf("tx mode %q: want announce, push or link", c.TxMode))
	}
	if c.TxBatchWindow <= 0 || c.TxBatchWindow > 10*time.Second {
		errs = append(errs, fmt.Errorf("tx batch window %v: want (0, 10s]", c.TxBatchWindow))
	}
	if c.TxLinkWindow < 0 || c.TxLinkWindow > 10*time.Second {
		errs = append(errs, fmt.Errorf("tx link window %v: want [0, 10s] (0: the default)", c.TxLinkWindow))
	}
	if c.TxBatchMax < 1 || c.TxBatchMax > wire.MaxAnnounceIDs {
		errs = append(errs, fmt.Errorf("tx batch max %d: want 1..%d", c.TxBatchMax, wire.MaxAnnounceIDs))
	}
	if c.FetchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("fetch timeout %v: want > 0", c.FetchTimeout))
	}
	if c.BlockFetchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("block fetch timeout %v: want > 0", c.BlockFetchTimeout))
	}
	if c.TxValidateTimeout < 0 || c.BlockValidateTimeout < 0 {
		errs = append(errs, errors.New("validate timeouts: want >= 0"))
	}
	if c.MaxOrphanDepth < 0 || c.MaxOrphanDepth > 1024 {
		errs = append(errs, fmt.Errorf("max orphan depth %d: want 0..1024", c.MaxOrphanDepth))
	}
	if c.ReconcileInterval < 0 {
		errs = append(errs, fmt.Errorf("reconcile interval %v: want >= 0 (0: the default)", c.ReconcileInterval))
	}
	if c.UploadBytesPerSecond < 0 {
		errs = append(errs, fmt.Errorf("upload bytes per second %v: want >= 0 (0: the default)", c.UploadBytesPerSecond))
	}
	if c.MaxGossipMessageSize < 64<<10 || c.MaxGossipMessageSize > wire.MaxBlockBytes+4096 {
		errs = append(errs, fmt.Errorf("max gossip message size %d: want 64 KiB..%d", c.MaxGossipMessageSize, wire.MaxBlockBytes+4096))
	}
	if c.MaxTxBytes < 1 || c.MaxTxBytes > wire.MaxTxBytes {
		errs = append(errs, fmt.Errorf("max tx bytes %d: want 1..%d (the wire ceiling)", c.MaxTxBytes, wire.MaxTxBytes))
	}
	if c.MaxBlockBytes < 1 || c.MaxBlockBytes > wire.MaxBlockBytes {
		errs = append(errs, fmt.Errorf("max block bytes %d: want 1..%d (the wire ceiling)", c.MaxBlockBytes, wire.MaxBlockBytes))
	}
	if c.MaxBlockTxs < 1 || c.MaxBlockTxs > wire.MaxBlockTxs {
		errs = append(errs, fmt.Errorf("max block txs %d: want 1..%d (the wire ceiling)", c.MaxBlockTxs, wire.MaxBlockTxs))
	}
	if c.MaxAncestorBytes < c.MaxBlockBytes {
		errs = append(errs, fmt.Errorf("max ancestor bytes %d: want >= max block bytes %d", c.MaxAncestorBytes, c.MaxBlockBytes))
	}
	if c.FirstSeenCap < 1 {
		errs = append(errs, fmt.Errorf("first-seen cap %d: want >= 1", c.FirstSeenCap))
	}
	if err := c.Sync.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("relay config: %w", errors.Join(errs...))
	}
	return nil
}

// batchWindow is the batcher's window in this node's tx mode.
func (c Config) batchWindow() time.Duration {
	switch {
	case c.TxMode != TxLink:
		return c.TxBatchWindow
	case c.TxLinkWindow > 0:
		return c.TxLinkWindow
	}
	return TxLinkWindow
}

func (c Config) txValidateTimeout() time.Duration {
	if c.TxValidateTimeout > 0 {
		return c.TxValidateTimeout
	}
	return 2*c.FetchTimeout + time.Second
}

func (c Config) blockValidateTimeout() time.Duration {
	if c.BlockValidateTimeout > 0 {
		return c.BlockValidateTimeout
	}
	return 3 * c.BlockFetchTimeout
}

func (c Config) reconcileInterval() time.Duration {
	if c.ReconcileInterval > 0 {
		return c.ReconcileInterval
	}
	return ReconcileInterval
}

// uploadLimiter is the node-wide byte bucket of UploadBytesPerSecond.
func (c Config) uploadLimiter() *rate.Limiter {
	perSec := c.UploadBytesPerSecond
	if perSec <= 0 {
		perSec = DefaultUploadBytesPerSecond
	}
	return rate.NewLimiter(rate.Limit(perSec), max(int(perSec), c.maxResponseFrame(), c.maxTxsResponseFrame()))
}

// maxTxsResponseFrame caps a Txs response: the server's soft limit plus one
// maximal transaction (the one that crossed it) plus per-body prefixes.
func (c Config) maxTxsResponseFrame() int {
	return wire.TxResponseSoftBytes + c.MaxTxBytes + 4*wire.MaxTxsPerRequest + 16
}

// maxResponseFrame caps every other body-carrying response: one maximal
// block (or a soft limit's worth of blocks, headers or txs) plus 64 KiB of
// framing.
func (c Config) maxResponseFrame() int { return c.MaxBlockBytes + 64<<10 }

// TxTopic is the GossipSub topic of transaction announcements.
func (c Config) TxTopic() string { return "/rumor/" + c.topicTag() + "/tx/3" }

// BlockTopic is the GossipSub topic of block announcements.
func (c Config) BlockTopic() string { return "/rumor/" + c.topicTag() + "/block/3" }

// topicTag names the chain in topic names: the first 4 bytes of SHA-256 of
// the chain id, in hex, as Ethereum names its gossip topics by a 4-byte
// fork digest. Every gossip message carries its topic on every link, and
// an announcement of one tx id is ~40 bytes of data, so a 27-character
// chain id cost 19 bytes more per copy than this tag does. Topics only
// separate chains whose nodes are already connected, which the request
// protocol and peer exchange (named by the whole chain id) prevent.
func (c Config) topicTag() string {
	h := sha256.Sum256([]byte(c.ChainID))
	return hex.EncodeToString(h[:4])
}

// RequestProtocol names the request/response protocol (a libp2p protocol
// id on the p2p transport). Version 2 came with topic version 3, when
// rumor's chain moved to ZIP-215 signature rules: nodes of the two eras
// neither gossip nor sync with each other, so no block one era accepts
// and the other refuses ever crosses between them.
func (c Config) RequestProtocol() string { return "/rumor/" + c.ChainID + "/req/2.0.0" }

// TxLinkProtocol names the stream protocol of link-mode tx inventory
// (wire.TxSeen messages, txlink.go).
func (c Config) TxLinkProtocol() string { return "/rumor/" + c.ChainID + "/txlink/1.0.0" }

// pendingServeWait is how long a request for something this node forwarded
// before holding it waits: PendingServeWait, or half FetchTimeout when that
// is shorter, so a peer on the same timeouts gets the busy answer before it
// would time us out.
func (c Config) pendingServeWait() time.Duration {
	return min(PendingServeWait, c.FetchTimeout/2)
}

// txCutThroughMinRTT resolves TxCutThroughMinRTT (0 when always).
func (c Config) txCutThroughMinRTT() time.Duration {
	switch {
	case c.TxCutThroughMinRTT < 0:
		return 0
	case c.TxCutThroughMinRTT == 0:
		return DefaultTxCutThroughMinRTT
	}
	return c.TxCutThroughMinRTT
}
