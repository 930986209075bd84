// Package relay moves transactions and blocks between rumor nodes: hash
// announcements pushed over GossipSub, bodies pulled over a request/response
// stream protocol from the peer that announced them.
//
// # Protocols
//
// Per chain id there are two GossipSub topics and one stream protocol:
//
//	/rumor/<chain>/tx/1         tx announcements: batches of tx ids
//	/rumor/<chain>/block/1      block announcements: compact, pull or push
//	/rumor/<chain>/req/1.0.0    one request and one response per stream
//
// Message formats and caps are in package relay/wire. GossipSub runs with
// strict message signing, so any standard libp2p GossipSub peer can relay.
//
// # Transactions
//
// SubmitTx adds a local tx to the pool and queues its id; the batcher
// announces queued ids after TxBatchWindow or TxBatchMax ids. A receiver's
// topic validator fetches the ids it lacks from the peer the message came
// from (msg.ReceivedFrom), checks sha256(body) == id, adds each body to the
// pool, and only then accepts, so a node forwards an announcement only when
// it holds the bodies. Invalid bodies reject the message; known, ignored or
// unavailable ones ignore it.
//
// # Fallback
//
// A duplicate delivery of a message (GossipSub's RawTracer DuplicateMessage)
// names a peer that validated it, hence holds its bodies. The tracer hands
// such peers to the fetch scheduler as further sources of the message's
// items, as does any other announcement of the same ids. When a source fails
// (timeout, not found, wrong body, malformed answer), the next is asked at
// once, so a withholding announcer delays an item by one FetchTimeout.
//
// # Blocks
//
// Compact (default): header, nonce and 6-byte SipHash short ids (BIP152).
// The receiver rebuilds the block from its pool, fetches the missing txs by
// index (getblocktxn), stores it and accepts. A rebuilt block that fails
// validation is fetched whole once (a short-id collision is nobody's fault).
// Pull: the header only; the receiver fetches the whole block. Push: the
// whole block in the message. A block whose parent is unknown makes the
// receiver fetch ancestors by id from the announcer, up to MaxOrphanDepth.
//
// # Sync
//
// Gossip only carries what happens while a node listens. Package
// relay/syncer pulls the rest (Config.Sync; on unless Config.NoSync): every
// connected peer is asked for its tip (GetTip); a node behind downloads
// headers from a locator (GetHeaders) and then bodies by height range from
// several peers at once (GetBlocks), and connects them in order; once
// caught up it asks each new peer for its pool's ids (GetPoolIDs, served
// when the TxPool implements PoolIDSource) and fetches the ones it lacks
// (GetTxs). A block announcement whose parent is too far back for the
// ancestor walk tells the syncer that its announcer is ahead. Sync offenses
// reach the penalty hook as relay Offenses.
//
// # Seams for peer scoring
//
// WithPenaltyHook receives every Offense with the offending peer;
// MaxTrackedPerPeer caps the unfetched items a peer can make us track;
// WithNewPeerHook hands over each newly connected peer; RequestHeaders,
// RequestBlocks, RequestTip and RequestPoolIDs are the sync primitives;
// WithPubSubOptions carries GossipSub score parameters.
//
// # Concurrency contract
//
// Goroutines the relay starts (all stop on Close or when Start's context
// ends; Close waits for them):
//
//   - the fetch loop (fetcher.run): the only goroutine that touches the fetch
//     scheduler (sched: items, sources, per-peer counts, requests in flight,
//     waiters). Validators send it wants and block on a reply channel (or
//     their context); the tracer sends it sources with a non-blocking send;
//     request goroutines send it results. It never blocks on I/O.
//   - one request goroutine per request in flight (fetcher.exec), at most
//     MaxRequestsPerPeer per peer. It does the stream I/O, checks bodies and
//     calls TxPool.AddTx, then posts its results to the loop.
//   - the batcher (batcher.run): owns the pending tx ids and the window
//     timer; publishes announcements.
//   - two subscription drains, and the new-peer hook goroutine when a hook
//     is set.
//   - the syncer's loop and its request goroutines (see package
//     relay/syncer), unless Config.NoSync. A network notifee hands it
//     connected and disconnected peers without blocking; the loop calls
//     Chain.AddBlock and TxPool.AddTx for what it fetched.
//
// Goroutines the relay does not own but runs code on:
//
//   - GossipSub validation goroutines run validateTx/validateBlock,
//     throttled per topic (TxValidateConcurrency, BlockValidateConcurrency)
//     and bounded in time (TxValidateTimeout, BlockValidateTimeout).
//   - GossipSub's event loop and workers call the tracer synchronously: it
//     only updates atomics, a mutex-guarded mesh table and sends without
//     blocking.
//   - libp2p runs each inbound request stream on its own goroutine
//     (handleStream), bounded by MaxServePerPeer and MaxServeTotal.
//
// Shared state outside the loop, each behind its own tightly scoped mutex
// that is never held across a call out: the first-seen table, the serve
// limiter, the block singleflight (blockFlight) and the tracer's mesh table.
// Counters are atomics. Chain and TxPool must be safe for concurrent use:
// validators, request goroutines and stream handlers call them concurrently.
// Chain.ParseHeader is also called by the tracer on GossipSub's event loop
// (to key duplicate block announcements), so it must be cheap and do no
// I/O. The penalty hook is called from any of these goroutines.
package relay
