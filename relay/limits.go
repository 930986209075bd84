package relay

import "time"

// Bounds on state a peer can grow. Figures come from
// /work/shared/notes/anchors.md; wire-level caps live in package wire.
const (
	// MaxTrackedPerPeer caps the unfetched items one peer can have us track
	// as their announcer: go-ethereum's maxTxAnnounces (4096); Bitcoin Core
	// tracks 5000 per peer. Announcements past the cap are dropped (the
	// earliest are kept, cf. geth #32210) and reported as OffenseAnnounceFlood.
	MaxTrackedPerPeer = 4096
	// MaxFetchItems caps the items the fetch scheduler tracks over all
	// peers, so many peers each under MaxTrackedPerPeer still cannot exhaust
	// memory: 16 full peers' worth.
	MaxFetchItems = 16 * MaxTrackedPerPeer
	// MaxSourcesPerItem caps the announcers remembered for one item. GossipSub
	// delivers about 3 duplicates per message at D=8 (anchors); 8 sources
	// survive several withholding peers in a row.
	MaxSourcesPerItem = 8
	// MaxRequestsPerPeer caps our requests in flight to one peer. Each
	// carries up to 256 ids, so 8 requests are 2048 txs, past Bitcoin Core's
	// 100 in-flight tx requests per peer for a batching protocol.
	MaxRequestsPerPeer = 8
	// MaxServePerPeer caps the requests from one peer served at once; a
	// peer's further streams are refused with ErrCodeBusy and an
	// OffenseRequestFlood. Twice MaxRequestsPerPeer leaves room for sync.
	MaxServePerPeer = 2 * MaxRequestsPerPeer
	// MaxServeTotal caps the requests served at once over all peers, so an
	// open-stream flood from many peers is bounded too.
	MaxServeTotal = 256
	// MaxServeBytesInFlight caps the response bytes held at once over all
	// peers, from the moment a request is sized until its answer is
	// written. Before, answers were built before any byte check and held
	// uncounted while slow readers took them: MaxServeTotal requests for
	// maximal blocks could hold 2 GiB. 128 MiB is sixteen maximal blocks
	// of the default MaxBlockBytes, far above what honest sync and compact
	// block fallbacks hold (a 1 MiB block to each of 8 peers at once). A
	// chain with larger blocks gets MaxServeResponsesInFlight maximal
	// responses instead, if that is more.
	MaxServeBytesInFlight     = 128 << 20
	MaxServeResponsesInFlight = 16
	// MaxServeResponsesPerPeer is one peer's share of those bytes, in
	// maximal responses: two, so a whole-block request can overlap the
	// next, and eight greedy peers are needed to fill the node's share.
	MaxServeResponsesPerPeer = 2
	// DefaultUploadBytesPerSecond caps the bytes this node serves to all
	// peers together (Config.UploadBytesPerSecond), so a crowd of peers
	// each within its own byte budget cannot take the uplink: 64 MiB/s,
	// about half a gigabit link, leaves the rest for gossip. Bitcoin Core
	// has an opt-in -maxuploadtarget; per-peer budgets alone reset with
	// every new identity.
	DefaultUploadBytesPerSecond = 64 << 20

	// MaxPendingSources bounds the queue of alternative announcers learned
	// from duplicate deliveries on their way to the fetch loop; when it is
	// full the observer drops them (fallback then relies on other sources).
	MaxPendingSources = 4096
	// MaxPendingBatch bounds the queue of locally submitted tx ids waiting
	// for the batcher; SubmitTx blocks (up to its context) when it is full.
	MaxPendingBatch = 8192

	// Per-topic validation throttles. The transport runs at most this many
	// validations of one topic at once and drops further messages of that
	// topic (go-libp2p-pubsub #621: one busy topic must not starve another;
	// the p2p transport's global throttle is above their sum). Tx validations
	// park on body fetches, so allow many; block validations are rare but
	// must never wait behind txs.
	TxValidateConcurrency    = 1024
	BlockValidateConcurrency = 64

	// Per-peer shares of those throttles. A tx validation holds its slot
	// while the bodies are fetched from the announcer, so a peer that
	// announces unknown ids and answers just before the fetch timeout
	// held all 1,024 and GossipSub dropped every honest announcement
	// (measured: honest txs reached the attacked node at p99 936 ms
	// instead of 24 ms, half of them only in a block). An honest peer's
	// validations end within a fetch round trip: at 4,000 tx/s in 20 ms
	// batches from every origin a peer has about 15 in flight, so 64 (a
	// sixteenth of the throttle) leaves room four times over and takes
	// sixteen such attackers to fill the throttle. Blocks come one per
	// interval; 8 covers a burst of forks and orphans. A validation over
	// the share is ignored at once (no penalty: a slow honest link can
	// cross it too).
	MaxTxValidationsPerPeer    = TxValidateConcurrency / 16
	MaxBlockValidationsPerPeer = BlockValidateConcurrency / 8

	// MaxBlockImports bounds the blocks brought in behind an announcement
	// forwarded before they were stored (cut-through). Only authentic
	// headers get there, one block per interval and a few forks; past the
	// bound a block is stored before it is forwarded, as without
	// cut-through.
	MaxBlockImports = 16
	// PendingServeWait is how long a request for a block or tx this node
	// forwarded but does not hold yet waits for it. Peers behind
	// this node ask it as soon as they see the announcement, one link
	// latency after it did; the block is normally complete one round trip
	// (its own getblocktxn) later. Past the wait the answer is busy (no
	// fault), and the asker tries its other sources. A node waits half its
	// FetchTimeout when that is shorter, so an asker on the same timeouts
	// hears busy before it would time the node out.
	PendingServeWait = time.Second
	// MaxOffenders bounds the peers remembered as recent offenders, and
	// OffenderCooldown is how long an offense keeps a peer's tx
	// announcements on the fetch-first path (txcut.go): a peer that
	// announces txs it does not serve gets its junk forwarded at most once
	// a cooldown, and its honest announcements one fetch later.
	MaxOffenders     = 4096
	OffenderCooldown = time.Minute
	// MaxEarlyTxIDs bounds the tx ids in flight behind announcements
	// forwarded before their bodies (txcut.go). A peer behind us tracks
	// every id we forward under our name until it has the body, and calls
	// us a flooder past MaxTrackedPerPeer; a quarter of that leaves room
	// for our honest announcements and the ids it still holds parked after
	// a failure. Past it, announcements are fetched before they go on.
	MaxEarlyTxIDs = MaxTrackedPerPeer / 4
	// DefaultTxCutThroughMinRTT is the request round trip from which tx
	// announcements are forwarded before their bodies (txcut.go): a hop
	// of cut-through saves about one round trip, and costs a peer behind
	// that fetches from us a longer path. 20 ms is above loopback and LAN
	// round trips under load and below those between regions (50-200 ms).
	DefaultTxCutThroughMinRTT = 20 * time.Millisecond
	// MaxLinkPeers is how many peers link-mode tx relay (txlink.go)
	// remembers per tx, one bit each: a node announces to its tx mesh
	// (GossipSub's Dhi is 16 at the largest mesh degree) and hears from
	// the peers whose meshes it is in; 64 covers both with room to spare.
	MaxLinkPeers = 64
	// MaxLinkIDs bounds the link-mode prefix table: 2^17 txs, 43 minutes
	// of 50 tx/s and over two minutes of 1000 tx/s, far longer than a tx
	// takes to cross the network; about 12 MB when full.
	MaxLinkIDs = 1 << 17
)

// importSlots is a counting semaphore with a non-blocking acquire.
type importSlots chan struct{}

func (s importSlots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s importSlots) release() { <-s }
