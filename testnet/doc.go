// Package testnet runs a local rumor network, loads it with signed
// transactions and measures how fast transactions and blocks reach every
// node. It backs `rumor testnet`.
//
// # Modes
//
// Process mode (ModeProcess, the default) starts N `rumor node` child
// processes on 127.0.0.1 (TCP, free ports, data dirs under the output
// directory). Sim mode (ModeSim) runs N nodes in this process on
// go-libp2p's mock network with an injected one-way link latency; see
// simCluster for what the nodes then share and how that biases the
// numbers. Both modes drive the nodes through their JSON-RPC endpoints, so
// the workload and the measurement are the same code.
//
// # A run
//
//  1. A genesis with Accounts funded keys and Authorities producers
//     (chain.NewTestnetGenesis; node i holds authority key i).
//  2. Node 0 starts; in process mode every other node gets only node 0's
//     address (from its node_info) as bootstrap peer, in sim mode up to
//     Config.BootstrapPeers random earlier nodes'; mDNS is off.
//  3. The mesh has formed when every node reports at least
//     MinPeers = min(N-1, 4) connections in net_peers; then the testnet
//     waits two GossipSub heartbeats (2 s) for the topic meshes to graft.
//  4. For Duration, TxRate txs/s (open loop; 0 = a closed loop with
//     Concurrency calls in flight) of TxSize bytes go to tx_send. Each
//     sender key is pinned to one node and has one call in flight, so its
//     nonces arrive in order; keys are used round robin in a shuffled
//     order, so consecutive txs go to random nodes.
//  5. Settle: until every accepted tx and every block produced during
//     the workload is known at every node and all chain heads agree, or
//     Settle passes, the testnet polls measure_firstSeen (only for what is
//     still missing) and walks node 0's best chain.
//  6. Stats (measure_stats, as deltas over the run), heads and, in sim
//     mode, the connection graph (net_peers) and the topic meshes
//     (net_mesh) are collected; Analyze turns everything into the Report,
//     with each item's floors (floor.go).
//
// In sim mode a self-check runs between steps 3 and 4 (probe.go): tiny
// messages gossiped by plain GossipSub push must reach every node at
// their mesh floor, or the simulator itself is wrong.
//
// # Definitions
//
// A tx's latency at a node is its first-seen time there (accepted into the
// node's mempool, or stored in a block, whichever came first) minus its
// acceptance time at the node that received it over RPC (that node's
// first-seen time). A block's latency at a node is the time it was stored
// there minus the time it was stored at its proposer. Time to all is the
// maximum latency over nodes, for items that reached every node; arrival
// is the distribution of all (item, node) latencies, origin excluded.
// Percentiles are nearest-rank. Processes on one host share one clock, so
// their timestamps compare.
//
// # Concurrency
//
// Run owns every piece of state and runs the phases in order. During the
// workload, sender goroutines (at most Concurrency) each own one sender
// key while a call is in flight (keys move through a channel), and append
// results under workload.mu; the progress goroutine only reads atomic
// counters and copies under that lock. All goroutines end before Run
// returns, and every node is stopped (child processes SIGTERM, then
// SIGKILL after 10 s; on Linux a parent-death signal also kills them if
// this process dies).
package testnet
