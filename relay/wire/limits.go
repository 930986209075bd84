package wire

// Caps on what a decoder accepts: the fixed ceilings of the wire format.
// Each bounds memory a peer can make us allocate with one message; see
// /work/shared/notes/anchors.md for the figures the numbers come from. An
// embedding chain sets its own, tighter limits in relay.Config (checked
// against these ceilings there); the relay enforces them on top of what the
// decoders check.
const (
	// MaxAnnounceIDs caps the ids in one transaction announcement. Bitcoin
	// Core trickles at most 1000 inventory items per INV
	// (INVENTORY_BROADCAST_MAX); 1000 ids is 32 KB, well under GossipSub's
	// 1 MiB message limit.
	MaxAnnounceIDs = 1000

	// MaxHeaderBytes caps an encoded block header. Rumor's own header is
	// 176 bytes, Bitcoin's 80, an Ethereum header ~600; 2 KiB leaves room
	// for other chains without letting a header stand in for a body.
	MaxHeaderBytes = 2 << 10

	// MaxTxBytes is the ceiling of one encoded transaction: 1 MiB, above
	// Bitcoin's largest standard-policy tx (400 kWU) and go-ethereum's
	// 128 KiB txMaxSize.
	MaxTxBytes = 1 << 20

	// MaxBlockBytes is the ceiling of one encoded block: 16 MiB, twice
	// rumor's own chain limit and above Bitcoin's 4 MB of weight.
	MaxBlockBytes = 16 << 20

	// MaxBlockTxs is the ceiling on the transactions of one block (and so
	// the short ids of a compact block and the indexes of a getblocktxn
	// request): 2^17. A getblocktxn for all of them takes under 256 KiB
	// (MaxRequestFrame) because its indexes are differentially encoded.
	MaxBlockTxs = 1 << 17

	// MaxTxsPerRequest caps the ids of one GetTxs request and so the bodies
	// of its response: go-ethereum's maxTxRetrievals (256 per request).
	MaxTxsPerRequest = 256

	// TxResponseSoftBytes is where a server stops adding bodies to a Txs
	// response (always serving at least one): go-ethereum's 128 KiB
	// softResponseLimit for pooled transactions.
	TxResponseSoftBytes = 128 << 10

	// MaxLocatorIDs caps a headers request's block locator: Bitcoin Core's
	// MAX_LOCATOR_SZ (101), enough for a locator of a chain of 2^90 blocks.
	MaxLocatorIDs = 101

	// MaxHeadersPerResponse caps the headers of one Headers response:
	// Bitcoin Core's MAX_HEADERS_RESULTS (2000).
	MaxHeadersPerResponse = 2000

	// MaxBlocksPerRange caps the blocks of one range request: the consensus
	// spec's MAX_REQUEST_BLOCKS_DENEB (128). Responses are further cut at
	// RangeResponseSoftBytes.
	MaxBlocksPerRange = 128

	// RangeResponseSoftBytes is the ceiling of where a server stops adding
	// blocks to a Blocks response (always serving at least one): one
	// maximal block, so a response frame never exceeds MaxResponseFrame.
	// The relay cuts at its own chain's MaxBlockBytes, which is what its
	// peers' response caps allow.
	RangeResponseSoftBytes = MaxBlockBytes

	// MaxRequestFrame caps one request frame. The largest legal request is
	// a GetBlockTxn for every tx of a maximal block: 32 bytes of id plus at
	// most 3 varint bytes per index (MaxBlockTxs < 2^21) = ~180 KB.
	MaxRequestFrame = 256 << 10

	// MaxResponseFrame caps one response frame: a maximal block (or a soft
	// limit's worth of blocks, headers or txs, each under it) plus 64 KiB of
	// framing for the per-item length prefixes.
	MaxResponseFrame = MaxBlockBytes + 64<<10

	// MaxTxsResponseFrame caps a Txs response frame: the soft limit plus one
	// maximal transaction (the one that crossed it) plus per-body prefixes.
	MaxTxsResponseFrame = TxResponseSoftBytes + MaxTxBytes + 4*MaxTxsPerRequest + 16
)
