package testnet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/rumor-relay/rumor/node"
	rand1 "math/rand"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"

	golog "github.com/ipfs/go-log/v2"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

var log = golog.Logger("rumor/testnet")

// Run-phase timing.
const (
	// meshPoll is how often the testnet checks net_peers while the
	// overlay forms.
	meshPoll = 250 * time.Millisecond
	// meshGraftWait follows the connection check: GossipSub grafts mesh
	// peers on its heartbeat (1 s), so two heartbeats after the last node
	// reached its peers every topic mesh has been built.
	meshGraftWait = 2 * time.Second
	// settlePoll is how often the testnet polls nodes while settling.
	settlePoll = 500 * time.Millisecond
	// collectTimeout bounds the final stats and graph queries.
	collectTimeout = 30 * time.Second
)

// cluster is a running set of nodes, by node index.
type cluster interface {
	// Endpoints returns each node's JSON-RPC URL.
	Endpoints() []string
	// HTTPClient returns the client that reaches the endpoints (nil: the
	// default, over TCP).
	HTTPClient() *http.Client
	// Err returns an error once a node has died.
	Err() error
	// Close stops every node. Safe to call more than once.
	Close() error
}

// Result is the outcome of one run.
type Result struct {
	// Report is what report.json holds.
	Report *Report
	// Analysis has the per-item data behind the report.
	Analysis *Analysis
	// Dir is the output directory.
	Dir string
}

// Run starts a testnet as cfg describes, runs the workload, waits for it
// to settle, writes report.json, first_seen.csv and the plots to the
// output directory and returns the report. It returns an error when the
// run could not be carried out (a node failed to start, the mesh did not
// form, ctx was cancelled); propagation failures are in the report
// (Report.OK). Every node is stopped before Run returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wallStart := wallClock()
	dir, err := prepareOut(cfg.Out)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	g, err := testnetGenesis(&cfg, now)
	if err != nil {
		return nil, err
	}
	if len(g.Authorities) != cfg.Authorities {
		return nil, fmt.Errorf("genesis has %d authorities, want %d", len(g.Authorities), cfg.Authorities)
	}
	authority := make(map[chain.Address]int, cfg.Authorities)
	for i, a := range g.Authorities {
		authority[a] = i // authority i's key is held by node i
	}
	log.Infof("testnet: %d nodes, %s mode, %s blocks of up to %d bytes every %v, output in %s", cfg.Nodes, cfg.Mode, cfg.BlockRelay, g.MaxBlockBytes, cfg.BlockInterval, dir)

	if cfg.Mode == ModeSim && cfg.VirtualTime {
		// GossipSub draws its mesh and gossip choices from math/rand's
		// global source; seeding it (which binaries built with
		// randseednop=0, like rumor's, honour) makes those choices follow
		// the seed. What remains unseeded is the order in which the
		// runtime schedules goroutines that are ready at one instant.
		rand1.Seed(int64(seed64(cfg.Seed))) //nolint:staticcheck // deliberate: libraries use the global source
	}
	var cl cluster
	switch cfg.Mode {
	case ModeProcess:
		cl, err = startProcesses(ctx, &cfg, g, dir)
	case ModeSim:
		cl, err = startSim(ctx, &cfg, g)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := cl.Close(); err != nil {
			log.Warnf("stopping nodes: %v", err)
		}
	}()
	clients := make([]*rpcclient.Client, cfg.Nodes)
	for i, ep := range cl.Endpoints() {
		clients[i] = rpcclient.New(ep, cl.HTTPClient())
	}
	peerIDs, err := waitMesh(ctx, &cfg, cl, clients)
	if err != nil {
		return nil, err
	}
	var probe *ProbeReport
	if sc, ok := cl.(*simCluster); ok && cfg.Probe > 0 {
		trs := make([]transport.Transport, len(sc.nodes))
		for i, n := range sc.nodes {
			trs[i] = n.Transport()
		}
		prng := rand.New(rand.NewPCG(seed64(cfg.Seed), 2))
		if probe, err = runProbe(ctx, trs, peerIDs, cfg.Probe, prng, sc.latency); err != nil {
			return nil, err
		}
		log.Infof("probe: %d/%d tiny messages reached all (%d disturbed); time to all p50 %.1f ms, mesh floor %.1f ms, ratio p50 %.3f max %.3f",
			probe.ReachedAll, probe.Messages, probe.Disturbed, probe.TimeToAllMs.P50, probe.FloorMs, probe.RatioP50, probe.RatioMax)
	}

	// Measurement window: stats snapshot, workload, settle, stats snapshot.
	statsStart, err := readStats(ctx, clients)
	if err != nil {
		return nil, err
	}
	head0, err := clients[0].ChainHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("node 0 chain_head: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed64(cfg.Seed), 0))
	w := newWorkload(&cfg, g, clients, rng)
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wStart := time.Now()
	end := wStart.Add(cfg.Duration)
	stopProgress := startProgress(runCtx, &cfg, w, cl, clients, wStart, end, cancel)
	var part *partitionRun
	if sc, ok := cl.(*simCluster); ok && cfg.Partition > 0 {
		part = sc.startPartition(runCtx, &cfg, wStart)
	}
	var ch *chaosRun
	if cfg.Chaos || cfg.Churn > 0 {
		ch = startChaos(runCtx, &cfg, cl, clients, w, statsStart, head0.Height, wStart, end)
		defer ch.stop() // before cl.Close: a node it is starting must not outlive Run
	}
	// Node CPU over the workload, for CPU per tx (process mode, no chaos:
	// a restarted node's counters start again).
	// The load generator's too: on one machine it shares the CPUs.
	pc, _ := cl.(*procCluster)
	var cpu0, self0 time.Duration
	cpuErr := errors.ErrUnsupported
	if pc != nil && ch == nil {
		cpu0, cpuErr = pc.nodesCPU()
		if cpuErr == nil {
			self0, cpuErr = processCPU(os.Getpid())
		}
	}
	elapsed := w.run(runCtx, end)
	wEnd := time.Now()
	var nodesCPU, selfCPU time.Duration
	if cpuErr == nil {
		var cpu1, self1 time.Duration
		if cpu1, cpuErr = pc.nodesCPU(); cpuErr == nil {
			self1, cpuErr = processCPU(os.Getpid())
			nodesCPU, selfCPU = cpu1-cpu0, self1-self0
		}
	}
	if part != nil {
		// A heal due after the workload still comes before settling.
		select {
		case <-part.done:
		case <-runCtx.Done():
		}
	}
	if ch != nil {
		// The last victim comes back and catches up before settling.
		select {
		case <-ch.done:
		case <-runCtx.Done():
		}
	}
	stopProgress()
	if err := context.Cause(runCtx); err != nil {
		return nil, err
	}
	txs, errs := w.results()
	if r := w.retired.Load(); r > 0 {
		errs = append(errs, fmt.Sprintf("%d sender keys retired after transport errors", r))
	}
	if cfg.TxRate > 0 {
		offered := int(cfg.TxRate * cfg.Duration.Seconds())
		if sub := int(w.submitted.Load()); sub < offered*95/100 {
			errs = append(errs, fmt.Sprintf("load generator fell behind: offered %d txs, submitted %d (raise --concurrency or lower --tx-rate)", offered, sub))
		}
	}

	coll := newCollector(clients, authority)
	var held func(context.Context) error
	if ch != nil {
		ch.mergeSaved(coll)
		held = func(ctx context.Context) error { return ch.pollHeld(ctx, coll, txs) }
	}
	settleErr := settle(ctx, &cfg, cl, coll, txs, wStart, wEnd, held)
	if settleErr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, "settle: "+settleErr.Error())
	}
	cctx, ccancel := context.WithTimeout(ctx, collectTimeout)
	defer ccancel()
	statsEnd, err := readStats(cctx, clients)
	if err != nil {
		errs = append(errs, err.Error())
	}
	var graph, txMesh, blockMesh [][]int
	if cfg.Mode == ModeSim {
		if graph, err = readGraph(cctx, clients, peerIDs); err != nil {
			errs = append(errs, err.Error())
		}
		if txMesh, blockMesh, err = readMeshes(cctx, clients, peerIDs, relay.DefaultConfig(g.ChainID)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	uctx, ucancel := context.WithTimeout(ctx, collectTimeout)
	unconfirmed := countUnconfirmed(uctx, clients, txs)
	ucancel()
	obs := &Observations{
		Nodes:       cfg.Nodes,
		Mode:        cfg.Mode,
		BlockRelay:  cfg.BlockRelay,
		TxRelay:     cfg.txRelay(),
		MeshDegree:  cfg.MeshDegree,
		PrefillAge:  cfg.PrefillAge,
		Duration:    elapsed,
		Submitted:   int(w.submitted.Load()),
		Unconfirmed: unconfirmed,
		Loss:        cfg.Loss,
		Txs:         txs,
		Blocks:      coll.blocks,
		TxSeen:      coll.txSeen,
		BlockSeen:   coll.blockSeen,
		Heads:       coll.heads,
		Graph:       graph,
		TxMesh:      txMesh,
		BlockMesh:   blockMesh,
		Probe:       probe,
		Errors:      errs,
	}
	if sc, ok := cl.(*simCluster); ok {
		obs.LinkLatency = sc.latency
	}
	if cfg.Mode == ModeSim {
		obs.Latency = cfg.Latency
		if cfg.VirtualTime {
			obs.VirtualTime = true
			m := node.DefaultCPUModel()
			if cfg.CPU != nil {
				m = *cfg.CPU
			}
			obs.CPUModel = &m
		}
	}
	obs.Seed = cfg.Seed
	obs.WallS = (wallClock() - wallStart).Seconds()
	obs.PeakRSSBytes = peakRSS()
	if cpuErr == nil {
		obs.NodesCPU, obs.LoadCPU = nodesCPU, selfCPU
	}
	if len(statsEnd) == len(statsStart) {
		obs.Stats = make([]Stats, len(statsEnd))
		for i := range statsEnd {
			obs.Stats[i] = statsEnd[i].Sub(statsStart[i])
		}
		if ch != nil {
			obs.Stats = ch.statsDeltas(statsEnd) // restarted nodes count from zero
		}
	}
	if ch != nil {
		obs.LifeStartUs = ch.lifeStartUs()
		obs.Down = ch.downAtEnd()
		obs.Chaos = ch.report()
	}
	obs.BodyItems = len(txs)
	if len(coll.heads) > 0 {
		for _, b := range coll.blocks {
			if b.Height > head0.Height && b.Height <= coll.heads[coll.ref].Height {
				obs.BodyItems++
			}
		}
	}
	a := Analyze(obs)
	if part != nil {
		a.Report.Partition = part.report(&cfg, a.Txs)
	}
	if err := WriteOutputs(dir, a); err != nil {
		return nil, err
	}
	return &Result{Report: a.Report, Analysis: a, Dir: dir}, nil
}

// settle waits until every accepted tx and every block produced in the
// window reached every node and the tips agree, or cfg.Settle passed.
// Errors are about collection (a node that stopped answering), not about
// coverage, which the report judges. held, when set (chaos), marks after
// each poll what restarted nodes hold without a first-seen time.
func settle(ctx context.Context, cfg *Config, cl cluster, coll *collector, txs []TxObs, wStart, wEnd time.Time,
	held func(context.Context) error) error {
	deadline := wEnd.Add(cfg.Settle)
	var lastErr error
	for {
		sameTip := coll.readHeads(ctx)
		err := coll.walk(ctx)
		if err == nil {
			err = coll.pollMissing(ctx, txs)
		}
		if err == nil && held != nil {
			err = held(ctx)
		}
		coll.markWindow(wStart, wEnd)
		lastErr = err
		if err == nil {
			// Every window block has been walked once the reference node
			// holds a block produced after the window.
			walkedPast := len(coll.blocks) > 0 && coll.originUs(&coll.blocks[len(coll.blocks)-1]) > wEnd.UnixMicro()
			if walkedPast && coll.complete(txs) && sameTip {
				log.Infof("settled %v after the workload", time.Since(wEnd).Round(time.Millisecond))
				return nil
			}
		}
		if err := cl.Err(); err != nil {
			coll.readHeads(ctx)
			return err
		}
		if time.Now().After(deadline) {
			coll.readHeads(ctx)
			if lastErr != nil {
				return lastErr
			}
			log.Warnf("not settled after %v", cfg.Settle)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settlePoll):
		}
	}
}

// waitMesh waits until every node has at least cfg.MinPeers connections,
// then two GossipSub heartbeats, and returns the nodes' peer ids.
func waitMesh(ctx context.Context, cfg *Config, cl cluster, clients []*rpcclient.Client) ([]string, error) {
	ids := make([]string, len(clients))
	err := forEachNode(len(clients), func(i int) error {
		info, err := clients[i].NodeInfo(ctx)
		if err != nil {
			return fmt.Errorf("node %d node_info: %w", i, err)
		}
		ids[i] = info.PeerID
		return nil
	})
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(cfg.MeshTimeout)
	counts := make([]int, len(clients))
	for {
		_ = forEachNode(len(clients), func(i int) error {
			ps, err := clients[i].Peers(ctx)
			counts[i] = len(ps)
			if err != nil {
				counts[i] = -1
			}
			return nil
		})
		low := 0
		for _, n := range counts {
			if n < cfg.MinPeers {
				low++
			}
		}
		if low == 0 {
			break
		}
		if err := cl.Err(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("mesh did not form within %v: %d nodes have fewer than %d peers (peer counts by node: %v)",
				cfg.MeshTimeout, low, cfg.MinPeers, counts)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(meshPoll):
		}
	}
	log.Infof("mesh formed: every node has >= %d peers; waiting %v for GossipSub meshes to graft", cfg.MinPeers, meshGraftWait)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(meshGraftWait):
	}
	return ids, nil
}

// prepareOut creates the output directory ("" = a new temporary one) and
// clears node data a previous run left in it.
func prepareOut(out string) (string, error) {
	if out == "" {
		return os.MkdirTemp("", "rumor-testnet-")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	if err := os.RemoveAll(filepath.Join(out, "nodes")); err != nil {
		return "", fmt.Errorf("clear previous node data: %w", err)
	}
	return out, nil
}

// seed64 derives the load generator's RNG seed from the seed string.
func seed64(s string) uint64 {
	h := sha256.Sum256([]byte("rumor/testnet/rng/" + s))
	return binary.BigEndian.Uint64(h[:8])
}

// seedBytes derives a 32-byte seed for purpose from the testnet seed.
func seedBytes(s, purpose string) [32]byte {
	return sha256.Sum256([]byte("rumor/testnet/" + purpose + "/" + s))
}

// testnetGenesis makes the run's genesis: the testnet accounts and
// authorities of cfg.Seed, with block limits sized to the workload.
func testnetGenesis(cfg *Config, now time.Time) (*chain.Genesis, error) {
	g := chain.NewTestnetGenesis(fmt.Sprintf("rumor-testnet-%d", now.UnixMilli()), cfg.Seed,
		cfg.Accounts, cfg.Authorities, cfg.BlockInterval, now)
	if cfg.Mode == ModeSim && cfg.TxRate > 0 {
		// The workload's txs carry at most TxSize bytes of payload; a
		// block must hold one largest tx.
		g.MaxPayloadBytes = min(max(cfg.TxSize, simMinPayloadBytes), chain.MaxPayloadSize)
		g.MaxBlockBytes = simMaxBlockBytes(cfg)
	}
	if cfg.Mode != ModeSim && cfg.TxRate <= 0 {
		// A closed loop measures how many txs the nodes accept and relay;
		// 1 MiB blocks (about 4,200 txs of 250 B a second) would measure
		// the block limit instead, with the pools filling behind it.
		g.MaxBlockBytes, g.MaxBlockTxs = chain.MaxBlockSize, chain.MaxBlockTxs
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Sim block limit bounds.
const (
	// simMinPayloadBytes is the smallest tx payload limit a sim genesis gets.
	simMinPayloadBytes = 4 << 10
	// simMinBlockBytes is the smallest block limit a sim genesis gets.
	simMinBlockBytes = 64 << 10
	// simBlockHeadroom is how many slots' worth of the offered load one
	// block may carry, so a backlog after a missed slot still clears.
	simBlockHeadroom = 4
)

// simMaxBlockBytes sizes a sim genesis's block limit to the offered load:
// simBlockHeadroom slots of it, at least simMinBlockBytes, at most the
// chain default (and the default for a closed loop, whose load has no
// rate). Every node's in-memory store sizes its memtable to the largest
// block (chain/store), so 1 MiB blocks a 50 tx/s run never fills would
// cost a 1000-node sim 10 GB for nothing.
func simMaxBlockBytes(cfg *Config) int {
	if cfg.TxRate <= 0 {
		return chain.DefaultMaxBlockBytes
	}
	want := simBlockHeadroom * cfg.TxRate * float64(cfg.TxSize) * cfg.BlockInterval.Seconds()
	return int(min(max(want, simMinBlockBytes), chain.DefaultMaxBlockBytes))
}

// countUnconfirmed asks each accepted tx's node whether it still tracks
// the tx as its own and not confirmed delivered. A node that does not
// answer (down, older) counts nothing.
func countUnconfirmed(ctx context.Context, clients []*rpcclient.Client, txs []TxObs) int {
	n := 0
	for _, tx := range txs {
		if tx.Origin < 0 || tx.Origin >= len(clients) || ctx.Err() != nil {
			continue
		}
		st, err := clients[tx.Origin].GetTx(ctx, tx.ID)
		if err == nil && st.Own && !st.Confirmed {
			n++
		}
	}
	return n
}
