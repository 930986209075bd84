package testnet

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// chaosObs is a 4-node process run with chaos: node 0 is the authority;
// node 2 restarted at life (its final life), and its saved times from the
// earlier life are below life; node 3 did not come back (down at the end).
//
//	txA origin 1 at base:        node 0 +10 ms, node 2 +20 ms (saved: a latency)
//	txB origin 1 at base+100 ms: node 0 +10 ms, node 2 only held (marked at life)
//	txC origin 2 at base+200 ms: node 2's time is its journal replay (after life);
//	                             nodes 0, 1 +30 ms after the client's time
//	txD origin 1 at life+100 ms: node 0 +10 ms, node 2 +50 ms (its final life: a latency)
//	b0 by node 0 at base+300 ms: node 1 +20 ms, node 2 synced after life (held)
func chaosObs() (*Observations, int64) {
	const base = int64(1_700_000_000_000_000)
	const life = base + 500_000
	txA, txB, txC, txD, b0 := h(1), h(2), h(3), h(4), h(10)
	return &Observations{
		Nodes:      4,
		Mode:       ModeProcess,
		BlockRelay: "compact",
		Duration:   10 * time.Second,
		Submitted:  5,
		Txs: []TxObs{
			{ID: txA, Origin: 1, SentUs: base},
			{ID: txB, Origin: 1, SentUs: base + 100_000},
			{ID: txC, Origin: 2, SentUs: base + 200_000},
			{ID: txD, Origin: 1, SentUs: life + 100_000},
		},
		Blocks: []BlockObs{{ID: b0, Height: 1, Origin: 0, HeaderUs: base + 300_000, InWindow: true}},
		TxSeen: []map[chain.Hash]int64{
			{txA: base + 10_000, txB: base + 110_000, txC: base + 230_000, txD: life + 110_000},
			{txA: base, txB: base + 100_000, txC: base + 230_000, txD: life + 100_000},
			{txA: base + 20_000, txB: life, txC: life + 100_000, txD: life + 150_000},
			{},
		},
		BlockSeen: []map[chain.Hash]int64{
			{b0: base + 300_000},
			{b0: base + 320_000},
			{b0: life + 50_000},
			{},
		},
		Heads:       []HeadObs{{Height: 1, ID: b0}, {Height: 1, ID: b0}, {Height: 1, ID: b0}, {}},
		LifeStartUs: []int64{0, 0, life, 0},
		Down:        []bool{false, false, false, true},
		Chaos: &ChaosReport{Kills: 2, Restarts: 1, CaughtUp: 1, DownAtEnd: []int{3}, PerRestart: []RestartReport{
			{Node: 2, KilledAtMs: 400, Attempts: 1, RPCReadyMs: ptr(100.0), CatchUpMs: ptr(150.0)},
			{Node: 3, KilledAtMs: 900, Attempts: 3, Error: "restart failed after 3 attempts: boom"},
		}},
	}, life
}

func ptr[T any](v T) *T { return &v }

// TestChaosAnalyzeJudgesUpNodesAndDropsLostTimes: coverage counts the
// nodes up at the end; a restarted node's times from its final life for
// items older than that life count as reached, not as latencies; saved
// times of its earlier life are latencies; a tx whose RPC node restarted
// falls back to the client's time without an error; and a failed restart
// fails the run even with full coverage.
func TestChaosAnalyzeJudgesUpNodesAndDropsLostTimes(t *testing.T) {
	o, _ := chaosObs()
	a := Analyze(o)
	r := a.Report
	if r.Txs.ReachedAll != 4 || r.Blocks.ReachedAll != 1 || !r.Heads.SameTip {
		t.Fatalf("coverage at the up nodes: txs %d/4 blocks %d/1 same tip %v; errors %q",
			r.Txs.ReachedAll, r.Blocks.ReachedAll, r.Heads.SameTip, r.Errors)
	}
	// Held pairs: txB and b0 at node 2. txC at node 2 is its origin.
	if r.Chaos == nil || r.Chaos.HeldAfterRestart != 2 {
		t.Fatalf("chaos %+v, want 2 held pairs", r.Chaos)
	}
	want := map[int][]bool{0: {false, false, false, false}, 1: {false, false, true, false}, 2: {false, false, false, false}, 3: {false, false, false, false}}
	for i, it := range a.Txs {
		if !slices.Equal(it.AfterRestart, want[i]) {
			t.Errorf("tx %d after_restart %v, want %v", i, it.AfterRestart, want[i])
		}
	}
	if !a.Blocks[0].AfterRestart[2] {
		t.Error("b0 at node 2 (synced after its restart) must be held, not a latency")
	}
	// Times to all: txA 20 (node 2's saved time counts), txB 10 (node 2
	// held), txC 30 (from the client's time), txD 50 (node 2's final life).
	var t2a []float64
	for i := range a.Txs {
		t2a = append(t2a, a.Txs[i].TimeToAllMs())
	}
	if !slices.Equal(t2a, []float64{20, 10, 30, 50}) {
		t.Errorf("tx times to all %v, want [20 10 30 50]", t2a)
	}
	if a.Txs[2].OriginUs != o.Txs[2].SentUs {
		t.Errorf("txC origin %d: its RPC node's time is the journal replay; want the client's %d", a.Txs[2].OriginUs, o.Txs[2].SentUs)
	}
	if r.Blocks.TimeToAllMs.Max != 20 {
		t.Errorf("block time to all %v, want 20 (node 2 held)", r.Blocks.TimeToAllMs)
	}
	joined := strings.Join(r.Errors, "\n")
	if strings.Contains(joined, "no first-seen time at their RPC node") {
		t.Errorf("a replayed tx is no missing origin time: %q", r.Errors)
	}
	if !strings.Contains(joined, "restart failed") || !strings.Contains(joined, "down at the end") {
		t.Errorf("errors must name the failed restart: %q", r.Errors)
	}
	if r.OK() {
		t.Fatal("OK with a killed node that did not come back")
	}

	// The same run with every node back and caught up passes.
	o.Down = nil
	o.Heads[3] = o.Heads[0]
	o.TxSeen[3] = o.TxSeen[0]
	o.BlockSeen[3] = o.BlockSeen[0]
	o.Chaos = &ChaosReport{Kills: 1, Restarts: 1, CaughtUp: 1, DownAtEnd: []int{}}
	if r := Analyze(o).Report; !r.OK() {
		t.Fatalf("not OK: %q", r.Errors)
	}
	// ... and fails when a restarted node did not catch up.
	o.Chaos.CaughtUp = 0
	if Analyze(o).Report.OK() {
		t.Fatal("OK with a restart that did not catch up")
	}
}

// TestChaosMissingAtUpNodeFails: a tx an up node lacks fails the run,
// restart or not.
func TestChaosMissingAtUpNodeFails(t *testing.T) {
	o, _ := chaosObs()
	delete(o.TxSeen[2], h(2)) // node 2 no longer holds txB
	r := Analyze(o).Report
	if r.Txs.ReachedAll != 3 {
		t.Fatalf("txs reached all %d, want 3", r.Txs.ReachedAll)
	}
	if !strings.Contains(strings.Join(r.Errors, "\n"), "reached 2/3 nodes; missing at nodes [2]") {
		t.Errorf("errors %q", r.Errors)
	}
}

// TestChaosCSVMarksHeldPairs: a held pair has no time and no latency in
// first_seen.csv, and after_restart says why.
func TestChaosCSVMarksHeldPairs(t *testing.T) {
	o, _ := chaosObs()
	dir := t.TempDir()
	if err := writeCSV(filepath.Join(dir, "fs.csv"), Analyze(o)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "fs.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	if !strings.HasSuffix(lines[0], ",via_block,after_restart") {
		t.Fatalf("header %q", lines[0])
	}
	row := "tx," + h(2).String() + ",,1,2,,,false,true"
	if !slices.Contains(lines, row) {
		t.Errorf("no row %q in\n%s", row, b)
	}
}

// TestChaosConfig: chaos is refused in sim mode and without two
// non-authority nodes.
func TestChaosConfig(t *testing.T) {
	c := DefaultConfig()
	c.Chaos = true
	if err := c.Validate(); err != nil {
		t.Fatalf("default chaos config: %v", err)
	}
	for name, f := range map[string]func(*Config){
		"sim":          func(c *Config) { c.Mode = ModeSim },
		"one victim":   func(c *Config) { c.Nodes, c.Authorities = 3, 2 },
		"no interval":  func(c *Config) { c.ChaosEvery = 0 },
		"negative gap": func(c *Config) { c.ChaosPause = -time.Second },
	} {
		c := DefaultConfig()
		c.Chaos = true
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "sim" && !strings.Contains(err.Error(), "chaos needs process mode") {
			t.Errorf("sim: unclear error %v", err)
		}
	}
}

// TestChaosVictimsAndReroute: victims are never authorities, one
// non-authority always stays up, and senders never move to a down node.
func TestChaosVictimsAndReroute(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Authorities = 6, 2
	ch := &chaosRun{
		cfg:     &cfg,
		clients: make([]*rpcclient.Client, cfg.Nodes),
		victims: rand.New(rand.NewPCG(1, 2)),
		pick:    rand.New(rand.NewPCG(3, 4)),
		down:    make([]bool, cfg.Nodes),
		stopped: make([]bool, cfg.Nodes),
	}
	seen := map[int]bool{}
	for range 200 {
		v, ok := ch.victim()
		if !ok || v < cfg.Authorities {
			t.Fatalf("victim %d ok %v", v, ok)
		}
		seen[v] = true
	}
	if len(seen) != cfg.Nodes-cfg.Authorities {
		t.Errorf("victims drawn %v, want every non-authority", seen)
	}
	ch.stopped[2], ch.stopped[3], ch.stopped[4] = true, true, true
	if v, ok := ch.victim(); ok {
		t.Fatalf("killed node %d, the last non-authority up", v)
	}

	ch.setDown(1, true)
	ch.setDown(4, true)
	for range 200 {
		if to := ch.reroute(0); to == 0 || to == 1 || to == 4 {
			t.Fatalf("rerouted to %d (down or the failed node)", to)
		}
	}
	for i := range ch.down {
		ch.setDown(i, i != 3)
	}
	if to := ch.reroute(3); to != 3 {
		t.Fatalf("no other node up: rerouted to %d, want 3 itself", to)
	}
}

func TestSetFlag(t *testing.T) {
	args := []string{"node", "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc-addr", "127.0.0.1:0", "--mdns=false"}
	got := setFlag(setFlag(args, "--rpc-addr", "127.0.0.1:8545"), "--listen", "/ip4/127.0.0.1/tcp/4141")
	want := []string{"node", "--listen", "/ip4/127.0.0.1/tcp/4141", "--rpc-addr", "127.0.0.1:8545", "--mdns=false"}
	if !slices.Equal(got, want) || args[2] != "/ip4/127.0.0.1/tcp/0" {
		t.Fatalf("got %v (args now %v)", got, args)
	}
}

// TestChaosReportKeys pins report.json's chaos keys, and the text line.
func TestChaosReportKeys(t *testing.T) {
	o, _ := chaosObs()
	r := Analyze(o).Report
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Chaos map[string]json.RawMessage `json:"chaos"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"every_ms", "pause_ms", "kills", "restarts", "caught_up", "rpc_ready_ms", "catch_up_ms",
		"send_failures", "held_after_restart", "down_at_end", "per_restart"} {
		if _, ok := m.Chaos[k]; !ok {
			t.Errorf("chaos has no %q: %s", k, b)
		}
	}
	var buf bytes.Buffer
	PrintTable(&buf, r, "")
	if !strings.Contains(buf.String(), "chaos: 2 kills") || !strings.Contains(buf.String(), "DOWN at the end: nodes [3]") {
		t.Errorf("text report:\n%s", buf.String())
	}
	// Without chaos the key is absent (TestReportSchemaKeys pins the rest).
	b, _ = json.Marshal(Analyze(sampleObs()).Report)
	if strings.Contains(string(b), `"chaos"`) {
		t.Error("chaos key present without chaos")
	}
}

// TestChurnConfig: churn is a sim-mode fraction in [0, 1) that crashes at
// least one non-authority node, and is not combined with a partition.
func TestChurnConfig(t *testing.T) {
	c := DefaultConfig()
	c.Mode, c.Churn = ModeSim, 0.2
	if err := c.Validate(); err != nil {
		t.Fatalf("churn config: %v", err)
	}
	for name, f := range map[string]func(*Config){
		"process":        func(c *Config) { c.Mode = ModeProcess },
		"one":            func(c *Config) { c.Churn = 1 },
		"negative":       func(c *Config) { c.Churn = -0.1 },
		"with partition": func(c *Config) { c.Partition = 0.3 },
		"no victim":      func(c *Config) { c.Nodes, c.Authorities, c.Churn = 4, 4, 0.5 },
		"rounds to none": func(c *Config) { c.Churn = 0.01 },
		"negative pause": func(c *Config) { c.ChaosPause = -time.Second },
	} {
		c := DefaultConfig()
		c.Mode, c.Churn = ModeSim, 0.2
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
