// Package node assembles a rumor node: a libp2p host (TCP and QUIC, Noise
// and TLS, Yamux, a resource manager and a connection manager), the relay
// (GossipSub announcements and body fetches), discovery (bootstrap peers,
// mDNS, peer exchange), rumor's chain store and mempool or a caller's chain
// and pool (WithChain), the block producer, the JSON-RPC server (package
// node/rpc) and the Prometheus/pprof endpoint.
//
// # Data directory
//
//	<DataDir>/node.key     libp2p Ed25519 identity, mode 0600, reused on restart
//	<DataDir>/chain/       Badger block store (absent with InMemory)
//	<DataDir>/mempool.dat  mempool saved on Close when Mempool.PersistPath is set
//	<DataDir>/owntx.journal
//	                       own-tx journal when Mempool.JournalPath is set
//	                       (absent with InMemory): every tx tx_send accepts is
//	                       written here before the answer (fsynced with
//	                       Mempool.JournalSync) and replayed into the pool by
//	                       Start, after the pool file and the chain; see
//	                       owntx.go and mempool.Journal
//	<DataDir>/rpc.cookie   RPC bearer token, written while RPC listens beyond
//	                       loopback without a configured token; removed on Close
//	<DataDir>/bans.json    banned peers and until when (absent with InMemory),
//	                       so bans survive a restart; written by the ban
//	                       list's own goroutine (temp file, fsync, rename);
//	                       a corrupt file is moved to bans.json.corrupt
//
// # Discovery
//
// See pex.go for why nodes told only one seed end up in a random mesh:
// GossipSub PRUNE peer exchange plus rumor's own /rumor/<chainid>/pex/1.0.0.
// Bootstrap peers are re-dialled (with doubling backoff) only while the node
// holds fewer than TargetPeers/2 connections, so the seed is not kept as
// everyone's neighbour.
//
// # Peers
//
// See peers.go: the relay's offenses feed a score book (package peers) whose
// score is GossipSub's application score; a peer at the ban threshold, or
// one GossipSub graylists, is banned (connection gater, ban file) and
// dropped; per-peer token buckets meter the request server; pings drop
// silent peers; the resource manager caps connections per IP.
//
// # The relay's transport
//
// The relay (package relay) sees the network only through
// relay/transport's interfaces; the node gives it package relay/p2p's
// transport over its host: GossipSub with the peer policy's scoring, and
// the request protocol on libp2p streams. Relay peer ids are libp2p's in
// text form; the penalty hook and serve budget convert them back.
//
// # Concurrency
//
// New starts nothing. Start starts, besides the host's, GossipSub's and the
// relay's own goroutines, and the ban list's writer: pex's event and round loops (plus one goroutine per served pex
// stream, at most pexMaxServing); the bootstrap loop; mDNS's resolver and
// its dialers (at most mdnsMaxDials); the RPC and metrics servers; the
// producer loop; the mempool expiry loop; the peer policy's liveness loop
// (one ping goroutine per connected peer per round) and disconnect loop;
// the promote loop (announces txs the pool promoted from its queue through
// Relay.Announce); with rumor's pool, the own-tx loop (owntx.go: the one
// goroutine that owns the delivery tracker, fed by the relay's TxHeldHook
// through a bounded channel, re-announcing unconfirmed own txs with
// backoff); with the own-tx journal, the journal's writer (the one
// goroutine that owns the file) and the sweep loop that drops from it what
// the pool no longer holds. RPC's tx_send goes through ownTxs, which
// answers only once the journal has the tx; Close closes the journal after
// the RPC server, so no append is cut off. Each has a stop path that Close takes, in reverse order
// of start, before closing the relay, the transport, the host (if the node
// made it), the ban list and, last, the store.
//
// The chain adapter commits blocks on one goroutine, its importer
// (importer.go): store.AddBlock plus the mempool's
// BlockConnected/BlockDisconnected and the new-head events, one block at a
// time, so the pool and subscribers see blocks in the store's order whether
// they come from the relay's validators, sync or the producer. Each caller
// runs the block's stateless checks (signatures above all) on its own
// goroutine first, so different blocks are checked in parallel. Transaction
// adds do not pass through the importer (the pool has its own lock). Hooks
// the importer calls (feed publish, producer wake) never block. Close stops
// the importer after the relay and the producer, before the store. Headers
// requests read headers from block metadata (relay.HeaderSource), not whole
// blocks.
//
// # Own transactions
//
// A transaction accepted over tx_send is tracked (owntx.go, owntrack.go)
// until DeliveryConfirmPeers distinct peers are known to hold it (the
// relay's TxHeldHook: they announced it to this node or fetched it from
// it) or it leaves the pool (mined, expired, evicted); until then it is
// re-announced 2 s after submission, then with doubling delays capped at
// 60 s. tx_get reports own, seen_by and confirmed; the metric
// rumor_own_txs_unconfirmed counts the unconfirmed ones. Delivery state is
// kept in memory only: after a restart the journal's txs are tracked again
// from unconfirmed (submitted at their journaled time) and confirmed anew
// as peers fetch or announce them. Confirmed txs stay journaled until they
// are mined or the pool drops them.
//
// Node's accessors are safe to call concurrently once Start has returned.
package node
