package testnet

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrintCompareRatios(t *testing.T) {
	mk := func(mode string, p50, in float64) *Result {
		r := Analyze(sampleObs()).Report
		r.BlockRelay = mode
		r.Blocks.TimeToAllMs.P50 = p50
		r.Bytes.PerNodeInMedian = in
		return &Result{Report: r}
	}
	var buf bytes.Buffer
	gossipsub := mk("push", 40, 4000)
	gossipsub.Report.TxRelay = "push"
	PrintCompare(&buf, []*Result{mk("compact", 100, 1000), mk("pull", 150, 2500), mk("push", 50, 0), gossipsub})
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("want title, header and 4 rows:\n%s", out)
	}
	if row := strings.Fields(lines[5]); row[0] != "gossipsub" || row[3] != "0.40" || !strings.Contains(lines[5], "4.00") {
		t.Errorf("plain GossipSub row %q", lines[5])
	}
	pull := strings.Fields(lines[3])
	// mode, tx/s, block p50, ratio, ...
	if pull[0] != "pull" || pull[2] != "150.0" || pull[3] != "1.50" {
		t.Fatalf("pull row %q", lines[3])
	}
	if !strings.Contains(lines[3], "2.50") {
		t.Errorf("bytes ratio missing: %q", lines[3])
	}
	if !strings.Contains(lines[4], "0.50") || !strings.Contains(lines[4], "INCOMPLETE") {
		t.Errorf("push row %q", lines[4])
	}
	link := mk("compact", 100, 500)
	link.Report.TxRelay = "link"
	if got := compareName(link.Report); got != "link" {
		t.Errorf("compact blocks with link-mode txs named %q, want link", got)
	}
	PrintCompare(&buf, nil) // no results: no output, no panic
}
