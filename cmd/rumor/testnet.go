package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof" // --pprof-addr
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"testing"
	"testing/synctest"

	golog "github.com/ipfs/go-log/v2"
	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/testnet"
)

// Sim mode's soft memory limit (GOMEMLIMIT overrides it): 11 MiB per node,
// at least 1 GiB for the runtime and the testnet itself.
const (
	simMemoryPerNode = 11 << 20
	simMemoryFloor   = 1 << 30
	// simGCPercent is the sim's GOGC: the heap may grow to 5x what is
	// live before a collection, up to the memory limit above.
	simGCPercent = 400
)

func newTestnetCmd() *cobra.Command {
	cfg := testnet.DefaultConfig()
	var compare, realTime bool
	var cpuProfile, pprofAddr string
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Run a local testnet and measure propagation",
		Long: `Run a local testnet, load it with signed transactions and measure how fast
transactions and blocks reach every node.

process mode (default) starts N 'rumor node' processes on 127.0.0.1, each
given only node 0's address; sim mode runs N nodes in this process over
go-libp2p's mock network with one-way link latency --latency, in virtual
time (time advances only when every node is idle, so the host's CPUs cost
nothing and each node pays a modelled CPU cost instead; --real-time turns
it off), each node bootstrapping from 3 random earlier nodes, with 4
authorities unless --authorities says otherwise. Both wait
until every node has min(N-1, 4) peers, submit --tx-rate signed txs/s of
--tx-size bytes over JSON-RPC to random nodes for --duration while the
authorities produce a block every --block-interval, then wait (at most
--settle) for every item to reach every node, and collect first-seen times.

Output: a table on stdout and, in --out, report.json, first_seen.csv,
cdf_time_to_all.png and block_arrival.png. The exit status is 1 when an
accepted tx or a produced block missed a node or the nodes end on
different tips.

--chaos (process mode) kills -9 a random non-authority node every
--chaos-every during the workload and restarts it --chaos-pause later on
its data dir, key and ports; txs sent to it while it is down go to
another node. The report then judges coverage at the nodes up at the end,
adds how long each restarted node took to serve RPC and to catch up with
the chain, and the exit status is 1 also when a killed node did not come
back or catch up. --churn f (sim mode) does the same to a fraction f of
the nodes, each crashed once at a random time (crashes may overlap) and
restarted on its chain and own-tx journal, kept in memory. --compare runs the workload under compact, pull and push
block relay, then as plain GossipSub (whole txs and blocks pushed), and prints ratios against compact.`,
		Example: `  rumor testnet --nodes 8 --duration 60s --tx-rate 500 --tx-size 250 --block-interval 1s --out ./tn
  rumor testnet --nodes 6 --duration 60s --tx-rate 200 --chaos
  rumor testnet --mode sim --nodes 200 --latency 50ms --duration 60s --tx-rate 50 --churn 0.1 --chaos-pause 3s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Progress = os.Stderr
			if pprofAddr != "" {
				// Sim-mode debugging: every node lives in this process.
				go func() { _ = http.ListenAndServe(pprofAddr, nil) }()
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			out := cmd.OutOrStdout()
			if cfg.Mode == testnet.ModeSim && !realTime {
				if !cmd.Flags().Changed("authorities") {
					cfg.Authorities = min(4, cfg.Nodes) // blocks start in several places
				}
				cfg.VirtualTime = true
				if os.Getenv("GOMEMLIMIT") == "" {
					// Every node lives in this process: let the garbage
					// collector work harder rather than let the heap double
					// past the 12 MB per node a sim is sized for.
					debug.SetMemoryLimit(max(simMemoryFloor, int64(cfg.Nodes)*simMemoryPerNode))
					if os.Getenv("GOGC") == "" {
						// With the limit as the ceiling, collect less
						// often while the heap is far below it.
						debug.SetGCPercent(simGCPercent)
					}
				}
				if !cmd.Flags().Changed("log-level") {
					// Every node of the sim logs here: identify's per-peer
					// notes at shutdown would be thousands of lines.
					_ = golog.SetLogLevel("net/identify", "error")
				}
				// A signal ends the process: nothing in the bubble may wait on
				// a channel from outside it, so there is no context to cancel.
				runVirtual(func() error {
					err := runTestnet(context.Background(), cfg, compare, out)
					pprof.StopCPUProfile()
					return err
				})
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runTestnet(ctx, cfg, compare, out)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
	fl.StringVar(&cfg.Mode, "mode", cfg.Mode, "process (one OS process per node) or sim (in-process mock network)")
	fl.DurationVar(&cfg.Duration, "duration", cfg.Duration, "how long transactions are submitted")
	fl.Float64Var(&cfg.TxRate, "tx-rate", cfg.TxRate, "transactions per second; 0 = closed loop, as fast as nodes accept")
	fl.IntVar(&cfg.TxSize, "tx-size", cfg.TxSize, "encoded transaction size in bytes")
	fl.DurationVar(&cfg.BlockInterval, "block-interval", cfg.BlockInterval, "block interval written into the genesis")
	fl.StringVar(&cfg.BlockRelay, "block-relay", cfg.BlockRelay, "block relay mode: compact, pull or push")
	fl.StringVar(&cfg.TxRelay, "tx-relay", cfg.TxRelay, "tx relay mode: announce (ids over GossipSub; bodies pulled), link (id prefixes per link; bodies pulled) or push (whole txs: plain GossipSub)")
	fl.DurationVar(&cfg.PrefillAge, "prefill-age", cfg.PrefillAge, "the nodes' --prefill-age: compact blocks carry whole the txs first seen less than this ago (0 = only txs not yet announced)")
	fl.IntVar(&cfg.MeshDegree, "mesh-degree", cfg.MeshDegree, "the nodes' --mesh-degree: GossipSub's D, 4..8 (0 = its default, 6)")
	fl.DurationVar(&cfg.Latency, "latency", cfg.Latency, "sim mode: one-way link latency, e.g. 50ms (0 = none); the lowest with --latency-max")
	fl.DurationVar(&cfg.LatencyMax, "latency-max", cfg.LatencyMax, "sim mode: draw each link's latency uniformly from --latency..--latency-max")
	fl.Float64Var(&cfg.Bandwidth, "bandwidth", cfg.Bandwidth, "sim mode: each node's upload bandwidth in bytes/s, shared by its links (0 = unlimited; default 100 Mbit/s)")
	fl.Float64Var(&cfg.Retransmit, "retransmit", cfg.Retransmit, "sim mode: probability that a chunk on a link is lost once and retransmitted after max(200ms, 3 latencies), holding its stream up")
	fl.Float64Var(&cfg.Loss, "loss", cfg.Loss, "sim mode: fraction of GossipSub messages (and control entries) each node loses on arrival")
	fl.Float64Var(&cfg.Partition, "partition", cfg.Partition, "sim mode: fraction of nodes cut off from the rest during the workload (see --partition-at, --partition-for)")
	fl.DurationVar(&cfg.PartitionAt, "partition-at", cfg.PartitionAt, "sim mode: when the partition starts, after the workload's start")
	fl.DurationVar(&cfg.PartitionFor, "partition-for", cfg.PartitionFor, "sim mode: how long the partition lasts before the network heals")
	fl.BoolVar(&cfg.Chaos, "chaos", cfg.Chaos, "process mode: kill -9 a random non-authority node every --chaos-every during the workload and restart it on its data dir")
	fl.DurationVar(&cfg.ChaosEvery, "chaos-every", cfg.ChaosEvery, "process mode, with --chaos: time between kills")
	fl.DurationVar(&cfg.ChaosPause, "chaos-pause", cfg.ChaosPause, "with --chaos or --churn: how long a killed node stays down before its restart")
	fl.Float64Var(&cfg.Churn, "churn", cfg.Churn, "sim mode: fraction of nodes (non-authorities) that each crash once at a random time of the workload and restart --chaos-pause later on their data dir")
	fl.BoolVar(&cfg.NoReconcile, "no-reconcile", cfg.NoReconcile, "sim mode: turn mempool reconciliation (anti-entropy) off")
	fl.IntVar(&cfg.Probe, "probe", cfg.Probe, "sim mode: tiny messages gossiped by plain GossipSub push before the workload, to check the simulator against the mesh floor (0 = none)")
	fl.StringVar(&cfg.Out, "out", cfg.Out, "output directory (default: a new temporary directory)")
	fl.BoolVar(&compare, "compare", false, "run under compact, pull and push block relay and as plain GossipSub (push txs and blocks), and compare")
	fl.IntVar(&cfg.Authorities, "authorities", cfg.Authorities, "number of block producers (nodes 0..n-1)")
	fl.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "number of funded sender keys")
	fl.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "most tx_send calls (or batches, with --rpc-batch) in flight")
	fl.IntVar(&cfg.RPCBatch, "rpc-batch", cfg.RPCBatch, "closed loop: tx_send calls per JSON-RPC batch, one HTTP request each, their signatures checked together (1 = one call per request)")
	fl.DurationVar(&cfg.Settle, "settle", cfg.Settle, "longest wait after the workload for full coverage (0 = max(10s, 5 block intervals))")
	fl.DurationVar(&cfg.MeshTimeout, "mesh-timeout", cfg.MeshTimeout, "longest wait for the overlay to form")
	fl.StringVar(&cfg.Seed, "seed", cfg.Seed, "seed of the testnet keys and the load generator")
	fl.StringVar(&cfg.NodeLogLevel, "node-log-level", cfg.NodeLogLevel, "process mode: each node's --log-level (logs in <out>/nodes/node-<i>/node.log)")
	fl.BoolVar(&realTime, "real-time", false, "sim mode: run in real time on this machine's CPUs instead of virtual time")
	fl.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of this process (sim mode: of every node) to this file")
	_ = fl.MarkHidden("cpu-profile")
	fl.StringVar(&pprofAddr, "pprof-addr", "", "serve this process's /debug/pprof on host:port (sim mode: every node)")
	_ = fl.MarkHidden("pprof-addr")
	return cmd
}

// runTestnet runs the testnet (or the block-mode comparison) and prints its
// tables to out.
func runTestnet(ctx context.Context, cfg testnet.Config, compare bool, out io.Writer) error {
	if compare {
		results, err := testnet.Compare(ctx, cfg)
		for _, r := range results {
			testnet.PrintTable(out, r.Report, r.Dir)
			fmt.Fprintln(out)
		}
		testnet.PrintCompare(out, results)
		if err != nil {
			return err
		}
		for _, r := range results {
			if !r.Report.OK() {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: not every item reached every node (see %s)", r.Report.BlockRelay, r.Dir)}
			}
		}
		return nil
	}
	r, err := testnet.Run(ctx, cfg)
	if err != nil {
		return err
	}
	testnet.PrintTable(out, r.Report, r.Dir)
	if !r.Report.OK() {
		return &exitError{code: 1, msg: "not every item reached every node, or tips differ (see report.json errors)"}
	}
	return nil
}

// runVirtual runs f inside a testing/synctest bubble and exits the process
// with f's status; it never returns. A bubble needs a *testing.T, which a
// program outside `go test` gets only from testing.Main: it runs the one
// test below and exits before testing prints its PASS line, so stdout holds
// only the report. Inside, time advances only when every goroutine is
// blocked, so a simulated network's timings are the model's, not the host's.
func runVirtual(f func() error) {
	os.Args = os.Args[:1] // testing parses the command line
	match := func(string, string) (bool, error) { return true, nil }
	testing.Main(match, []testing.InternalTest{{Name: "virtual-time-testnet", F: func(t *testing.T) {
		synctest.Test(t, func(*testing.T) {
			if err := f(); err != nil {
				// Exit inside the bubble: a run that failed half-way may
				// leave goroutines behind, and synctest would then panic
				// on its way out and hide the error.
				os.Exit(exitCode(err))
			}
		})
		os.Exit(0)
	}}}, nil, nil)
	os.Exit(1) // not reached: testing.Main exits
}
