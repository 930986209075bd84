package testnet

// Chaos: kill -9 of random non-authority nodes during a process-mode run.
//
// Every Config.ChaosEvery of the workload one goroutine (chaosRun.loop)
// draws a victim from the seed among the non-authority nodes that are up
// (authorities keep producing blocks, and node 0, an authority, is every
// node's bootstrap peer), SIGKILLs its process group, waits ChaosPause and
// starts it again with the same argv: data dir, genesis, libp2p key
// (node.key in the data dir), bootstrap address, and the same TCP and RPC
// ports, so the workload's and the collector's clients keep their
// endpoints. Cycles run one after another, so at most one node is down at
// a time and at least one non-authority is always up; a cycle that runs
// past the next tick delays it.
//
// The workload tolerates the down node: a tx_send that fails on transport
// (refused, reset) moves its sender to a random node that is up and sends
// the identical tx again (workload.reroute). The tx has the same id, so a
// node that already holds it (the dead node relayed it before dying)
// answers with that id; it counts as accepted once a node acknowledges
// it. The failed calls are counted in report.json's chaos.send_failures.
// A tx the dead node acknowledged is in its own-tx journal and is
// replayed when it restarts.
//
// # What a restart does to the measurement
//
// First-seen times live in the relay's memory, so a kill erases the
// victim's. Just before each kill the testnet reads the victim's
// first-seen times of the txs and blocks created during its current life
// (created after it started: only those can be propagation times; an
// item older than the life was replayed or synced into it) and keeps
// them. After the run a (item, node) pair whose node restarted after the
// item was created, and whose time (if any) comes from the node's final
// life, has no propagation latency: it counts as reached when the node
// holds the item (first-seen, or tx_get / chain_blockByID at the end),
// and is left out of every latency percentile (Analyze; ItemResult
// AfterRestart; chaos.held_after_restart counts such pairs). Relay
// counters restart at zero too: each life's counters are read before the
// kill and summed.
//
// Per restart the report gives the time from the restart to the node's
// RPC answering, and to its chain head reaching the highest head any
// other node had when it restarted (catch-up).
//
// # Concurrency
//
// The loop goroutine owns the victims' state (life starts, saved times,
// stats carry, restart records) until done is closed; Run reads it only
// after that. mu guards down and pick, which the workload's sender
// goroutines read through reroute.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// Chaos bounds and timing.
const (
	// chaosMinVictims is the fewest non-authority nodes a chaos run
	// needs: one to kill and one that stays up.
	chaosMinVictims = 2
	// chaosRestartAttempts bounds the starts of a killed node. A start
	// fails when another socket took one of its ports while it was down;
	// the last attempt lets libp2p pick a new TCP port (peers learn it
	// when it dials them), the RPC port never changes.
	chaosRestartAttempts = 3
	// chaosStartPoll is how often a starting node's RPC is tried: the
	// resolution of rpc_ready_ms (a refused connection costs nothing).
	chaosStartPoll = 20 * time.Millisecond
	// chaosPoll is how often a restarted node is asked for its head while
	// it catches up.
	chaosPoll = 100 * time.Millisecond
	// chaosCatchUpTimeout bounds the wait for a restarted node to reach
	// the cluster's head at its restart; past it the restart counts as
	// not caught up and the run fails.
	chaosCatchUpTimeout = 30 * time.Second
	// chaosCallTimeout bounds each RPC call chaos makes.
	chaosCallTimeout = 5 * time.Second
	// chaosAnyPort is the listen address of a restart that lets libp2p
	// pick the port.
	chaosAnyPort = "/ip4/127.0.0.1/tcp/0"
	// chaosHeldQueries bounds the presence queries (tx_get,
	// chain_blockByID) per node per settle poll, so one poll stays short.
	chaosHeldQueries = 2000
)

// ChaosReport is report.json's "chaos" object: what a --chaos run did to
// its nodes and how they came back.
type ChaosReport struct {
	// EveryMs and PauseMs are the configured kill interval (0 for churn)
	// and downtime.
	EveryMs float64 `json:"every_ms"`
	PauseMs float64 `json:"pause_ms"`
	// Churn is the fraction of nodes a churn run (sim mode) crashed once
	// each; 0 for --chaos.
	Churn float64 `json:"churn"`
	// Kills counts SIGKILLs; Restarts the killed nodes that served RPC
	// again; CaughtUp those whose head then reached the cluster's head at
	// their restart.
	Kills    int `json:"kills"`
	Restarts int `json:"restarts"`
	CaughtUp int `json:"caught_up"`
	// RPCReadyMs is the distribution over restarts of restart to RPC
	// answering; CatchUpMs of restart to catch-up (caught-up restarts).
	RPCReadyMs Percentiles `json:"rpc_ready_ms"`
	CatchUpMs  Percentiles `json:"catch_up_ms"`
	// SendFailures counts tx_send calls that failed on transport (their
	// node was down or died during the call); each tx went again,
	// identical, to a node that was up. They are not accepted txs.
	SendFailures int64 `json:"send_failures"`
	// HeldAfterRestart counts (item, node) pairs judged by presence: the
	// node restarted after the item was created, so its first-seen time
	// was lost or is a replay or catch-up time. They count as reached and
	// are left out of the latency percentiles.
	HeldAfterRestart int `json:"held_after_restart"`
	// DownAtEnd lists nodes that did not come back (a failed restart):
	// coverage and tips are judged without them, and the run fails.
	DownAtEnd []int `json:"down_at_end"`
	// PerRestart has one entry per kill, in order.
	PerRestart []RestartReport `json:"per_restart"`
}

// RestartReport is one kill and restart.
type RestartReport struct {
	// Node is the victim's index.
	Node int `json:"node"`
	// KilledAtMs is when it was killed, ms after the workload started;
	// DownMs how long it was down before the successful start.
	KilledAtMs float64 `json:"killed_at_ms"`
	DownMs     float64 `json:"down_ms"`
	// Attempts counts process starts (1 unless a start failed).
	Attempts int `json:"attempts"`
	// RPCReadyMs is restart to the first answered chain_head; null when
	// the node did not come back.
	RPCReadyMs *float64 `json:"rpc_ready_ms"`
	// TargetHeight is the highest head of the other nodes at the restart.
	TargetHeight uint64 `json:"target_height"`
	// CatchUpMs is restart to the node's head reaching TargetHeight; null
	// when it did not within chaosCatchUpTimeout.
	CatchUpMs *float64 `json:"catch_up_ms"`
	// Error says what went wrong, if anything.
	Error string `json:"error,omitempty"`
}

// ok reports whether every killed node came back and caught up. A nil
// report (no chaos) is ok.
func (c *ChaosReport) ok() bool {
	return c == nil || (c.Restarts == c.Kills && c.CaughtUp == c.Kills && len(c.DownAtEnd) == 0)
}

// chaosRun is chaos in progress.
type chaosRun struct {
	cfg        *Config
	pc         *procCluster // process mode (--chaos)
	sim        *simCluster  // sim mode (--churn)
	clients    []*rpcclient.Client
	w          *workload
	fromHeight uint64 // node 0's head when the workload started
	wStart     time.Time
	end        time.Time
	victims    *rand.Rand // only the loop goroutine draws
	done       chan struct{}
	cancel     context.CancelFunc

	mu       sync.Mutex
	down     []bool          // node is killed or restarting
	pick     *rand.Rand      // reroute's choices
	restarts []RestartReport // per kill
	stopped  []bool          // node is down for good (its restart failed)

	// A node's slots are owned by the cycle of that node (one at a time
	// per node) until done, then by Run.
	lifeStart  []time.Time            // start of the node's current process; zero: never restarted
	savedTx    []map[chain.Hash]int64 // first-seen times from earlier lives
	savedBlock []map[chain.Hash]int64 // same for blocks
	snapHeight []uint64               // highest height whose block was snapshotted in the current life
	statsBase  []Stats                // counters at the start of the current life's measurement
	statsCarry []Stats                // counters of earlier lives
}

// startChaos starts the kill loop (process mode, --chaos) or the churn
// schedule (sim mode, --churn) for the workload [wStart, end) and hooks
// the workload's reroute. statsStart are the counters the run's stats
// window starts from; fromHeight is node 0's head at the workload's start.
func startChaos(ctx context.Context, cfg *Config, cl cluster, clients []*rpcclient.Client, w *workload,
	statsStart []Stats, fromHeight uint64, wStart, end time.Time) *chaosRun {
	n := len(clients)
	ctx, cancel := context.WithCancel(ctx)
	ch := &chaosRun{
		cfg: cfg, clients: clients, w: w, fromHeight: fromHeight, wStart: wStart, end: end,
		victims:    rand.New(rand.NewPCG(seed64(cfg.Seed+"/chaos"), 0)),
		pick:       rand.New(rand.NewPCG(seed64(cfg.Seed+"/chaos"), 1)),
		done:       make(chan struct{}),
		cancel:     cancel,
		down:       make([]bool, n),
		lifeStart:  make([]time.Time, n),
		savedTx:    make([]map[chain.Hash]int64, n),
		savedBlock: make([]map[chain.Hash]int64, n),
		snapHeight: make([]uint64, n),
		statsBase:  append([]Stats(nil), statsStart...),
		statsCarry: make([]Stats, n),
		stopped:    make([]bool, n),
	}
	if len(ch.statsBase) != n {
		ch.statsBase = make([]Stats, n)
	}
	for i := range n {
		ch.savedTx[i] = make(map[chain.Hash]int64)
		ch.savedBlock[i] = make(map[chain.Hash]int64)
		ch.snapHeight[i] = fromHeight
	}
	w.reroute = ch.reroute
	switch c := cl.(type) {
	case *procCluster:
		ch.pc = c
		go ch.loop(ctx)
	case *simCluster:
		ch.sim = c
		go ch.churnLoop(ctx)
	default:
		panic(fmt.Sprintf("testnet: chaos on a %T", cl))
	}
	return ch
}

// stop ends the loop (a cycle in progress kills a node it is starting)
// and waits for it. Safe to call more than once.
func (ch *chaosRun) stop() {
	ch.cancel()
	<-ch.done
}

// reroute picks a node that is up, other than from, for a sender whose
// call to from failed; from itself when no other is up.
func (ch *chaosRun) reroute(from int) int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	up := make([]int, 0, len(ch.down))
	for i, d := range ch.down {
		if !d && i != from {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return from
	}
	return up[ch.pick.IntN(len(up))]
}

func (ch *chaosRun) setDown(i int, d bool) {
	ch.mu.Lock()
	ch.down[i] = d
	ch.mu.Unlock()
}

// setStopped marks node i down for good: its restart failed.
func (ch *chaosRun) setStopped(i int) {
	ch.mu.Lock()
	ch.stopped[i] = true
	ch.mu.Unlock()
}

func (ch *chaosRun) isStopped(i int) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.stopped[i]
}

// loop kills a victim every ChaosEvery until the workload ends.
func (ch *chaosRun) loop(ctx context.Context) {
	defer close(ch.done)
	next := ch.wStart.Add(ch.cfg.ChaosEvery)
	for next.Before(ch.end) {
		if !waitUntil(ctx, next) {
			return
		}
		v, ok := ch.victim()
		if !ok {
			log.Warnf("chaos: fewer than %d non-authority nodes up; no more kills", chaosMinVictims)
			return
		}
		ch.cycle(ctx, v)
		next = next.Add(ch.cfg.ChaosEvery)
		if now := time.Now(); next.Before(now) {
			next = now // the cycle overran the tick: kill again at once
		}
	}
}

// churnVictims is how many nodes a churn run crashes: Churn of them,
// rounded, at most every non-authority node.
func churnVictims(c *Config) int {
	return min(int(c.Churn*float64(c.Nodes)+0.5), c.Nodes-c.Authorities)
}

// churnEvent is one crash of a churn run: which node, and when after the
// workload's start.
type churnEvent struct {
	node int
	at   time.Duration
}

// churnSchedule draws a churn run's crashes from the seed: churnVictims
// distinct non-authority nodes, each at a time uniform in the first
// churnWindow of the workload, so every node is back before it ends.
func churnSchedule(cfg *Config) []churnEvent {
	rng := rand.New(rand.NewPCG(seed64(cfg.Seed+"/churn"), 0))
	k := churnVictims(cfg)
	window := time.Duration(float64(cfg.Duration) * churnWindow)
	ev := make([]churnEvent, 0, k)
	for _, j := range rng.Perm(cfg.Nodes - cfg.Authorities)[:k] {
		ev = append(ev, churnEvent{node: cfg.Authorities + j, at: time.Duration(rng.Int64N(int64(window) + 1))})
	}
	slices.SortFunc(ev, func(a, b churnEvent) int { return cmp.Compare(a.at, b.at) })
	return ev
}

// churnWindow is the part of the workload in which churn crashes fall:
// the rest leaves time to come back and to carry load again.
const churnWindow = 0.8

// churnLoop runs each crash of the churn schedule at its time, in a
// goroutine of its own: crashes overlap when their downtimes do.
func (ch *chaosRun) churnLoop(ctx context.Context) {
	defer close(ch.done)
	var wg sync.WaitGroup
	for _, e := range churnSchedule(ch.cfg) {
		wg.Go(func() {
			if waitUntil(ctx, ch.wStart.Add(e.at)) {
				ch.cycle(ctx, e.node)
			}
		})
	}
	wg.Wait()
}

// victim draws a non-authority node that is up, provided another one
// stays up.
func (ch *chaosRun) victim() (int, bool) {
	var up []int
	for i := ch.cfg.Authorities; i < len(ch.clients); i++ {
		if !ch.isStopped(i) {
			up = append(up, i)
		}
	}
	if len(up) < chaosMinVictims {
		return 0, false
	}
	return up[ch.victims.IntN(len(up))], true
}

// restarter starts a crashed node again on its data dir and waits until
// it serves RPC. It returns how many starts it made and when the one that
// succeeded (or the last) began.
type restarter func(ctx context.Context) (attempts int, started time.Time, err error)

// crash kills node v at once, process or simulated node, and returns how
// to start it again.
func (ch *chaosRun) crash(ctx context.Context, v int) (restarter, error) {
	if ch.sim != nil {
		return ch.sim.crash(v)
	}
	return ch.crashProcess(ctx, v)
}

// cycle kills node v, restarts it after the pause and waits for it to
// catch up, recording a RestartReport. Cycles of different nodes may run
// at once (churn); each touches only its node's slots of the per-node
// state, and the shared parts under mu.
func (ch *chaosRun) cycle(ctx context.Context, v int) {
	stats, statsOK := ch.snapshot(ctx, v)
	ch.setDown(v, true)
	killed := time.Now()
	restart, err := ch.crash(ctx, v)
	if err != nil {
		// Already dead (the run fails on that) or the testnet is stopping.
		log.Warnf("chaos: %v", err)
		ch.setDown(v, false)
		return
	}
	rr := RestartReport{Node: v}
	defer func() {
		ch.mu.Lock()
		ch.restarts = append(ch.restarts, rr)
		ch.mu.Unlock()
	}()
	if statsOK {
		ch.statsCarry[v] = addStats(ch.statsCarry[v], stats.Sub(ch.statsBase[v]))
	}
	ch.statsBase[v] = Stats{} // the next life counts from zero
	rr.KilledAtMs = roundUs(ms(killed.Sub(ch.wStart)))
	log.Infof("chaos: killed node %d; restarting in %v", v, ch.cfg.ChaosPause)
	if !waitUntil(ctx, killed.Add(ch.cfg.ChaosPause)) {
		rr.Error = "run ended while the node was down"
		return
	}
	rr.TargetHeight = ch.clusterHead(ctx, v)
	attempts, restarted, err := restart(ctx)
	rr.Attempts = attempts
	rr.DownMs = roundUs(ms(restarted.Sub(killed)))
	if err != nil {
		rr.Error = fmt.Sprintf("restart failed after %d attempts: %v", attempts, err)
		ch.setStopped(v) // stays down; reroute keeps avoiding it
		return
	}
	ready := roundUs(ms(time.Since(restarted)))
	rr.RPCReadyMs = &ready
	ch.lifeStart[v] = restarted
	ch.snapHeight[v] = rr.TargetHeight
	ch.setDown(v, false)

	// Catch-up: the node's head reaches the cluster's head at restart.
	deadline := restarted.Add(chaosCatchUpTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, chaosCallTimeout)
		h, err := ch.clients[v].ChainHead(cctx)
		cancel()
		if err == nil && h.Height >= rr.TargetHeight {
			up := roundUs(ms(time.Since(restarted)))
			rr.CatchUpMs = &up
			log.Infof("chaos: node %d back: RPC after %.0f ms, at height %d after %.0f ms", v, ready, rr.TargetHeight, up)
			return
		}
		if time.Now().After(deadline) {
			rr.Error = fmt.Sprintf("did not reach height %d within %v of its restart", rr.TargetHeight, chaosCatchUpTimeout)
			return
		}
		if !waitUntil(ctx, time.Now().Add(chaosPoll)) {
			rr.Error = "run ended before the node caught up"
			return
		}
	}
}

// crashProcess SIGKILLs node v's process group; the restarter starts it
// with the same argv: data dir, key, RPC port and (unless taken meanwhile)
// TCP port.
func (ch *chaosRun) crashProcess(ctx context.Context, v int) (restarter, error) {
	listen := ch.listenAddr(ctx, v)
	c, err := ch.pc.kill(v)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (attempts int, restarted time.Time, lastErr error) {
		u, err := url.Parse(ch.pc.endpoints[v])
		if err != nil {
			return 0, time.Now(), err
		}
		for attempt := 1; attempt <= chaosRestartAttempts; attempt++ {
			attempts = attempt
			if listen == "" || attempt == chaosRestartAttempts {
				listen = chaosAnyPort // let libp2p pick a free TCP port
			}
			args := setFlag(setFlag(c.args, "--rpc-addr", u.Host), "--listen", listen)
			restarted = time.Now()
			if lastErr = ch.restart(ctx, v, c.dir, args); lastErr == nil {
				return attempts, restarted, nil
			}
			log.Warnf("chaos: node %d restart attempt %d: %v", v, attempt, lastErr)
			if ctx.Err() != nil || !waitUntil(ctx, time.Now().Add(ch.cfg.ChaosPause)) {
				break
			}
		}
		return attempts, restarted, lastErr
	}, nil
}

// restart starts node v's process with args and waits for its RPC to
// answer; on success the new process replaces the dead one in the
// cluster and its exits are failures of the run again.
func (ch *chaosRun) restart(ctx context.Context, v int, dir string, args []string) error {
	// The dead process's address file would read as the new one's.
	_ = os.Remove(filepath.Join(dir, RPCAddrFile))
	c, err := ch.pc.spawn(v, dir, args, true)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(ch.cfg.StartTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, chaosCallTimeout)
		_, err := ch.clients[v].ChainHead(cctx)
		cancel()
		if err == nil {
			return ch.pc.adopt(v, c)
		}
		select {
		case <-c.done:
			return fmt.Errorf("exited during start-up (%v); log %s:\n%s", c.waitErr, c.logPath, logTail(c.logPath))
		case <-ctx.Done():
			ch.pc.killStarting(c)
			return ctx.Err()
		case <-time.After(chaosStartPoll):
		}
		if time.Now().After(deadline) {
			ch.pc.killStarting(c)
			return fmt.Errorf("did not serve RPC within %v; log %s:\n%s", ch.cfg.StartTimeout, c.logPath, logTail(c.logPath))
		}
	}
}

// clusterHead returns the highest head height of the nodes other than v
// that answer.
func (ch *chaosRun) clusterHead(ctx context.Context, v int) uint64 {
	ctx, cancel := context.WithTimeout(ctx, chaosCallTimeout)
	defer cancel()
	heights := make([]uint64, len(ch.clients))
	_ = forEachNode(len(ch.clients), func(i int) error {
		if i == v || ch.isStopped(i) {
			return nil
		}
		if h, err := ch.clients[i].ChainHead(ctx); err == nil {
			heights[i] = h.Height
		}
		return nil
	})
	var top uint64
	for _, h := range heights {
		top = max(top, h)
	}
	return top
}

// listenAddr returns node v's loopback TCP listen multiaddr (without its
// /p2p part); "" when it cannot tell.
func (ch *chaosRun) listenAddr(ctx context.Context, v int) string {
	ctx, cancel := context.WithTimeout(ctx, chaosCallTimeout)
	defer cancel()
	info, err := ch.clients[v].NodeInfo(ctx)
	if err != nil {
		log.Warnf("chaos: node %d node_info: %v (it restarts on a new TCP port)", v, err)
		return ""
	}
	for _, a := range info.ListenAddrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			a, _, _ = strings.Cut(a, "/p2p/")
			return a
		}
	}
	return ""
}

// snapshot reads, before node v is killed, what dies with its memory:
// its first-seen times of the txs and blocks created during its current
// life (kept in savedTx, savedBlock), and its relay counters (returned,
// with false when unreadable).
func (ch *chaosRun) snapshot(ctx context.Context, v int) (stats Stats, ok bool) {
	ctx, cancel := context.WithTimeout(ctx, chaosCallTimeout)
	defer cancel()
	cl := ch.clients[v]
	raw, err := cl.Stats(ctx)
	if err == nil {
		stats, err = ParseStats(raw)
	}
	if err != nil {
		log.Warnf("chaos: node %d measure_stats before the kill: %v (that life's counters are lost)", v, err)
	}
	ok = err == nil

	var life int64 // items created before the life began were replayed or synced into it
	if !ch.lifeStart[v].IsZero() {
		life = ch.lifeStart[v].UnixMicro()
	}
	var txIDs, blockIDs []chain.Hash
	for _, tx := range ch.w.recentTxs(time.Now(), math.MaxInt) {
		if _, ok := ch.savedTx[v][tx.ID]; !ok && tx.SentUs >= life {
			txIDs = append(txIDs, tx.ID)
		}
	}
	if head, err := cl.ChainHead(ctx); err == nil {
		for h := ch.snapHeight[v] + 1; h <= head.Height; h++ {
			b, err := cl.BlockByHeight(ctx, h)
			if err != nil {
				break
			}
			if b.Header.TimeMs*1000 >= life {
				blockIDs = append(blockIDs, b.ID)
			}
			ch.snapHeight[v] = h
		}
	}
	fs, err := cl.FirstSeenTimes(ctx, txIDs, blockIDs)
	if err != nil {
		log.Warnf("chaos: node %d measure_firstSeen before the kill: %v (its times of this life are lost)", v, err)
		return stats, ok
	}
	for id, t := range fs.Txs {
		ch.savedTx[v][id] = t
	}
	for id, t := range fs.Blocks {
		ch.savedBlock[v][id] = t
	}
	return stats, ok
}

// mergeSaved adds the first-seen times saved from earlier lives to the
// collector (which then does not ask for them again). Call after done.
func (ch *chaosRun) mergeSaved(coll *collector) {
	for i := range ch.clients {
		for id, t := range ch.savedTx[i] {
			if _, ok := coll.txSeen[i][id]; !ok {
				coll.txSeen[i][id] = t
			}
		}
		for id, t := range ch.savedBlock[i] {
			if _, ok := coll.blockSeen[i][id]; !ok {
				coll.blockSeen[i][id] = t
			}
		}
	}
}

// pollHeld marks, at each restarted node, the items created before its
// final life that it holds but has no first-seen time for (it had them
// before the kill): blocks it stores (chain_blockByID) and txs in its
// pool or chain (tx_get). The mark is the life's start time, which
// Analyze reads as "held, no latency". Call during settle, after
// pollMissing.
func (ch *chaosRun) pollHeld(ctx context.Context, coll *collector, txs []TxObs) error {
	return forEachNode(len(ch.clients), func(i int) error {
		if ch.lifeStart[i].IsZero() || ch.stopped[i] {
			return nil
		}
		life := ch.lifeStart[i].UnixMicro()
		cl := ch.clients[i]
		budget := chaosHeldQueries
		for _, b := range coll.blocks {
			if b.Height <= ch.fromHeight || coll.originUs(&b) >= life {
				continue
			}
			if _, ok := coll.blockSeen[i][b.ID]; ok {
				continue
			}
			if budget--; budget < 0 {
				return nil
			}
			var got *rpcclient.BlockSummary
			if err := cl.Call(ctx, "chain_blockByID", []any{b.ID, false}, &got); err != nil {
				return fmt.Errorf("node %d chain_blockByID: %w", i, err)
			}
			if got != nil && got.ID == b.ID {
				coll.blockSeen[i][b.ID] = life
			}
		}
		txBlock := make(map[chain.Hash]chain.Hash)
		for _, b := range coll.blocks {
			for _, id := range b.Txs {
				txBlock[id] = b.ID
			}
		}
		for _, tx := range txs {
			if tx.SentUs >= life {
				continue
			}
			if _, ok := coll.txSeen[i][tx.ID]; ok {
				continue
			}
			if blk, ok := txBlock[tx.ID]; ok {
				if _, ok := coll.blockSeen[i][blk]; ok {
					continue
				}
			}
			if budget--; budget < 0 {
				return nil
			}
			st, err := cl.GetTx(ctx, tx.ID)
			if err != nil {
				return fmt.Errorf("node %d tx_get: %w", i, err)
			}
			if st.Status == "pending" || st.Status == "included" {
				coll.txSeen[i][tx.ID] = life
			}
		}
		return nil
	})
}

// statsDeltas returns each node's counters over the stats window, the
// lives before its kills included. Call after done.
func (ch *chaosRun) statsDeltas(end []Stats) []Stats {
	out := make([]Stats, len(end))
	for i := range end {
		out[i] = addStats(ch.statsCarry[i], end[i].Sub(ch.statsBase[i]))
	}
	return out
}

// lifeStartUs returns each node's final life's start (Unix µs; 0: never
// restarted). Call after done.
func (ch *chaosRun) lifeStartUs() []int64 {
	out := make([]int64, len(ch.lifeStart))
	for i, t := range ch.lifeStart {
		if !t.IsZero() {
			out[i] = t.UnixMicro()
		}
	}
	return out
}

// downAtEnd returns which nodes did not come back. Call after done.
func (ch *chaosRun) downAtEnd() []bool {
	return append([]bool(nil), ch.stopped...)
}

// report summarises the kills and restarts (Analyze adds the held pairs).
// Call after done.
func (ch *chaosRun) report() *ChaosReport {
	r := &ChaosReport{
		Churn:        ch.cfg.Churn,
		PauseMs:      ms(ch.cfg.ChaosPause),
		SendFailures: ch.w.rerouted.Load(),
		DownAtEnd:    []int{},
		PerRestart:   append([]RestartReport{}, ch.restarts...),
	}
	if ch.cfg.Chaos {
		r.EveryMs = ms(ch.cfg.ChaosEvery)
	}
	slices.SortStableFunc(r.PerRestart, func(a, b RestartReport) int { return cmp.Compare(a.KilledAtMs, b.KilledAtMs) })
	var ready, up []float64
	for _, rr := range ch.restarts {
		r.Kills++
		if rr.RPCReadyMs != nil {
			r.Restarts++
			ready = append(ready, *rr.RPCReadyMs)
		}
		if rr.CatchUpMs != nil {
			r.CaughtUp++
			up = append(up, *rr.CatchUpMs)
		}
	}
	r.RPCReadyMs = Summarize(ready)
	r.CatchUpMs = Summarize(up)
	for i, s := range ch.stopped {
		if s {
			r.DownAtEnd = append(r.DownAtEnd, i)
		}
	}
	return r
}

// chaosErrors lists the restarts that went wrong, for the report's
// errors.
func chaosErrors(c *ChaosReport) []string {
	var errs []string
	for _, rr := range c.PerRestart {
		if rr.Error != "" {
			errs = append(errs, fmt.Sprintf("chaos: node %d, killed %.1f s into the workload: %s", rr.Node, rr.KilledAtMs/1000, rr.Error))
		}
	}
	if len(c.DownAtEnd) > 0 {
		errs = append(errs, fmt.Sprintf("chaos: nodes %v were down at the end; coverage and tips are judged without them", c.DownAtEnd))
	}
	return errs
}

// kill SIGKILLs node i's process group and waits for it to exit.
func (pc *procCluster) kill(i int) (*child, error) {
	pc.mu.Lock()
	c := pc.children[i]
	closing := pc.closing
	if !closing {
		c.expectExit = true
	}
	pc.mu.Unlock()
	if closing {
		return nil, errors.New("the testnet is stopping")
	}
	select {
	case <-c.done:
		return nil, fmt.Errorf("node %d had already exited", i)
	default:
	}
	if err := signalChild(c.cmd, syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("kill node %d: %w", i, err)
	}
	<-c.done
	return c, nil
}

// adopt makes c, a restarted node i that serves RPC, the cluster's node
// i: Close stops it, and its exits are failures of the run.
func (pc *procCluster) adopt(i int, c *child) error {
	pc.mu.Lock()
	closing := pc.closing
	if !closing {
		pc.children[i] = c
		c.expectExit = false
	}
	pc.mu.Unlock()
	if closing {
		pc.killStarting(c)
		return errors.New("the testnet is stopping")
	}
	select {
	case <-c.done:
		return fmt.Errorf("exited right after start-up (%v)", c.waitErr)
	default:
	}
	return nil
}

// killStarting SIGKILLs a restarted process the cluster never adopted.
func (pc *procCluster) killStarting(c *child) {
	_ = signalChild(c.cmd, syscall.SIGKILL)
	<-c.done
}

// setFlag returns a copy of args with the value after flag replaced.
func setFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == flag {
			out[i+1] = value
		}
	}
	return out
}

// addStats returns a + b, counter by counter.
func addStats(a, b Stats) Stats {
	return Stats{
		BytesIn:          a.BytesIn + b.BytesIn,
		BytesOut:         a.BytesOut + b.BytesOut,
		AnnounceBytesIn:  a.AnnounceBytesIn + b.AnnounceBytesIn,
		BodyBytesIn:      a.BodyBytesIn + b.BodyBytesIn,
		ReconcileBytesIn: a.ReconcileBytesIn + b.ReconcileBytesIn,
		OverheadBytesIn:  a.OverheadBytesIn + b.OverheadBytesIn,
		BlockBytesIn:     a.BlockBytesIn + b.BlockBytesIn,
		TxAnnounceIn:     a.TxAnnounceIn + b.TxAnnounceIn,
		TxBodyIn:         a.TxBodyIn + b.TxBodyIn,
		TxAnnounceWireIn: a.TxAnnounceWireIn + b.TxAnnounceWireIn,
		BodiesReceived:   a.BodiesReceived + b.BodiesReceived,
		DuplicateBodies:  a.DuplicateBodies + b.DuplicateBodies,
		BlockTxnNeeded:   a.BlockTxnNeeded + b.BlockTxnNeeded,
		BlockTxnFromPool: a.BlockTxnFromPool + b.BlockTxnFromPool,
	}
}

// waitUntil sleeps until t; false when ctx ended first.
func waitUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// printChaos writes the chaos line of the text report.
func printChaos(w io.Writer, c *ChaosReport) {
	if c == nil {
		return
	}
	how := fmt.Sprintf("every %.1f s", c.EveryMs/1000)
	if c.Churn > 0 {
		how = fmt.Sprintf("churn %.0f%% of the nodes", 100*c.Churn)
	}
	fmt.Fprintf(w, "chaos: %d kills (%s, down %.1f s), %d restarts, %d caught up; RPC back p50 %.0f max %.0f ms; catch-up p50 %.0f p90 %.0f max %.0f ms; %d tx_send calls failed on a down node (re-sent elsewhere); %d (item, node) pairs held across a restart (reached, no latency)",
		c.Kills, how, c.PauseMs/1000, c.Restarts, c.CaughtUp, c.RPCReadyMs.P50, c.RPCReadyMs.Max,
		c.CatchUpMs.P50, c.CatchUpMs.P90, c.CatchUpMs.Max, c.SendFailures, c.HeldAfterRestart)
	if len(c.DownAtEnd) > 0 {
		fmt.Fprintf(w, "; DOWN at the end: nodes %v", c.DownAtEnd)
	}
	fmt.Fprintln(w)
}
