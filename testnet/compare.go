package testnet

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
)

// CompareRun is one configuration --compare runs.
type CompareRun struct {
	// Name labels the run in the table and names its output directory.
	Name string
	// BlockRelay and TxRelay are the nodes' modes.
	BlockRelay, TxRelay string
}

// CompareRuns are the runs of --compare, the one the others are divided by
// first: rumor's default, its tx inventory per link, its other block modes
// with announced txs, and plain GossipSub (whole txs and whole blocks
// pushed), which is what a relay built on GossipSub alone would do.
var CompareRuns = []CompareRun{
	{"compact", "compact", "announce"},
	{"link", "compact", "link"},
	{"pull", "pull", "announce"},
	{"push", "push", "announce"},
	{"gossipsub", "push", "push"},
}

// Compare runs the same workload once per CompareRuns entry, each on a
// fresh network, with outputs in <out>/<name>/. It returns the results in
// CompareRuns order. A run that could not be carried out stops the
// comparison.
func Compare(ctx context.Context, cfg Config) ([]*Result, error) {
	base := cfg.Out
	if base == "" {
		d, err := prepareOut("")
		if err != nil {
			return nil, err
		}
		base = d
	}
	var results []*Result
	for _, run := range CompareRuns {
		c := cfg
		c.BlockRelay, c.TxRelay = run.BlockRelay, run.TxRelay
		c.Out = filepath.Join(base, run.Name)
		log.Infof("compare: running %s", run.Name)
		r, err := Run(ctx, c)
		if err != nil {
			return results, fmt.Errorf("%s run: %w", run.Name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// ratio formats v/base, "n/a" when base is zero.
func ratio(v, base float64) string {
	if base == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v/base)
}

// PrintCompare writes one table of each mode's figures and their ratios to
// the first (compact) run: accepted tx/s, block and tx time to all (p50,
// p99), median bytes in and out per node, median block bytes per node
// (what blocks cost to receive), duplicates per body. With
// --tx-rate 0 the modes carry different loads; compare bytes with the
// accepted tx/s beside them.
func PrintCompare(w io.Writer, results []*Result) {
	if len(results) == 0 {
		return
	}
	b := results[0].Report
	fmt.Fprintf(w, "relay comparison (%d nodes, %s mode; ratios are run / %s)\n", b.Nodes, b.Mode, compareName(b))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\taccepted tx/s\tblock to all p50 ms\tratio\tp99 ms\tratio\ttx to all p50 ms\tratio\tbytes in/node\tratio\tbytes out/node\tratio\tblock bytes/node\tratio\tdup/body\tcoverage\t")
	for _, res := range results {
		r := res.Report
		cov := "full"
		if !r.OK() {
			cov = "INCOMPLETE"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%s\t%.1f\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%s\t\n", compareName(r), r.Txs.AcceptedPerS,
			r.Blocks.TimeToAllMs.P50, ratio(r.Blocks.TimeToAllMs.P50, b.Blocks.TimeToAllMs.P50),
			r.Blocks.TimeToAllMs.P99, ratio(r.Blocks.TimeToAllMs.P99, b.Blocks.TimeToAllMs.P99),
			r.Txs.TimeToAllMs.P50, ratio(r.Txs.TimeToAllMs.P50, b.Txs.TimeToAllMs.P50),
			humanBytes(r.Bytes.PerNodeInMedian), ratio(r.Bytes.PerNodeInMedian, b.Bytes.PerNodeInMedian),
			humanBytes(r.Bytes.PerNodeOutMedian), ratio(r.Bytes.PerNodeOutMedian, b.Bytes.PerNodeOutMedian),
			humanBytes(r.Bytes.BlockPerNodeMedian), ratio(r.Bytes.BlockPerNodeMedian, b.Bytes.BlockPerNodeMedian),
			r.DuplicatesPerBody, cov)
	}
	tw.Flush()
}

// compareName is the CompareRuns name of a report's modes.
func compareName(r *Report) string {
	for _, run := range CompareRuns {
		if run.BlockRelay == r.BlockRelay && (run.TxRelay == r.TxRelay || r.TxRelay == "" && run.TxRelay == "announce") {
			return run.Name
		}
	}
	return r.BlockRelay + "/" + r.TxRelay
}
