// Package relay moves transactions and blocks between nodes of a chain:
// short announcements pushed over gossip topics, bodies pulled on demand
// from a peer that announced them, catch-up sync for what gossip missed.
// It is the layer another chain embeds: it knows nothing of rumor's own
// chain (a test enforces that no package under relay/ imports it).
//
// # What the embedder supplies
//
//   - Chain and TxPool (iface.go): the chain's bytes, its verdicts, and its
//     naming rules: TxPool.TxID says how a transaction's id follows from
//     its bytes, Chain.ParseHeader how a block's id follows from its
//     header. Ids are 32 bytes (ID); any hash works (SHA-256, double
//     SHA-256, Keccak). Optional: HeaderSource (headers without loading
//     blocks), HeaderVerifier (authenticate a header before fetching for
//     it), BlockSizer (size and charge a block response before loading
//     it), PoolIDSource (serve mempool sync), TxBatchPool (take a fetched
//     batch of bodies in one call, to check their signatures together).
//   - Config: the chain id (names topics and the request protocol) and the
//     chain's limits (MaxTxBytes, MaxBlockBytes, MaxBlockTxs), checked
//     against the wire format's fixed ceilings (package relay/wire).
//   - A transport (package relay/transport): relay/p2p runs it on a libp2p
//     host (GossipSub and streams), relay/memnet in process (tests under
//     testing/synctest, simulations). Package relaytest is a complete
//     second chain used by the tests and the examples.
//
// # Protocols
//
// Per chain id there are two gossip topics, one request protocol and one
// message protocol:
//
//	/rumor/<tag>/tx/3             tx announcements: batches of tx ids
//	/rumor/<tag>/block/3          block announcements: compact, pull or push
//	/rumor/<chain>/req/2.0.0      one request and one response per exchange
//	/rumor/<chain>/txlink/1.0.0   link-mode tx inventory: a stream of TxSeen
//
// <tag> is 8 hex characters, the start of SHA-256 of the chain id: every
// gossip message carries its topic name, so the name is kept short.
// Topic version 3 (with request version 2) names topics by the tag,
// version 2 by the chain id itself. Since version 2, GossipSub messages
// are unsigned and named by a hash of their content (package relay/p2p);
// version 1 signed them.
//
// Message formats and caps are in package relay/wire.
//
// # Transactions
//
// SubmitTx adds a local tx to the pool and queues its id; Announce queues
// ids of txs the pool already holds (promoted from a nonce queue, reloaded
// from disk). The batcher announces queued ids after TxBatchWindow or
// TxBatchMax ids. A receiver fetches the ids it lacks from the peer the
// message came from, checks each body against its id (TxPool.TxID) and
// adds it to the pool (a fetched batch in one call to a TxBatchPool). By default, once recent request round trips say
// the links are long (TxCutThroughMinRTT, 20 ms; cut-through, txcut.go),
// a first announcement of txs it lacks is forwarded at once and the
// bodies are fetched behind it: a peer that asks for them meanwhile waits for the
// fetch (PendingServeWait) and is served from the pool, or hears busy if
// it failed (no fault), so a tx crosses each hop in one link latency and
// its body trails by one round trip at the far end. Only the pool serves,
// so a bad body goes one hop; a peer that offended in the last
// OffenderCooldown, an announcement with no id new here, and
// Config.TxFetchBeforeForward take the fetch-first path: the validator
// waits for the bodies and only then accepts; invalid bodies reject the
// message. An announcement of txs that reached us by another path in the
// last validation timeout is forwarded too (we can serve them); anything
// else is ignored.
//
// Config.TxMode TxLink (txlink.go) moves tx inventory off GossipSub: a
// node tells each peer of its tx topic mesh, in its next batch (5 ms,
// TxLinkWindow: it is paid at every hop), the 8-byte
// id prefixes of the txs it came to hold that the peer neither announced
// to it nor was told (wire.TxSeen, one frame each on a long-lived stream:
// a transport.Messenger). A receiver fetches the prefixes new to it from
// the announcer (wire.GetTxsByPrefix), checks each body's id against its
// prefix, and announces it onwards once its pool took it. An I/O-free table
// (linktable.go) keeps, per prefix, its state and which peers announced it
// or were told. It costs a round trip per hop (no cut-through) and saves
// most of the announcement bytes: one copy per link and direction at most,
// 8 bytes and about a byte of framing per id, batched per peer.
//
// Config.TxMode TxPush gossips the bodies themselves (wire.TxPush), as a
// relay on GossipSub alone would: the baseline the announce mode is
// measured against (rumor testnet --compare). Every node accepts both
// kinds; a pushed message is forwarded when the pool took one of its
// bodies, and rejected (OffenseInvalidTx, OffenseMalformed or
// OffenseOversize) when any body is junk.
//
// # Fallback
//
// The transport reports a duplicate delivery of a message with the peer
// that sent the copy, which validated it and so holds its bodies; the
// observer hands such peers to the fetch scheduler as further sources of
// the message's items, as does any other announcement of the same ids.
// When a source fails (timeout, not found, wrong body, malformed answer),
// the next is asked at once, so a withholding announcer delays an item by
// one FetchTimeout.
//
// # Blocks
//
// Compact (default): header, nonce and 6-byte SipHash short ids (BIP152;
// the scheme is the wire format's), with the txs still in the proposer's
// own announcement batch prefilled whole (and, with Config.PrefillAge,
// those it first saw within that age; prefill.go). The receiver rebuilds
// the block from its pool, fetches the missing txs by index
// (getblocktxn), stores it and accepts (or accepts first: cut-through,
// below). The getblocktxn races the pool: the missing txs are nearly
// always ones being fetched when the header arrives, and when they land
// first the block is assembled from the pool and the getblocktxn withdrawn
// (arrivals.go; Stats.BlockTxnFromPool). A rebuilt block that fails
// validation is fetched whole once (a
// short-id collision is nobody's fault). Pull: the header only; the
// receiver fetches the whole block. Push: the whole block in the message.
// A block whose parent is unknown makes the receiver fetch ancestors by id
// from the announcer, up to MaxOrphanDepth blocks and MaxAncestorBytes.
// When the chain can authenticate a header alone (HeaderVerifier), every
// announced header is checked before anything is fetched for it, and so
// are the ancestors and the headers sync receives: a made-up block costs
// its sender OffenseInvalidBlock and the node no download.
//
// Cut-through (on such chains, unless Config.StoreBeforeForward): an
// announcement whose header verifies, whose parent is stored or being
// brought in and whose carried txs are within the chain's limits is
// forwarded at once, and the block is fetched, rebuilt and stored behind
// it by one goroutine per block (at most MaxBlockImports; past that, store
// and forward). A peer that asks for such a block (getblocktxn, getblock)
// waits up to PendingServeWait for its body and is then served from the
// assembled block, so a block crosses each hop in one link latency plus,
// where txs are missing, one round trip at the far end only (block time to
// all: mesh floor + 2 latencies, instead of up to 3 latencies a hop). A
// block whose body then fails costs nobody here (its header was signed by
// its proposer; LateInvalidBlocks counts them). Past the first
// authentic header, ancestors are fixed by their ids (hash links), so an
// honest peer ahead of us that hits the depth limit is not penalized; its
// blocks are sync's job.
//
// Every decision above for one announced block (what to check, fetch, add
// or penalize, and whether to forward before storing) is made by an I/O-free
// state machine (blockJob, blockjob.go) that a driver feeds the chain's,
// the pool's and the peers' answers; table tests drive it with scripted
// ones. One job runs per block id: a concurrent announcement of the same
// block waits for it and lends its announcer as a further source.
//
// # Sync
//
// Package relay/syncer pulls what gossip did not carry (Config.Sync; on
// unless Config.NoSync): every connected peer is asked for its tip; a node
// behind downloads headers from a locator and then bodies by height range
// from several peers at once; once caught up it asks each new peer for its
// pool's ids and fetches the ones it lacks. A block announcement whose
// parent is too far back for the ancestor walk tells the syncer that its
// announcer is ahead.
//
// # Anti-entropy: mempool reconciliation
//
// Gossip can lose an announcement (a full queue, a throttle, a restart, a
// partition); reconciliation repairs it (reconcile.go, codec in package
// relay/recon). Needs a pool with PoolIDSource; off with
// Config.NoReconcile.
//
//   - Period: every ReconcileInterval (2 s, jittered by +-25%) a node starts
//     one session, with the connected peer it reconciled least recently. A
//     session that did not decode is followed at once by one more (next
//     peer, from the failed one's count); a second failure waits for the
//     next period.
//   - Set: its pending ids (at most MaxReconcileSet, 5000) first seen here
//     at least ReconcileMinAge (1 s) ago; both sides leave out younger txs,
//     which gossip is still delivering.
//   - Messages: GetSymbols{key[16], start, count} -> Symbols{batch}: the
//     server answers with coded symbols [start, start+count) of its set
//     under the requester's fresh random key (44 bytes each, count <= 2048,
//     start+count <= 8192). A session is one request, so each answer is
//     one snapshot of the server's pool; if the difference does not
//     decode, the next attempt asks 4x as many symbols under a new key, at
//     most MaxReconcileAttempts (3) requests. The first attempt asks 1.5x
//     the last difference found with that peer (with a peer it has none
//     for, the last any session found), at least MinReconcileSymbols
//     (32); a session that did not decode counts as a difference of its
//     last attempt's symbol count.
//   - Too large to decode: an attempt that fails at 2048 symbols (a
//     difference past ~1,400 ids: a sender's later txs piled up behind one
//     lost tx, a healed partition) ends the session with GetPoolIDs
//     instead: the peer's pending ids (at most 5000, oldest first within a
//     fee rate), of which those still missing after ReconcileListWait
//     (1 s, for gossip in flight) are pulled.
//   - Result: ids the peer holds and we lack are fetched from it (other
//     announcers as fallback; our own requests, never counted against the
//     peer's announcement cap), and those the pool takes are announced, so
//     they spread by push again. Ids we hold and it lacks are left for its
//     own sessions. Every other id of our set it holds: the TxHeldHook
//     hears so (delivery confirmation of own txs).
//   - Bounds: a request is served under the same budgets and byte caps as
//     any other (one encoder of at most 5000 ids per request); a decoder
//     holds at most 8192 symbols and peels at most as many ids.
//   - Penalties: a malformed batch, or one not of the count asked,
//     OffenseMalformed; ids the symbols claim but the peer then does not
//     serve, OffenseNotFound each (as for an announcement). Symbols that do
//     not decode cost nothing (a large honest difference does that too);
//     the session ends after its attempts.
//
// # Offenses
//
// One place decides what a peer did wrong and reports it once: the fetch
// scheduler for fetched items (one offense of each kind per request), the
// sync adapter (bad answers) and the syncer core (stalls, bad linkage,
// mismatched bodies) for sync requests, the validators for announcements,
// the server for requests. The request client itself reports nothing: it returns a
// *BadResponseError naming the offense, and its caller decides. Offenses
// reach the PenaltyHook; weights, decay and bans belong to the embedder
// (rumor's node feeds package peers).
//
// # Concurrency contract
//
// Goroutines the relay starts (all stop on Close or when Start's context
// ends; Close waits for them):
//
//   - the fetch loop (fetcher.run): the only goroutine that touches the fetch
//     scheduler (sched: items, sources, per-peer counts, requests in flight,
//     waiters). Validators send it wants and block on a reply channel (or
//     their context); the observer sends it sources with a non-blocking
//     send; request goroutines send it results. It does no I/O itself: it
//     calls the penalty hook, which must not block.
//   - one request goroutine per request in flight (fetcher.exec), at most
//     MaxRequestsPerPeer per peer. It does the transport request, checks
//     bodies and calls TxPool.AddTx, then posts its results to the loop.
//   - the batcher (batcher.run): owns the pending tx ids and the window
//     timer; publishes announcements (in link mode, sends TxSeen to each
//     tx mesh peer through the messenger, which queues without blocking).
//   - one fetch goroutine per TxSeen message with prefixes new here (link
//     mode, at most MaxTxValidationsPerPeer per announcer and
//     TxValidateConcurrency in all): hands them to the fetch loop and
//     records the outcome in the link table.
//   - one import goroutine per block forwarded before it was stored
//     (cut-through, at most MaxBlockImports): fetches what the block
//     lacks, rebuilds it, waits for its parent's import, adds it.
//   - one fetch goroutine per tx announcement forwarded before its bodies
//     (cut-through, at most MaxTxValidationsPerPeer per announcer and
//     TxValidateConcurrency in all, MaxEarlyTxIDs ids): hands the ids to
//     the fetch loop and records what did not come. Both kinds start
//     through spawn, which refuses once Close has begun.
//   - the syncer's loop and its request goroutines (see package
//     relay/syncer), unless Config.NoSync. The observer hands it peers
//     without blocking; its loop calls Chain.AddBlock and TxPool.AddTx.
//
// Goroutines the relay does not own but runs code on:
//
//   - the transport's validation goroutines run validateTx/validateBlock,
//     at most TxValidateConcurrency and BlockValidateConcurrency at once,
//     bounded in time (TxValidateTimeout, BlockValidateTimeout); block
//     validations add blocks to the Chain themselves unless they forward
//     early (cut-through), when an import goroutine does.
//   - the transport's goroutines call the observer synchronously: it only
//     updates atomics and metrics, parses an announcement and sends
//     without blocking (and clears a departed peer's bits in the link
//     table, one pass over at most MaxLinkIDs entries).
//   - the messenger's goroutines (one per inbound stream) run onTxSeen:
//     it updates the link table and starts a fetch goroutine, without
//     blocking.
//   - the transport runs each inbound request on a goroutine of its own
//     (handleRequest), bounded by MaxServePerPeer and MaxServeTotal (a
//     request for a block or tx this node forwarded but does not hold yet
//     waits up to PendingServeWait there, holding its slot), its
//     answer's bytes by MaxServeResponsesPerPeer and MaxServeBytesInFlight
//     until the transport has written it, and every answer by the node's
//     upload cap (Config.UploadBytesPerSecond) and the peer's ServeBudget.
//
// Shared state outside the loop, each behind its own tightly scoped mutex
// that is never held across a call out: the first-seen table, the serve
// limiter, the block singleflight (blockFlight, with the bodies of blocks
// in flight and recent failed imports), the txs in flight behind early
// forwards (txFlight), recent offenders (offenders), the reject table and
// the round-trip samples (rttSamples), the link table (txLinks). Counters
// are atomics.
// Chain and TxPool must be safe for concurrent use: validators, request
// goroutines, request handlers and the syncer call them concurrently.
// Chain.ParseHeader is also called by the observer on the transport's
// goroutines (to key duplicate block announcements), so it must be cheap
// and do no I/O. The penalty hook is called from any of these goroutines.
package relay
