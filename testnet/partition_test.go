package testnet

import (
	"slices"
	"testing"
	"time"
)

// TestPartitionSide: the cut-off side is round(fraction*n) nodes, never
// none or all, and follows the seed.
func TestPartitionSide(t *testing.T) {
	for _, tc := range []struct {
		n    int
		f    float64
		want int
	}{{200, 0.3, 60}, {10, 0.01, 1}, {10, 0.99, 9}, {2, 0.5, 1}} {
		side := partitionSide(tc.n, tc.f, "seed")
		if got := countTrue(side); got != tc.want {
			t.Errorf("n %d fraction %v: %d nodes, want %d", tc.n, tc.f, got, tc.want)
		}
	}
	a, b := partitionSide(200, 0.3, "x"), partitionSide(200, 0.3, "x")
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different sides")
		}
	}
}

// TestPartitionReport: only txs accepted while the partition lasted
// count, and each is measured from the heal to its last node.
func TestPartitionReport(t *testing.T) {
	start := time.UnixMicro(10_000_000)
	p := &partitionRun{side: []bool{true, false, false}, start: start, healed: start.Add(30 * time.Second), cut: 2}
	us := func(d time.Duration) int64 { return start.Add(d).UnixMicro() }
	txs := []ItemResult{
		{OriginUs: us(-time.Second), SeenUs: []int64{us(-time.Second), 1, 1}},                                           // before: not counted
		{OriginUs: us(time.Second), SeenUs: []int64{us(time.Second), us(2 * time.Second), us(31 * time.Second)}},        // 1 s after the heal
		{OriginUs: us(2 * time.Second), SeenUs: []int64{us(2 * time.Second), us(3 * time.Second), 0}},                   // never reached all
		{OriginUs: us(3 * time.Second), SeenUs: []int64{us(3 * time.Second), us(4 * time.Second), us(5 * time.Second)}}, // before the heal: 0
	}
	cfg := &Config{PartitionAt: 5 * time.Second, PartitionFor: 30 * time.Second}
	r := p.report(cfg, txs)
	if r.TxsDuring != 3 || r.ReachedAll != 2 || r.HealToAllMs.Max != 1000 || r.Nodes != 1 || r.LinksCut != 2 {
		t.Fatalf("report %+v", r)
	}
}

// TestChurnSchedule: churn crashes round(fraction*n) distinct
// non-authority nodes (at most all of them), each once, at times within
// the first churnWindow of the workload, in order, the same for a seed.
func TestChurnSchedule(t *testing.T) {
	for _, tc := range []struct {
		nodes, authorities int
		churn              float64
		want               int
	}{{200, 4, 0.1, 20}, {10, 4, 0.5, 5}, {10, 4, 0.9, 6}, {5, 1, 0.05, 0}} {
		cfg := &Config{Nodes: tc.nodes, Authorities: tc.authorities, Churn: tc.churn, Duration: time.Minute, Seed: "s"}
		ev := churnSchedule(cfg)
		if len(ev) != tc.want {
			t.Fatalf("%+v: %d crashes, want %d", tc, len(ev), tc.want)
		}
		seen := map[int]bool{}
		for i, e := range ev {
			if e.node < tc.authorities || e.node >= tc.nodes || seen[e.node] {
				t.Fatalf("%+v: crash %d of node %d", tc, i, e.node)
			}
			seen[e.node] = true
			if e.at < 0 || e.at > time.Duration(float64(cfg.Duration)*churnWindow) || (i > 0 && e.at < ev[i-1].at) {
				t.Fatalf("%+v: crash %d at %v", tc, i, e.at)
			}
		}
		if again := churnSchedule(cfg); !slices.Equal(again, ev) {
			t.Fatal("same seed, different schedule")
		}
	}
}
