// Package syncer pulls a node up to date: headers-first block download
// from several peers when a peer's tip is ahead of ours, and mempool sync
// (pool ids, then the missing bodies) once caught up. It is the "pull"
// half of rumor's relay; gossip (package relay) is the push half.
//
// # Design
//
// Core is an I/O-free state machine in the style of etcd's raft RawNode:
// it is fed events (a peer connected or left, an answer arrived, the time
// moved on) with the current time, and hands out Actions (send this
// request, connect this block, add this tx, penalize that peer). It reads
// our chain and pool only through the small ChainView and PoolView
// interfaces. The numbers it works with (2000 headers per message, 16
// blocks in flight per peer, a 1024-block window, a 2 s stall timeout
// doubling to 64 s) are Bitcoin Core's; see limits.go.
//
// Syncer is the driver: one goroutine that owns a Core, runs each request
// on a goroutine of its own against a Network, posts the answer back to
// the loop, and performs chain and pool work (AddBlock, AddTx) on the loop
// itself, in order. The package does not import package relay; relay
// implements Network over its request protocol and adapts its Chain and
// TxPool (the verdict values are the same).
//
// # Concurrency contract
//
//   - Core: not safe for concurrent use; one owner.
//   - Syncer: AddPeer, RemovePeer, NoteTip, Stats and Changed are safe from
//     any goroutine and never block (peer events are coalesced per peer
//     under a mutex, at most MaxPeers pending). The loop goroutine owns the
//     Core and is the only caller of Chain.AddBlock and Pool.AddTx from
//     this package. Request goroutines call only the Network and the
//     Chain's parse methods; their number is bounded by the core's
//     in-flight caps (per peer: one tip, one headers, two block ranges,
//     one pool-ids and two tx requests). Close cancels them all and waits.
//   - The penalty hook runs on the loop goroutine and must not block or
//     call back into the Syncer.
package syncer
