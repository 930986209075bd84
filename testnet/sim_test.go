package testnet

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// TestSimModeSmall runs a 5-node sim testnet end to end in virtual time:
// mesh, workload, settle, collection, report and output files, and leaves
// no goroutine.
func TestSimModeSmall(t *testing.T) {
	skipBubbleUnderRace(t)
	// Every node, stream pump and workload goroutine ends with Run.
	defer goleak.VerifyNone(t)
	synctest.Test(t, testSimModeSmall)
}

// skipBubbleUnderRace skips a test that runs libp2p hosts in a synctest
// bubble when the binary runs under the race detector. Go 1.26's race
// runtime crashes now and then (SIGSEGV in __tsan::SlotLock,
// golang/go#78156) when a bubble's timers fire from the root goroutine:
// about once in 30 runs of a 100-node network, and CI saw it once on the
// few small sims of this package. scripts/test.sh runs every such test
// again without -race (its "sim tests" step); the relay's own
// virtual-time tests keep the protocol code under the detector.
func skipBubbleUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("libp2p in a synctest bubble crashes the race runtime now and then (golang/go#78156); scripts/test.sh runs this without -race")
	}
}

// smallSimConfig is a virtual-time sim of n nodes on 5 ms links, 50 tx/s
// and 500 ms blocks for d, writing into a test directory.
func smallSimConfig(t *testing.T, n int, d time.Duration) Config {
	cfg := DefaultConfig()
	cfg.Mode = ModeSim
	cfg.Nodes = n
	cfg.Duration = d
	cfg.TxRate = 50
	cfg.BlockInterval = 500 * time.Millisecond
	cfg.Latency = 5 * time.Millisecond
	cfg.Accounts = 64
	cfg.Out = t.TempDir()
	cfg.VirtualTime = true
	return cfg
}

// runSim runs cfg with two minutes to finish and fails the test on error.
func runSim(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func testSimModeSmall(t *testing.T) {
	cfg := smallSimConfig(t, 5, 3*time.Second)
	res := runSim(t, cfg)
	r := res.Report
	if !r.OK() {
		t.Fatalf("coverage incomplete: %+v\nerrors: %q", r, r.Errors)
	}
	if r.Txs.Accepted < 100 || r.Blocks.Produced < 3 {
		t.Fatalf("too little measured: %d txs, %d blocks", r.Txs.Accepted, r.Blocks.Produced)
	}
	if !r.VirtualTime || r.CPUModel == nil || r.Seed != cfg.Seed || r.WallS <= 0 || r.PeakRSSBytes <= 0 {
		t.Fatalf("run metadata: virtual %v cpu %v seed %q wall %v rss %d", r.VirtualTime, r.CPUModel, r.Seed, r.WallS, r.PeakRSSBytes)
	}
	if r.FloorMs == nil || *r.FloorMs < 5 {
		t.Fatalf("floor %v, want at least one 5 ms hop", r.FloorMs)
	}
	if r.Bytes.PerNodeInMedian <= 0 || r.DuplicatesPerBody <= 0 {
		t.Errorf("no traffic counted: %+v dup %v", r.Bytes, r.DuplicatesPerBody)
	}
	for _, f := range []string{ReportFile, FirstSeenFile, CDFPlotFile, ArrivalPlotFile} {
		if fi, err := os.Stat(filepath.Join(res.Dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(res.Dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Txs.Accepted != r.Txs.Accepted {
		t.Fatalf("report.json does not round-trip: %v", err)
	}
}

// TestSimSelfCheck is the simulator's proof against theory: on a 100-node
// network with per-link latencies drawn from 20-80 ms and 100 Mbit/s
// nodes, a tiny message gossiped by plain GossipSub push reaches every
// node within 1.0-1.3x its mesh floor (median over probes; none below it),
// in fact within 1%. If it does not, the sim adds delay
// of its own and none of its figures can be trusted.
func TestSimSelfCheck(t *testing.T) {
	skipBubbleUnderRace(t)
	nodes := 100
	if testing.Short() {
		nodes = 30
	}
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Mode = ModeSim
		cfg.Nodes = nodes
		cfg.Authorities = 4
		cfg.Duration = time.Second
		cfg.TxRate = 5
		cfg.Latency = 20 * time.Millisecond
		cfg.LatencyMax = 80 * time.Millisecond
		cfg.Probe = 8
		cfg.Accounts = 16
		cfg.Out = t.TempDir()
		cfg.VirtualTime = true
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := res.Report.Probe
		if p == nil {
			t.Fatal("no probe report")
		}
		t.Logf("probe: %+v", *p)
		if !p.OK() {
			t.Fatalf("plain GossipSub push at %.3fx (%.3f-%.3fx) of the mesh floor %.1f ms, want 1.0-1.3x; %d/%d reached all, %d disturbed",
				p.RatioP50, p.RatioMin, p.RatioMax, p.FloorMs, p.ReachedAll, p.Messages, p.Disturbed)
		}
		// The bar above is the issue's; the simulator does better: each
		// probe lands within the serialization of its few hundred bytes.
		if p.RatioMax > 1.01 {
			t.Errorf("a probe took %.3fx its mesh floor: something in the sim or the node delays plain GossipSub", p.RatioMax)
		}
		// The floors are real paths: at least one 20 ms hop, and the mesh
		// floor is never below the connection-graph floor.
		r := res.Report
		if r.FloorMs == nil || r.FloorConnMs == nil || *r.FloorConnMs < 20 || *r.FloorMs < *r.FloorConnMs {
			t.Fatalf("floors: mesh %v conn %v", r.FloorMs, r.FloorConnMs)
		}
	})
}

// TestSimChurn runs a sim testnet with churn in virtual time: the drawn
// nodes crash once each (links cut, node and host closed) and restart on
// their memory data dirs; txs sent to a down node go elsewhere; every tx
// any node acknowledged, the crashed ones included, reaches every node,
// the nodes end on one tip, and each crash is reported with its restart
// and catch-up. No goroutine of a crashed life outlives the run.
func TestSimChurn(t *testing.T) {
	skipBubbleUnderRace(t)
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		cfg := smallSimConfig(t, 8, 8*time.Second)
		cfg.Churn = 0.3
		cfg.ChaosPause = time.Second
		res, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Report
		if !r.OK() {
			t.Fatalf("churn run not OK: errors %q", r.Errors)
		}
		c := r.Chaos
		if c == nil {
			t.Fatal("no chaos report")
		}
		want := churnVictims(&cfg) // 2 of 8
		if c.Kills != want || c.Restarts != want || c.CaughtUp != want || len(c.DownAtEnd) != 0 || c.Churn != cfg.Churn {
			t.Fatalf("chaos %+v, want %d kills, restarts and catch-ups", *c, want)
		}
		for _, rr := range c.PerRestart {
			if rr.Node < cfg.Authorities || rr.DownMs < ms(cfg.ChaosPause) || rr.KilledAtMs > ms(cfg.Duration)*churnWindow {
				t.Fatalf("restart %+v", rr)
			}
		}
		if c.HeldAfterRestart == 0 {
			t.Fatal("no item held across a restart: the restarted nodes lost their chain")
		}
		if r.Txs.Accepted < 300 {
			t.Fatalf("only %d txs accepted", r.Txs.Accepted)
		}
	})
}

// TestSimLinkMode runs the relay's link-mode tx inventory end to end on
// libp2p hosts (mocknet, virtual time; 25 ms links, so cut-through is
// on): every tx and block reaches every node, and the tx announcements
// with their framing cost a fraction of the bodies, where GossipSub
// announcements cost more than the bodies.
func TestSimLinkMode(t *testing.T) {
	skipBubbleUnderRace(t)
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		cfg := smallSimConfig(t, 10, 4*time.Second)
		cfg.Latency = 25 * time.Millisecond
		cfg.TxRelay = "link"
		r := runSim(t, cfg).Report
		if !r.OK() || r.TxRelay != "link" {
			t.Fatalf("tx relay %q, coverage: %+v\nerrors: %q", r.TxRelay, r.Txs, r.Errors)
		}
		if r.Txs.Accepted < 100 || r.Bytes.TxBodyBytes == 0 || r.Bytes.TxAnnounceWireBytes == 0 {
			t.Fatalf("too little measured: %d txs, bytes %+v", r.Txs.Accepted, r.Bytes)
		}
		// 8 bytes and about a byte of framing per id and link, against
		// 250-byte bodies: even every mesh link carrying every id once
		// would stay well under half the bodies.
		if share := r.Bytes.TxAnnounceShareEnveloped; share <= 0 || share > 0.4 {
			t.Fatalf("tx announcements with framing at %.0f%% of tx bodies", 100*share)
		}
	})
}
