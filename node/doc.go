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
//	<DataDir>/rpc.cookie   RPC bearer token, written while RPC listens beyond
//	                       loopback without a configured token; removed on Close
//	<DataDir>/bans.json    banned peers and until when (absent with InMemory),
//	                       so bans survive a restart
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
// # Concurrency
//
// New starts nothing. Start starts, besides the host's and the relay's own
// goroutines: pex's event and round loops (plus one goroutine per served pex
// stream, at most pexMaxServing); the bootstrap loop; mDNS's resolver and
// its dialers (at most mdnsMaxDials); the RPC and metrics servers; the
// producer loop; the mempool expiry loop; the peer policy's liveness loop
// (one ping goroutine per connected peer per round) and disconnect loop. Each has a stop path that Close
// takes, in reverse order of start, before closing the host (if the node
// made it) and, last, the store.
//
// The chain adapter serializes block commits (store.AddBlock plus the
// mempool's BlockConnected/BlockDisconnected and the new-head events) under
// one mutex, so the pool and subscribers see blocks in the store's order
// whether they come from the relay's validators or the producer; transaction
// adds do not take it (the pool has its own lock). Hooks called under that
// mutex (feed publish, producer wake) never block.
//
// Node's accessors are safe to call concurrently once Start has returned.
package node
