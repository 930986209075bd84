package testnet

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/relay/p2p"
)

// Modes of running a testnet.
const (
	// ModeProcess runs every node as a `rumor node` child process on
	// 127.0.0.1 (real TCP, real libp2p stack, one OS process per node).
	ModeProcess = "process"
	// ModeSim runs every node in this process over go-libp2p's mock
	// network with an injected one-way link latency.
	ModeSim = "sim"
)

// Block relay modes, as the node's --block-relay flag spells them.
var blockRelayModes = []string{"compact", "pull", "push"}

// Tx relay modes, as the node's --tx-relay flag spells them.
var txRelayModes = []string{"announce", "link", "push"}

// Defaults. Each is what `rumor testnet --help` shows.
const (
	// DefaultNodes is small enough to start in seconds on a laptop and big
	// enough (> D_lo+1 of GossipSub) that announcements are relayed, not
	// just sent directly.
	DefaultNodes = 8
	// DefaultDuration is long enough for ~30 blocks at the default
	// interval, so block percentiles mean something.
	DefaultDuration = 30 * time.Second
	// DefaultTxRate is the reference load (500 tx/s of 250 B).
	DefaultTxRate = 500
	// DefaultTxSize is the encoded tx size in bytes (Bitcoin's median tx is
	// about 250 B).
	DefaultTxSize = 250
	// DefaultBlockInterval is the reference slot length of the issue.
	DefaultBlockInterval = time.Second
	// DefaultAccounts is the number of funded sender keys. Each sender has
	// at most one tx_send in flight and sends in nonce order; 1024 keys
	// sending round robin keep consecutive txs of one sender about two
	// seconds apart at 500 tx/s, so a sender's previous tx has long since
	// propagated, and keep per-sender pending counts far below any mempool
	// per-sender cap at the rates two cores can drive.
	DefaultAccounts = 1024
	// DefaultConcurrency bounds tx_send calls in flight (closed loop: the
	// number of workers). 64 saturates a handful of local nodes without
	// turning the load generator into the bottleneck on two cores.
	DefaultConcurrency = 64
	// MaxRPCBatch bounds Config.RPCBatch: a node answers batches of at
	// most its rpc.max_batch calls (node.DefaultRPCMaxBatch).
	MaxRPCBatch = node.DefaultRPCMaxBatch
	// DefaultMeshTimeout bounds the wait for the overlay to form.
	DefaultMeshTimeout = 60 * time.Second
	// DefaultStartTimeout bounds the wait for one node to serve RPC (a cold
	// Badger open plus libp2p start take a few seconds on a loaded machine).
	DefaultStartTimeout = 60 * time.Second
	// DefaultProbe is how many self-check messages a sim run gossips.
	DefaultProbe = 10
	// DefaultBandwidth is a sim node's access bandwidth: 100 Mbit/s.
	DefaultBandwidth = 100e6 / 8
	// DefaultSeed seeds the testnet keys and the load generator's choices.
	DefaultSeed = "rumor-testnet"
	// DefaultChaosEvery is how often a chaos run kills a node: a dozen
	// kills in a minute's run, each restart given time to catch up first.
	DefaultChaosEvery = 5 * time.Second
	// DefaultChaosPause is how long a killed node stays down: long enough
	// that its peers notice and blocks pass it by, short enough to keep
	// the kill rate.
	DefaultChaosPause = time.Second
	// meshMinPeersCap is the connection count that counts as "joined the
	// mesh": GossipSub's D_lo is 5 mesh peers per topic; 4 connections
	// besides the seed mean a node already learned peers beyond node 0.
	meshMinPeersCap = 4
)

// Config describes a testnet run. The zero value is not valid; start from
// DefaultConfig. Run copies it.
type Config struct {
	// Nodes is the number of nodes (>= 1).
	Nodes int
	// Mode is ModeProcess (default) or ModeSim.
	Mode string
	// Duration is how long transactions are submitted.
	Duration time.Duration
	// TxRate is submitted transactions per second, spread over random
	// nodes; 0 means a closed loop: Concurrency submissions in flight, as
	// fast as the nodes accept them.
	TxRate float64
	// TxSize is the encoded size of each transaction in bytes; the payload
	// is padded to reach it (at least the 153-byte empty-payload size).
	TxSize int
	// BlockInterval is the slot length written into the genesis.
	BlockInterval time.Duration
	// BlockRelay is the nodes' block relay mode: compact, pull or push.
	BlockRelay string
	// TxRelay is the nodes' tx relay mode: announce (ids, the default),
	// link (id prefixes per link, outside GossipSub) or push (whole txs:
	// the plain-GossipSub baseline).
	TxRelay string
	// PrefillAge is the nodes' node.Config.PrefillAge (0: only txs not yet announced).
	PrefillAge time.Duration
	// MeshDegree is the nodes' node.Config.MeshDegree (0: GossipSub's D).
	MeshDegree int
	// Latency is the one-way link latency injected in sim mode (ignored in
	// process mode); with LatencyMax, the lowest.
	Latency time.Duration
	// LatencyMax, when above Latency, makes each sim link's one-way latency
	// a value drawn uniformly from Latency..LatencyMax (from the seed).
	LatencyMax time.Duration
	// Bandwidth is each sim node's upload bandwidth in bytes/s (shared by
	// all its links; see linkModel); 0 means unlimited. Default 12.5e6, 100
	// Mbit/s.
	Bandwidth float64
	// Retransmit is the probability, per chunk a sim link carries, that its
	// first transmission is lost: links are reliable streams, so the chunk
	// and everything behind it on its stream arrive a retransmission
	// timeout late (max(200 ms, 3 latencies)). 0 means none.
	Retransmit float64
	// Loss is the fraction of GossipSub messages each sim node loses on
	// arrival, each message and control entry drawn on its own
	// (node.WithMessageLoss): gossip that never arrives, which only
	// GossipSub's own gossip, sync and anti-entropy can repair. 0 means
	// none.
	Loss float64
	// Partition is the fraction of sim nodes (drawn from the seed) cut off
	// from the rest PartitionAt into the workload, for PartitionFor; then
	// the network heals and the cut connections are dialled again. 0 means
	// none.
	Partition    float64
	PartitionAt  time.Duration
	PartitionFor time.Duration
	// Chaos (process mode only) SIGKILLs a random non-authority node every
	// ChaosEvery during the workload and restarts it ChaosPause later on
	// its data dir, key and ports (see chaos.go).
	Chaos bool
	// ChaosEvery is the time between kills (> 0 with Chaos); a restart
	// that takes longer delays the next kill.
	ChaosEvery time.Duration
	// ChaosPause is how long a killed node stays down before its restart
	// (>= 0), with Chaos or Churn.
	ChaosPause time.Duration
	// Churn (sim mode only) is the fraction of nodes, drawn from the seed
	// among the non-authorities, that each crash once at a random time of
	// the workload and restart ChaosPause later on their data dir (kept in
	// memory); crashes may overlap (see chaos.go). 0 means none.
	Churn float64
	// NoReconcile turns mempool reconciliation off at every sim node (to
	// measure what it costs and repairs).
	NoReconcile bool
	// Authorities is the number of block producers (nodes 0..Authorities-1
	// hold their keys); 1..Nodes.
	Authorities int
	// Accounts is the number of funded sender keys.
	Accounts int
	// Concurrency bounds tx_send calls in flight (with RPCBatch > 1, the
	// batches in flight).
	Concurrency int
	// RPCBatch is how many tx_send calls the closed loop packs into one
	// JSON-RPC batch (one HTTP request; the node checks their signatures
	// together). 0 or 1: one call per request. Needs TxRate 0, no chaos.
	RPCBatch int
	// Settle bounds the wait after the workload for every item to reach
	// every node and the tips to agree; 0 means max(10 s, 5 intervals).
	Settle time.Duration
	// MeshTimeout bounds the wait for the overlay to form.
	MeshTimeout time.Duration
	// StartTimeout bounds the wait for each node to start serving RPC.
	StartTimeout time.Duration
	// MinPeers is the connection count every node must reach before the
	// workload starts; 0 means min(Nodes-1, 4).
	MinPeers int
	// Seed seeds key derivation and the load generator's random choices;
	// the chain id is derived from it and the start time.
	Seed string
	// Out is the output directory (report, CSV, plots, node data dirs);
	// "" means a new temporary directory.
	Out string
	// NodeCommand is the argv that runs `rumor node` in process mode (the
	// testnet appends the node flags); nil means this executable with the
	// "node" subcommand.
	NodeCommand []string
	// NodeEnv is added to each child's environment in process mode.
	NodeEnv []string
	// NodeLogLevel is each node's --log-level in process mode (logs go to
	// <out>/nodes/node-<i>/node.log).
	NodeLogLevel string
	// Progress receives the progress display (a redrawn line when it is a
	// terminal, periodic log lines otherwise); nil means none.
	Progress io.Writer
	// VirtualTime declares that a sim run executes inside a testing/synctest
	// bubble (the caller puts it there: `rumor testnet` through testing.Main,
	// tests through synctest.Test). The nodes then pay modelled CPU time
	// (CPU) instead of sharing the host's, and the report marks the run.
	// Process mode ignores it.
	VirtualTime bool
	// CPU is the per-node CPU cost model of a virtual-time sim; nil means
	// node.DefaultCPUModel().
	CPU *node.CPUModel
	// BootstrapPeers is how many random earlier nodes each sim node is
	// given as bootstrap peers (node 0 has none); 0 means 3.
	BootstrapPeers int
	// Probe is how many tiny messages the sim's self-check gossips by
	// plain GossipSub push before the workload (see probe.go); 0 skips it.
	// Process mode ignores it.
	Probe int
	// ProgressTTY forces the terminal display on or off; nil means detect.
	ProgressTTY *bool
}

// DefaultConfig returns the defaults `rumor testnet` starts from.
func DefaultConfig() Config {
	return Config{
		Nodes:         DefaultNodes,
		Mode:          ModeProcess,
		Duration:      DefaultDuration,
		TxRate:        DefaultTxRate,
		TxSize:        DefaultTxSize,
		BlockInterval: DefaultBlockInterval,
		BlockRelay:    "compact",
		TxRelay:       "announce",
		Authorities:   1,
		Accounts:      DefaultAccounts,
		Concurrency:   DefaultConcurrency,
		MeshTimeout:   DefaultMeshTimeout,
		StartTimeout:  DefaultStartTimeout,
		Seed:          DefaultSeed,
		NodeLogLevel:  "info",
		Bandwidth:     DefaultBandwidth,
		PartitionAt:   10 * time.Second,
		PartitionFor:  30 * time.Second,
		ChaosEvery:    DefaultChaosEvery,
		ChaosPause:    DefaultChaosPause,
		Probe:         DefaultProbe,
	}
}

// minTxSize is the encoded size of a tx with an empty payload.
var minTxSize = (&chain.Tx{}).Size()

// Validate checks the configuration and fills derived defaults (Settle,
// MinPeers).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Nodes < 1 {
		bad("nodes must be >= 1, is %d", c.Nodes)
	}
	if c.Mode != ModeProcess && c.Mode != ModeSim {
		bad("mode must be %q or %q, is %q", ModeProcess, ModeSim, c.Mode)
	}
	if c.Duration <= 0 {
		bad("duration must be > 0, is %v", c.Duration)
	}
	if c.TxRate < 0 {
		bad("tx rate must be >= 0, is %v", c.TxRate)
	}
	if c.TxSize < minTxSize || c.TxSize > chain.MaxTxSize {
		bad("tx size must be in %d..%d bytes, is %d", minTxSize, chain.MaxTxSize, c.TxSize)
	}
	if c.BlockInterval < time.Millisecond {
		bad("block interval must be >= 1ms, is %v", c.BlockInterval)
	}
	okMode := false
	for _, m := range blockRelayModes {
		okMode = okMode || c.BlockRelay == m
	}
	if !okMode {
		bad("block relay must be one of %v, is %q", blockRelayModes, c.BlockRelay)
	}
	if c.TxRelay != "" && !slices.Contains(txRelayModes, c.TxRelay) {
		bad("tx relay must be one of %v, is %q", txRelayModes, c.TxRelay)
	}
	if _, err := p2p.MeshParams(c.MeshDegree); err != nil {
		bad("mesh degree must be 0 (GossipSub's default) or in %d..%d, is %d", p2p.MinMeshDegree, p2p.MaxMeshDegree, c.MeshDegree)
	}
	if c.Latency < 0 || c.Bandwidth < 0 {
		bad("latency and bandwidth must be >= 0")
	}
	if c.Retransmit < 0 || c.Retransmit >= 1 {
		bad("retransmit must be in [0, 1), is %v", c.Retransmit)
	}
	if c.Partition < 0 || c.Partition >= 1 {
		bad("partition must be in [0, 1), is %v", c.Partition)
	}
	if c.Partition > 0 && (c.Mode != ModeSim || c.PartitionAt < 0 || c.PartitionFor <= 0 || c.Nodes < 2) {
		bad("partition needs sim mode, at least 2 nodes, --partition-at >= 0 and --partition-for > 0")
	}
	if c.Chaos {
		switch {
		case c.Mode != ModeProcess:
			bad("chaos needs process mode: it kills and restarts node processes (mode is %q)", c.Mode)
		case c.Nodes-c.Authorities < chaosMinVictims:
			bad("chaos needs at least %d non-authority nodes, one to kill and one that stays up (nodes %d, authorities %d)",
				chaosMinVictims, c.Nodes, c.Authorities)
		case c.ChaosEvery <= 0 || c.ChaosPause < 0:
			bad("chaos needs --chaos-every > 0 and --chaos-pause >= 0 (are %v, %v)", c.ChaosEvery, c.ChaosPause)
		}
	}
	if c.Churn < 0 || c.Churn >= 1 {
		bad("churn must be in [0, 1), is %v", c.Churn)
	}
	if c.Churn > 0 {
		switch {
		case c.Mode != ModeSim:
			bad("churn needs sim mode (--chaos kills processes)")
		case c.Partition > 0:
			bad("churn and partition cannot be combined: a restarted node is linked to every node again")
		case c.ChaosPause < 0:
			bad("churn needs --chaos-pause >= 0 (is %v)", c.ChaosPause)
		case churnVictims(c) < 1:
			bad("churn %v of %d nodes leaves no non-authority node to crash (authorities %d)", c.Churn, c.Nodes, c.Authorities)
		}
	}
	if c.Loss < 0 || c.Loss >= 1 {
		bad("loss must be in [0, 1), is %v", c.Loss)
	}
	if c.LatencyMax != 0 && c.LatencyMax < c.Latency {
		bad("latency max (%v) must be 0 or >= latency (%v)", c.LatencyMax, c.Latency)
	}
	if c.Authorities < 1 || c.Authorities > c.Nodes {
		bad("authorities must be in 1..nodes (%d), is %d", c.Nodes, c.Authorities)
	}
	if c.Accounts < 1 || c.Accounts > chain.MaxTestnetAccounts {
		bad("accounts must be in 1..%d, is %d", chain.MaxTestnetAccounts, c.Accounts)
	}
	if c.RPCBatch > 1 && (c.TxRate > 0 || c.Chaos || c.Churn > 0) {
		bad("rpc batch %d needs a closed loop (--tx-rate 0) without chaos or churn", c.RPCBatch)
	}
	if c.RPCBatch < 0 || c.RPCBatch > MaxRPCBatch {
		bad("rpc batch must be 0..%d, is %d", MaxRPCBatch, c.RPCBatch)
	}
	if c.Concurrency < 1 {
		bad("concurrency must be >= 1, is %d", c.Concurrency)
	}
	if c.MeshTimeout <= 0 || c.StartTimeout <= 0 {
		bad("mesh and start timeouts must be > 0")
	}
	if c.Probe < 0 {
		bad("probe must be >= 0, is %d", c.Probe)
	}
	if c.Settle < 0 {
		bad("settle must be >= 0, is %v", c.Settle)
	}
	if c.Seed == "" {
		bad("seed must not be empty")
	}
	if c.Settle == 0 {
		c.Settle = max(10*time.Second, 5*c.BlockInterval)
	}
	if c.MinPeers == 0 {
		c.MinPeers = min(c.Nodes-1, meshMinPeersCap)
	}
	if c.MinPeers > c.Nodes-1 && c.Nodes >= 1 {
		bad("min peers must be <= nodes-1 (%d), is %d", c.Nodes-1, c.MinPeers)
	}
	return errors.Join(errs...)
}

// txRelay is the tx relay mode, "announce" when unset.
func (c *Config) txRelay() string {
	if c.TxRelay == "" {
		return "announce"
	}
	return c.TxRelay
}
