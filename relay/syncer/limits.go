package syncer

import "time"

// Bounds of the sync protocol. Each is a named constant with the figure it
// comes from (see /work/shared/notes/anchors.md, "Headers-first sync").
const (
	// MaxHeadersPerRequest caps the headers asked for (and accepted) in one
	// headers request: Bitcoin Core's MAX_HEADERS_RESULTS (2000), equal to
	// the relay's wire cap.
	MaxHeadersPerRequest = 2000

	// MaxHeadersAhead caps the downloaded headers not yet connected: eight
	// header messages. The syncer asks for more headers only below it, so a
	// peer feeding a long fake header chain (Bitcoin's low-difficulty header
	// spam, CVE-2024-52916) costs us at most this many HeaderInfos (~80 B
	// each, ~1.3 MB).
	MaxHeadersAhead = 8 * MaxHeadersPerRequest

	// MaxBlocksInFlightPerPeer caps the block bodies requested from one
	// peer and not yet answered: Bitcoin Core's
	// MAX_BLOCKS_IN_TRANSIT_PER_PEER (16).
	MaxBlocksInFlightPerPeer = 16

	// BlocksPerRequest is the size of one block range request: half the
	// per-peer cap, so two requests per peer are pipelined and a peer never
	// idles for a round trip between them.
	BlocksPerRequest = MaxBlocksInFlightPerPeer / 2

	// DownloadWindow caps how far past the next block to connect bodies are
	// requested: Bitcoin Core's BLOCK_DOWNLOAD_WINDOW (1024). It bounds the
	// out-of-order bodies held in memory while one slow peer holds up the
	// connect point.
	DownloadWindow = 1024

	// MaxBufferedBlockBytes caps the bytes of bodies received and waiting
	// for their turn to connect. 1024 blocks at the default 1 MiB policy
	// limit would be 1 GiB; Bitcoin writes out-of-order blocks to disk, we
	// hold them in memory and stop requesting past 128 MiB instead.
	MaxBufferedBlockBytes = 128 << 20

	// StallTimeout is the first deadline for a peer's answer: Bitcoin Core's
	// BLOCK_STALLING_TIMEOUT_DEFAULT (2 s). It doubles on each stall of the
	// same peer up to MaxStallTimeout and resets on the peer's next answer.
	StallTimeout = 2 * time.Second

	// MaxStallTimeout caps the doubling: Bitcoin Core's
	// BLOCK_STALLING_TIMEOUT_MAX (64 s).
	MaxStallTimeout = 64 * time.Second

	// TipPollInterval is how often the syncer asks every peer for its tip
	// when nothing else told it about new blocks. Gossip delivers new
	// blocks; the poll is the safety net for a node that missed them (a
	// partition, a full validation queue). One small request per peer per
	// 30 s costs nothing.
	TipPollInterval = 30 * time.Second

	// RetryBackoff is how long block download pauses after the chain
	// refused a block for a reason that is not the sender's fault (a block
	// time too far ahead of our clock, an I/O error), so a skewed clock does
	// not turn into a hot retry loop.
	RetryBackoff = 5 * time.Second

	// FailBackoff is how long a peer gets no new work after a request to
	// it failed without timing out (refused as busy, a bad answer, a reset
	// stream), so a busy peer is not hammered with retries at the speed of
	// its refusals (its request budget would count them as a flood).
	FailBackoff = time.Second

	// MaxLocatorIDs caps a block locator: Bitcoin Core's MAX_LOCATOR_SZ
	// (101), the relay's wire cap.
	MaxLocatorIDs = 101

	// locatorDense is how many of the newest blocks a locator lists one by
	// one before the step starts doubling (Bitcoin Core: 10).
	locatorDense = 10

	// MaxPeers caps the peers the syncer tracks. The connection manager
	// keeps far fewer; the cap only keeps a flood of connection events from
	// growing the syncer's maps.
	MaxPeers = 1024
)

// Bounds of mempool sync.
const (
	// MaxPoolIDsPerResponse caps the pool ids asked for (and accepted) from
	// one peer: the "5,000 pending txs" in one answer, the same as
	// Bitcoin Core's per-peer announcement cap (MAX_PEER_TX_ANNOUNCEMENTS,
	// 5000). 5000 ids are 160 KB on the wire.
	MaxPoolIDsPerResponse = 5000

	// MaxTxsPerRequest caps the ids of one tx-by-ids request:
	// go-ethereum's maxTxRetrievals (256), the relay's wire cap.
	MaxTxsPerRequest = 256

	// MaxTxRequestsPerPeer caps the tx-by-ids requests in flight to one
	// peer: two, so one is always pipelined behind the other.
	MaxTxRequestsPerPeer = 2

	// MaxPoolIDRequestsInFlight caps the pool-id requests in flight at once
	// (over all peers), so joining a network of many peers does not draw
	// every peer's 160 KB answer at the same moment.
	MaxPoolIDRequestsInFlight = 4

	// MaxWantedTxs caps the distinct unknown tx ids queued for fetching:
	// two full pool answers. The union of honest pools is about one pool;
	// ids past the cap are dropped (gossip still brings new txs).
	MaxWantedTxs = 2 * MaxPoolIDsPerResponse

	// MaxTxSources caps the peers remembered per wanted tx id, the
	// fallbacks when the first one fails to serve it.
	MaxTxSources = 4

	// MaxRetryTxBytes caps the bodies of fetched txs kept for a second
	// attempt after the pool ignored them. Batches fetched in parallel
	// arrive out of order, and a pool refuses a nonce more than its gap
	// limit ahead (16 by default); once the fetches are done, the ignored
	// ones are offered again while that makes progress. 8 MiB is ~50,000
	// typical (150-byte) transfers.
	MaxRetryTxBytes = 8 << 20
)
