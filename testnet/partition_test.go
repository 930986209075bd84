package testnet

import (
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
