package testnet

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Output file names inside the output directory.
const (
	ReportFile      = "report.json"
	FirstSeenFile   = "first_seen.csv"
	CDFPlotFile     = "cdf_time_to_all.png"
	ArrivalPlotFile = "block_arrival.png"
)

// maxArrivalCurves caps the block arrival plot: past ~100 curves the lines
// are indistinguishable; blocks are sampled evenly beyond that.
const maxArrivalCurves = 100

// WriteOutputs writes report.json, first_seen.csv and the plots to dir.
func WriteOutputs(dir string, a *Analysis) error {
	b, err := json.MarshalIndent(a.Report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ReportFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, FirstSeenFile), a); err != nil {
		return err
	}
	if err := plotCDF(filepath.Join(dir, CDFPlotFile), a); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := plotArrivals(filepath.Join(dir, ArrivalPlotFile), a); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}

// writeCSV writes one row per item per node:
// kind,id,height,origin_node,node,first_seen_unix_us,latency_ms,via_block,after_restart.
// first_seen_unix_us and latency_ms are empty when the node never saw it,
// and when after_restart: the node holds the item but restarted (chaos)
// after it was created, so it has no propagation time.
func writeCSV(path string, a *Analysis) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	w := csv.NewWriter(bw)
	_ = w.Write([]string{"kind", "id", "height", "origin_node", "node", "first_seen_unix_us", "latency_ms", "via_block", "after_restart"})
	rows := func(items []ItemResult) {
		for i := range items {
			it := &items[i]
			height := ""
			if it.Kind == "block" {
				height = strconv.FormatUint(it.Height, 10)
			}
			for n, t := range it.SeenUs {
				seen, lat := "", ""
				if l, ok := it.LatencyMs(n); ok {
					seen = strconv.FormatInt(t, 10)
					lat = strconv.FormatFloat(l, 'f', 3, 64)
				}
				_ = w.Write([]string{it.Kind, it.ID.String(), height, strconv.Itoa(it.Origin), strconv.Itoa(n),
					seen, lat, strconv.FormatBool(it.ViaBlock[n]), strconv.FormatBool(it.afterRestart(n))})
			}
		}
	}
	rows(a.Txs)
	rows(a.Blocks)
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cdf returns the empirical CDF of values as plot points.
func cdf(values []float64) plotter.XYs {
	s := slices.Clone(values)
	slices.Sort(s)
	pts := make(plotter.XYs, len(s))
	for i, v := range s {
		pts[i] = plotter.XY{X: v, Y: float64(i+1) / float64(len(s))}
	}
	return pts
}

func timesToAll(items []ItemResult) []float64 {
	var v []float64
	for i := range items {
		if items[i].ReachedAll() {
			v = append(v, items[i].TimeToAllMs())
		}
	}
	return v
}

// plotCDF draws the CDFs of tx and block time-to-all.
func plotCDF(path string, a *Analysis) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Time to reach all %d nodes (%s, %s)", a.Report.Nodes, a.Report.Mode, a.Report.BlockRelay)
	p.X.Label.Text = "ms after acceptance / production"
	p.Y.Label.Text = "fraction of items"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	for i, s := range []struct {
		name  string
		items []ItemResult
	}{{"txs", a.Txs}, {"blocks", a.Blocks}} {
		v := timesToAll(s.items)
		if len(v) == 0 {
			continue
		}
		l, err := plotter.NewLine(cdf(v))
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", s.name, len(v)), l)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// plotArrivals draws, for each block, the fraction of nodes holding it
// against time since it was produced.
func plotArrivals(path string, a *Analysis) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Block arrival (%d blocks, %d nodes, %s)", len(a.Blocks), a.Report.Nodes, a.Report.BlockRelay)
	p.X.Label.Text = "ms after production"
	p.Y.Label.Text = "fraction of nodes holding the block"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	step := max(1, (len(a.Blocks)+maxArrivalCurves-1)/maxArrivalCurves)
	for i := 0; i < len(a.Blocks); i += step {
		it := &a.Blocks[i]
		var lat []float64
		for n := range it.SeenUs {
			if l, ok := it.LatencyMs(n); ok {
				lat = append(lat, l)
			}
		}
		slices.Sort(lat)
		pts := make(plotter.XYs, 0, 2*len(lat))
		for k, l := range lat { // a step function: the count rises at each arrival
			pts = append(pts, plotter.XY{X: l, Y: float64(k) / float64(len(it.SeenUs))})
			pts = append(pts, plotter.XY{X: l, Y: float64(k+1) / float64(len(it.SeenUs))})
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i / step)
		p.Add(l)
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// PrintTable writes the human summary of a report.
func PrintTable(w io.Writer, r *Report, dir string) {
	fmt.Fprintf(w, "rumor testnet: %d nodes, %s mode, %s block relay, %s tx relay, %.1f s workload", r.Nodes, r.Mode, r.BlockRelay, r.TxRelay, r.DurationS)
	if r.Mode == ModeSim {
		fmt.Fprintf(w, ", %.0f ms link latency", r.LatencyMs)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcount\treached all\tto all p50\tp90\tp99\tmax\tarrival p50\tp99\t")
	fmt.Fprintf(tw, "txs\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", r.Txs.Accepted, r.Txs.ReachedAll,
		r.Txs.TimeToAllMs.P50, r.Txs.TimeToAllMs.P90, r.Txs.TimeToAllMs.P99, r.Txs.TimeToAllMs.Max, r.Txs.ArrivalMs.P50, r.Txs.ArrivalMs.P99)
	fmt.Fprintf(tw, "blocks\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", r.Blocks.Produced, r.Blocks.ReachedAll,
		r.Blocks.TimeToAllMs.P50, r.Blocks.TimeToAllMs.P90, r.Blocks.TimeToAllMs.P99, r.Blocks.TimeToAllMs.Max, r.Blocks.ArrivalMs.P50, r.Blocks.ArrivalMs.P99)
	tw.Flush()
	fmt.Fprintln(w, "(times in ms)")
	fmt.Fprintf(w, "throughput: %d submitted, %d accepted, %.1f accepted tx/s; %d still unconfirmed delivered at their node\n",
		r.Txs.Submitted, r.Txs.Accepted, r.Txs.AcceptedPerS, r.Txs.Unconfirmed)
	if c := r.CPU; c != nil {
		fmt.Fprintf(w, "cpu: nodes used %.1f s over the workload, %.1f µs per accepted tx (all nodes together); the load generator %.1f s\n", c.NodesS, c.PerAcceptedTxUs, c.LoadS)
	}
	lo, hi := uint64(0), uint64(0)
	for i, h := range r.Heads.Heights {
		if i == 0 || h < lo {
			lo = h
		}
		hi = max(hi, h)
	}
	fmt.Fprintf(w, "heads: same tip %v (heights %d..%d)\n", r.Heads.SameTip, lo, hi)
	fmt.Fprintf(w, "bytes per node (median): in %s, out %s; all nodes received: announcements %s + gossip framing and control %s (%.0f%% of bodies), bodies %s, reconciliation %s\n",
		humanBytes(r.Bytes.PerNodeInMedian), humanBytes(r.Bytes.PerNodeOutMedian),
		humanBytes(float64(r.Bytes.AnnounceBytes)), humanBytes(float64(r.Bytes.GossipOverheadBytes)),
		100*r.Bytes.AnnounceShareOfBodies, humanBytes(float64(r.Bytes.BodyBytes)),
		humanBytes(float64(r.Bytes.ReconcileBytes)))
	// In tx push mode nothing is announced and the framing wraps bodies.
	if r.Bytes.TxBodyBytes > 0 && r.Bytes.TxAnnounceBytes > 0 {
		fmt.Fprintf(w, "txs alone: announcements %s received, %.0f%% of tx bodies %s; %.0f%% with their envelopes; %.0f%% with all of GossipSub's framing and control (not split by topic)\n",
			humanBytes(float64(r.Bytes.TxAnnounceBytes)), 100*r.Bytes.TxAnnounceShare, humanBytes(float64(r.Bytes.TxBodyBytes)),
			100*r.Bytes.TxAnnounceShareEnveloped, 100*r.Bytes.TxAnnounceShareFramed)
	}
	fmt.Fprintf(w, "blocks per node (median): %s received (announcements, prefilled txs, block and getblocktxn answers); %d compact blocks short of txs over all nodes, %d of them completed from the pool before their getblocktxn\n",
		humanBytes(r.Bytes.BlockPerNodeMedian), r.Blocks.TxnNeeded, r.Blocks.TxnFromPool)
	fmt.Fprintf(w, "duplicates per body: %.3f\n", r.DuplicatesPerBody)
	printFloors(w, r)
	printPartition(w, r.Partition)
	printChaos(w, r.Chaos)
	if len(r.Errors) > 0 {
		fmt.Fprintf(w, "errors (%d):\n", len(r.Errors))
		for i, e := range r.Errors {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more in %s\n", len(r.Errors)-10, ReportFile)
				break
			}
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	verdict := "OK: every tx and block reached every node; one tip"
	if r.Chaos != nil {
		verdict = "OK: every tx and block reached every node up at the end; one tip; every killed node came back and caught up"
	}
	if !r.OK() {
		verdict = "FAIL: incomplete coverage or differing tips"
		if !r.Chaos.ok() {
			verdict = "FAIL: a killed node did not come back or catch up, incomplete coverage, or differing tips"
		}
	}
	fmt.Fprintln(w, verdict)
	if dir != "" {
		fmt.Fprintf(w, "output: %s (%s, %s, %s, %s)\n", dir, ReportFile, FirstSeenFile, CDFPlotFile, ArrivalPlotFile)
	}
}

func humanBytes(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

// printFloors prints the floors, the ratios of time to all to them and
// the simulator's self-check.
func printFloors(w io.Writer, r *Report) {
	f := func(v *float64) string {
		if v == nil {
			return "n/a"
		}
		return fmt.Sprintf("%.1f ms", *v)
	}
	if r.FloorMs != nil || r.FloorConnMs != nil {
		fmt.Fprintf(w, "floors (median): blocks %s on the mesh, %s on the connection graph; txs %s on the mesh\n",
			f(r.FloorMs), f(r.FloorConnMs), f(r.TxFloorMs))
	}
	if q := r.Ratios; q != nil {
		fmt.Fprintf(w, "time to all / mesh floor: blocks p50 %.2fx p99 %.2fx; txs p50 %.2fx p99 %.2fx\n", q.BlockP50, q.BlockP99, q.TxP50, q.TxP99)
	}
	if q := r.RatiosOwnFloor; q != nil {
		fmt.Fprintf(w, "time to all / each item's own mesh floor: blocks p50 %.2fx p99 %.2fx; txs p50 %.2fx p99 %.2fx\n", q.BlockP50, q.BlockP99, q.TxP50, q.TxP99)
	}
	if q := r.RatiosConn; q != nil {
		fmt.Fprintf(w, "time to all / connection floor: blocks p50 %.2fx p99 %.2fx; txs p50 %.2fx p99 %.2fx\n", q.BlockP50, q.BlockP99, q.TxP50, q.TxP99)
	}
	if p := r.Probe; p != nil {
		verdict := "simulator OK"
		switch {
		case r.Loss > 0:
			verdict = fmt.Sprintf("no simulator check with --loss %g (plain push loses gossip too)", r.Loss)
		case !p.OK():
			verdict = "SIMULATOR SUSPECT: plain push should land at 1.0-1.3x its mesh floor"
		}
		fmt.Fprintf(w, "self-check: %d/%d tiny GossipSub messages reached all (%d disturbed by mesh changes), time to all p50 %.1f ms; undisturbed ones at %.2fx (%.2f-%.2fx) their mesh floor: %s\n",
			p.ReachedAll, p.Messages, p.Disturbed, p.TimeToAllMs.P50, p.RatioP50, p.RatioMin, p.RatioMax, verdict)
	}
	if d := r.Degree; d != nil {
		fmt.Fprintf(w, "connections per node: median %.0f, max %d\n", d.P50, d.Max)
	}
	if r.VirtualTime {
		fmt.Fprintf(w, "virtual time; wall %.1f s, peak RSS %s\n", r.WallS, humanBytes(float64(r.PeakRSSBytes)))
	}
}
