package testnet

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

func TestPercentileNearestRank(t *testing.T) {
	vals := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		p    float64
		want float64
	}{{50, 5}, {90, 9}, {99, 10}, {100, 10}, {10, 1}, {1, 1}, {0, 1}} {
		if got := Percentile(vals, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("single: %v", got)
	}
}

func TestSummarizeSortsAndRounds(t *testing.T) {
	s := Summarize([]float64{3.0001234, 1, 2})
	want := Percentiles{P50: 2, P90: 3, P99: 3, Max: 3}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if (Summarize(nil) != Percentiles{}) {
		t.Fatal("empty distribution must be zeros")
	}
}

func TestMedian(t *testing.T) {
	if m := Median([]float64{4, 1, 3}); m != 3 {
		t.Errorf("odd: %v", m)
	}
	in := []float64{4, 1, 3, 2}
	if m := Median(in); m != 2.5 {
		t.Errorf("even: %v", m)
	}
	if !slices.Equal(in, []float64{4, 1, 3, 2}) {
		t.Error("Median modified its input")
	}
	if Median(nil) != 0 {
		t.Error("empty")
	}
}

// TestFloorMeshAndConnection: the origin's first hop may use any
// connection (flood publish), later hops only mesh edges; the connection
// floor may use any edge; per-link latencies weigh the paths.
func TestFloorMeshAndConnection(t *testing.T) {
	// 0-1, 1-2, 1-3, 2-3; 1's mesh lacks 3, so on the mesh 3 is reached via 2.
	conn := [][]int{{1}, {0, 2, 3}, {1, 3}, {1, 2}}
	mesh := [][]int{{1}, {0, 2}, {1, 3}, {2}}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	fixed := func(int, int) time.Duration { return ms(50) }
	if f, ok := Floor(0, conn[0], mesh, fixed); !ok || f != ms(150) {
		t.Fatalf("mesh floor from 0: %v %v, want 150ms", f, ok)
	}
	if f, ok := Floor(0, nil, conn, fixed); !ok || f != ms(100) {
		t.Fatalf("connection floor from 0: %v %v, want 100ms", f, ok)
	}
	// From 1 the publish floods to 3 directly.
	if f, ok := Floor(1, conn[1], mesh, fixed); !ok || f != ms(50) {
		t.Fatalf("mesh floor from 1: %v %v, want 50ms", f, ok)
	}
	// Per-link latency: the 1-3 link is slow, 1-2-3 is faster.
	lat := func(u, v int) time.Duration {
		if min(u, v) == 1 && max(u, v) == 3 {
			return ms(100)
		}
		return ms(20)
	}
	if f, ok := Floor(0, nil, conn, lat); !ok || f != ms(60) {
		t.Fatalf("weighted connection floor: %v %v, want 60ms (0-1-2-3)", f, ok)
	}
	if _, ok := Floor(0, nil, [][]int{{1}, {0}, {}}, fixed); ok {
		t.Fatal("disconnected graph has a floor")
	}
	if _, ok := Floor(7, nil, conn, fixed); ok {
		t.Fatal("bad origin has a floor")
	}
	if f, ok := Floor(0, nil, [][]int{{}}, fixed); !ok || f != 0 {
		t.Fatalf("single node: %v %v", f, ok)
	}
}

func TestBuildGraphUnionsDirections(t *testing.T) {
	ids := []string{"a", "b", "c"}
	// a reports b; c reports b and an outsider and itself; b reports nothing.
	adj := BuildGraph(ids, [][]string{{"b"}, nil, {"b", "zz", "c"}})
	want := [][]int{{1}, {0, 2}, {1}}
	for i := range want {
		if !slices.Equal(adj[i], want[i]) {
			t.Fatalf("adj = %v, want %v", adj, want)
		}
	}
}

func h(b byte) chain.Hash {
	var x chain.Hash
	x[0] = b
	return x
}

// sampleObs is a 3-node run: tx1 reaches everyone directly; tx2 reaches
// node 2 only inside block b1; tx3 never reaches node 2; block b1 reaches
// all; block b0 is outside the window; heads agree.
func sampleObs() *Observations {
	const base = int64(1_700_000_000_000_000)
	tx1, tx2, tx3 := h(1), h(2), h(3)
	b0, b1 := h(10), h(11)
	return &Observations{
		Nodes:      3,
		Mode:       ModeSim,
		BlockRelay: "compact",
		Duration:   10 * time.Second,
		Latency:    50 * time.Millisecond,
		Submitted:  4,
		Txs: []TxObs{
			{ID: tx1, Origin: 0, SentUs: base},
			{ID: tx2, Origin: 1, SentUs: base},
			{ID: tx3, Origin: 1, SentUs: base},
		},
		Blocks: []BlockObs{
			{ID: b0, Height: 1, Origin: 0, HeaderUs: base - 5_000_000},
			{ID: b1, Height: 2, Origin: 0, HeaderUs: base + 900_000, Txs: []chain.Hash{tx2}, InWindow: true},
		},
		TxSeen: []map[chain.Hash]int64{
			{tx1: base, tx2: base + 10_000, tx3: base + 12_000},
			{tx1: base + 20_000, tx2: base + 1_000, tx3: base + 2_000},
			{tx1: base + 40_000},
		},
		BlockSeen: []map[chain.Hash]int64{
			{b0: base - 5_000_000, b1: base + 1_000_000},
			{b0: base - 4_000_000, b1: base + 1_050_000},
			{b0: base - 4_000_000, b1: base + 1_100_000},
		},
		Heads:     []HeadObs{{Height: 2, ID: b1}, {Height: 2, ID: b1}, {Height: 2, ID: b1}},
		Stats:     []Stats{{BytesIn: 100, BytesOut: 300, AnnounceBytesIn: 10, BodyBytesIn: 80, OverheadBytesIn: 10, BlockBytesIn: 30, TxAnnounceIn: 6, TxBodyIn: 40, TxAnnounceWireIn: 9, BodiesReceived: 4, BlockTxnNeeded: 2, BlockTxnFromPool: 1}, {BytesIn: 200, BytesOut: 100, BlockBytesIn: 10, BlockTxnNeeded: 3, TxAnnounceIn: 4, TxBodyIn: 40, TxAnnounceWireIn: 6, BodiesReceived: 4}, {BytesIn: 300, BytesOut: 200, BlockBytesIn: 20, BodiesReceived: 4}},
		BodyItems: 4,
		Graph:     [][]int{{1}, {0, 2}, {1}},
		TxMesh:    [][]int{{1}, {0, 2}, {1}},
		BlockMesh: [][]int{{1}, {0, 2}, {1}},
		Errors:    []string{"tx_send: pool full (x1)"},
	}
}

func TestAnalyzeCoverageAndLatencies(t *testing.T) {
	a := Analyze(sampleObs())
	r := a.Report
	if r.Txs.Submitted != 4 || r.Txs.Accepted != 3 {
		t.Fatalf("submitted/accepted %d/%d", r.Txs.Submitted, r.Txs.Accepted)
	}
	if r.Txs.AcceptedPerS != 0.3 {
		t.Errorf("accepted_per_s %v", r.Txs.AcceptedPerS)
	}
	// tx1 and tx2 (node 2 via its block) reached all; tx3 did not.
	if r.Txs.ReachedAll != 2 {
		t.Fatalf("txs reached_all %d, want 2", r.Txs.ReachedAll)
	}
	// tx1: 40 ms; tx2: origin node 1 at base+1ms, node 2 via block at base+1.1s.
	if r.Txs.TimeToAllMs.Max != 1099 || r.Txs.TimeToAllMs.P50 != 40 {
		t.Errorf("tx time to all %+v", r.Txs.TimeToAllMs)
	}
	// Arrivals exclude the origin: tx1 20,40; tx2 9,1099; tx3 10.
	if r.Txs.ArrivalMs.P50 != 20 || r.Txs.ArrivalMs.Max != 1099 {
		t.Errorf("tx arrival %+v", r.Txs.ArrivalMs)
	}
	if !a.Txs[1].ViaBlock[2] || a.Txs[1].ViaBlock[0] {
		t.Errorf("via-block flags %v", a.Txs[1].ViaBlock)
	}
	if r.Blocks.Produced != 1 || r.Blocks.ReachedAll != 1 {
		t.Fatalf("blocks %+v", r.Blocks)
	}
	if r.Blocks.TimeToAllMs.Max != 100 || r.Blocks.ArrivalMs.P50 != 50 {
		t.Errorf("block times %+v %+v", r.Blocks.TimeToAllMs, r.Blocks.ArrivalMs)
	}
	if !r.Heads.SameTip || !slices.Equal(r.Heads.Heights, []uint64{2, 2, 2}) {
		t.Errorf("heads %+v", r.Heads)
	}
	// Origin node 0 of a 3-node line graph: 2 hops of 50 ms, on the mesh
	// and the connections; txs from nodes 0, 1, 1: floors 100, 50, 50.
	if r.FloorMs == nil || *r.FloorMs != 100 || r.FloorConnMs == nil || *r.FloorConnMs != 100 {
		t.Errorf("floors %v %v", r.FloorMs, r.FloorConnMs)
	}
	if r.Degree == nil || r.Degree.P50 != 1 || r.Degree.Max != 2 {
		t.Errorf("degree %+v", r.Degree)
	}
	if r.TxFloorMs == nil || *r.TxFloorMs != 50 {
		t.Errorf("tx floor %v, want 50", r.TxFloorMs)
	}
	if q := r.Ratios; q == nil || q.BlockP50 != r.Blocks.TimeToAllMs.P50/100 || q.TxP99 != math.Round(r.Txs.TimeToAllMs.P99/50*1000)/1000 {
		t.Errorf("ratios %+v", q)
	}
	// Each item over its own origin's floor: tx1 (origin 0, floor 100 ms)
	// 40 ms is 0.4x, where the median tx floor (50 ms) would say 0.8x; tx2
	// (origin 1, floor 50 ms) 1099 ms; the block (origin 0) 100 / 100.
	if q := r.RatiosOwnFloor; q == nil || q.TxP50 != 0.4 || q.TxP99 != 21.98 || q.BlockP50 != 1 || q.BlockP99 != 1 {
		t.Errorf("ratios to own floors %+v", q)
	}
	if r.Bytes.PerNodeInMedian != 200 || r.Bytes.PerNodeOutMedian != 200 || r.Bytes.AnnounceBytes != 10 || r.Bytes.BodyBytes != 80 {
		t.Errorf("bytes %+v", r.Bytes)
	}
	// Announcing costs its payloads and the gossip overhead: (10 + 10) / 80.
	if r.Bytes.GossipOverheadBytes != 10 || r.Bytes.AnnounceShareOfBodies != 0.25 {
		t.Errorf("announce share: overhead %d, share %v, want 10, 0.25", r.Bytes.GossipOverheadBytes, r.Bytes.AnnounceShareOfBodies)
	}
	// Txs alone: 10 B of announcements over 80 B of tx bodies; 15 B with
	// their envelopes; with all 10 B of framing, 20 over 80.
	if r.Bytes.TxAnnounceBytes != 10 || r.Bytes.TxBodyBytes != 80 || r.Bytes.TxAnnounceShare != 0.125 || r.Bytes.TxAnnounceShareFramed != 0.25 {
		t.Errorf("tx share: %d / %d, %v framed %v; want 10 / 80, 0.125, 0.25", r.Bytes.TxAnnounceBytes, r.Bytes.TxBodyBytes, r.Bytes.TxAnnounceShare, r.Bytes.TxAnnounceShareFramed)
	}
	if r.Bytes.TxAnnounceWireBytes != 15 || r.Bytes.TxAnnounceShareEnveloped != 0.188 {
		t.Errorf("tx announcements with envelopes %d, share %v; want 15, 0.188", r.Bytes.TxAnnounceWireBytes, r.Bytes.TxAnnounceShareEnveloped)
	}
	if r.Bytes.BlockPerNodeMedian != 20 {
		t.Errorf("block bytes per node median %v, want 20", r.Bytes.BlockPerNodeMedian)
	}
	if r.Blocks.TxnNeeded != 5 || r.Blocks.TxnFromPool != 1 {
		t.Errorf("compact blocks short of txs %d, from the pool %d; want the sums 5 and 1", r.Blocks.TxnNeeded, r.Blocks.TxnFromPool)
	}
	// 12 bodies / (4 items x 2 receivers).
	if r.DuplicatesPerBody != 1.5 {
		t.Errorf("duplicates %v", r.DuplicatesPerBody)
	}
	if r.OK() {
		t.Error("OK with a tx missing at a node")
	}
	joined := strings.Join(r.Errors, "\n")
	if !strings.Contains(joined, "pool full") || !strings.Contains(joined, "reached 2/3 nodes; missing at nodes [2]") {
		t.Errorf("errors: %q", r.Errors)
	}
}

func TestAnalyzeAllCoveredIsOK(t *testing.T) {
	o := sampleObs()
	o.TxSeen[2][h(3)] = o.TxSeen[1][h(3)] + 5_000
	r := Analyze(o).Report
	if !r.OK() {
		t.Fatalf("not OK: %v", r.Errors)
	}
}

func TestAnalyzeTipsDiffer(t *testing.T) {
	o := sampleObs()
	o.TxSeen[2][h(3)] = 1
	o.Heads[2] = HeadObs{Height: 1, ID: h(10)}
	r := Analyze(o).Report
	if r.Heads.SameTip || r.OK() {
		t.Fatal("differing tips must fail")
	}
	if !strings.Contains(strings.Join(r.Errors, "\n"), "different tips") {
		t.Errorf("errors: %q", r.Errors)
	}
	o.Heads[2] = HeadObs{} // a node that did not answer
	if Analyze(o).Report.Heads.SameTip {
		t.Fatal("a silent node must not count as the same tip")
	}
}

func TestAnalyzeMissingOriginFallsBack(t *testing.T) {
	o := sampleObs()
	delete(o.TxSeen[0], h(1))
	a := Analyze(o)
	if a.Txs[0].OriginUs != o.Txs[0].SentUs {
		t.Fatalf("origin time %d, want client time", a.Txs[0].OriginUs)
	}
	if !strings.Contains(strings.Join(a.Report.Errors, "\n"), "no first-seen time at their RPC node") {
		t.Errorf("errors: %q", a.Report.Errors)
	}
}

func TestFloorNullInProcessMode(t *testing.T) {
	o := sampleObs()
	o.Mode = ModeProcess
	o.Latency = 0
	if r := Analyze(o).Report; r.FloorMs != nil {
		t.Fatalf("floor %v in process mode", *r.FloorMs)
	}
	o = sampleObs()
	o.Graph = [][]int{{1}, {0}, {}}
	o.BlockMesh = [][]int{{1}, {0}, {}}
	r := Analyze(o).Report
	if r.FloorMs != nil || r.FloorConnMs != nil || r.Ratios != nil || !strings.Contains(strings.Join(r.Errors, "\n"), "no propagation floor") {
		t.Fatalf("disconnected graph: floor %v errors %q", r.FloorMs, r.Errors)
	}
}

// TestReportSchemaKeys pins report.json's keys: tools and scripts read
// them, so renaming one is a breaking change.
func TestReportSchemaKeys(t *testing.T) {
	o := sampleObs()
	o.Mode = ModeProcess
	o.Errors = nil
	m := reportJSON(t, o)
	keysOf := func(raw json.RawMessage) []string {
		var mm map[string]json.RawMessage
		if err := json.Unmarshal(raw, &mm); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var ks []string
		for k := range mm {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	check := func(what string, got []string, want ...string) {
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s keys %v, want %v", what, got, want)
		}
	}
	var top []string
	for k := range m {
		top = append(top, k)
	}
	sort.Strings(top)
	check("top", top, "nodes", "mode", "block_relay", "tx_relay", "duration_s", "latency_ms", "txs", "blocks", "heads", "bytes",
		"duplicates_per_body", "floor_ms", "floor_conn_ms", "tx_floor_ms", "ratios", "ratios_own_floor", "ratios_conn", "degree", "probe", "errors", "virtual_time", "cpu_model", "seed", "wall_s", "peak_rss_bytes")
	check("txs", keysOf(m["txs"]), "submitted", "accepted", "accepted_per_s", "reached_all", "time_to_all_ms", "arrival_ms", "unconfirmed")
	check("blocks", keysOf(m["blocks"]), "produced", "reached_all", "time_to_all_ms", "arrival_ms", "txn_needed", "txn_from_pool")
	check("heads", keysOf(m["heads"]), "same_tip", "heights")
	check("bytes", keysOf(m["bytes"]), "per_node_in_median", "per_node_out_median", "announce_bytes", "body_bytes", "reconcile_bytes", "gossip_overhead_bytes", "announce_share_of_bodies", "block_per_node_median",
		"tx_announce_bytes", "tx_body_bytes", "tx_announce_wire_bytes", "tx_announce_share", "tx_announce_share_enveloped", "tx_announce_share_framed")
	var txs map[string]json.RawMessage
	_ = json.Unmarshal(m["txs"], &txs)
	check("percentiles", keysOf(txs["time_to_all_ms"]), "p50", "p90", "p99", "max")
	if string(m["floor_ms"]) != "null" {
		t.Errorf("floor_ms = %s in process mode, want null", m["floor_ms"])
	}
	if string(m["errors"]) == "null" {
		t.Error("errors must be an array, never null")
	}
}

func TestPayloadLenHitsTxSize(t *testing.T) {
	for _, size := range []int{minTxSize, 200, 250, 280, 281, 282, 283, 1000, 4096} {
		n := payloadLen(size)
		got := (&chain.Tx{Payload: make([]byte, n)}).Size()
		// Sizes the varint prefix jumps over are approached from below.
		if got > size || size-got > 1 {
			t.Errorf("size %d: payload %d gives %d", size, n, got)
		}
	}
	if (&chain.Tx{Payload: make([]byte, payloadLen(250))}).Size() != 250 {
		t.Error("250-byte txs must be exactly 250 bytes")
	}
}

func TestParseStats(t *testing.T) {
	s, err := ParseStats(json.RawMessage(`{"bytes_in":10,"bytes_out":20,"bodies_received":2,"duplicate_bodies":1,"other":{"x":1},"tx_announce_bytes_in":4,"tx_body_bytes_in":6,"tx_announce_wire_bytes_in":5,
		"block_txn_needed":8,"block_txn_from_pool":3,"classes":{"announce":{"in":3,"out":9},"body":{"in":7,"out":1},"overhead":{"in":5,"out":0}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{BytesIn: 10, BytesOut: 20, AnnounceBytesIn: 3, BodyBytesIn: 7, OverheadBytesIn: 5, TxAnnounceIn: 4, TxBodyIn: 6, TxAnnounceWireIn: 5, BodiesReceived: 2, DuplicateBodies: 1, BlockTxnNeeded: 8, BlockTxnFromPool: 3}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if d := want.Sub(Stats{BytesIn: 4}); d.BytesIn != 6 || d.BytesOut != 20 {
		t.Fatalf("Sub: %+v", d)
	}
	if _, err := ParseStats(json.RawMessage(`[1]`)); err == nil {
		t.Fatal("non-object accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MinPeers != 4 || c.Settle != 10*time.Second {
		t.Errorf("derived defaults: min peers %d settle %v", c.MinPeers, c.Settle)
	}
	c = DefaultConfig()
	c.Nodes = 2
	_ = c.Validate()
	if c.MinPeers != 1 {
		t.Errorf("2 nodes: min peers %d", c.MinPeers)
	}
	bad := []func(*Config){
		func(c *Config) { c.Nodes = 0 },
		func(c *Config) { c.Mode = "cloud" },
		func(c *Config) { c.BlockRelay = "flood" },
		func(c *Config) { c.TxSize = 10 },
		func(c *Config) { c.MeshDegree = 2 },
		func(c *Config) { c.Authorities = c.Nodes + 1 },
		func(c *Config) { c.TxRate = -1 },
		func(c *Config) { c.Duration = 0 },
		func(c *Config) { c.MinPeers = c.Nodes },
		func(c *Config) { c.RPCBatch = 8 }, // open loop (TxRate 500)
		func(c *Config) { c.RPCBatch, c.TxRate = MaxRPCBatch+1, 0 },
		func(c *Config) { c.RPCBatch, c.TxRate, c.Chaos = 8, 0, true },
	}
	c = DefaultConfig()
	c.RPCBatch, c.TxRate = 16, 0
	if err := c.Validate(); err != nil {
		t.Errorf("closed loop with rpc batches refused: %v", err)
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

func TestCDFMonotone(t *testing.T) {
	pts := cdf([]float64{3, 1, 2})
	if len(pts) != 3 || pts[0].X != 1 || pts[2].Y != 1 || math.Abs(pts[0].Y-1.0/3) > 1e-9 {
		t.Fatalf("cdf %v", pts)
	}
}

func FuzzParseStats(f *testing.F) {
	f.Add([]byte(`{"bytes_in":1,"classes":{"announce":{"in":2}}}`))
	f.Add([]byte(`{"classes":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseStats(data) // must not panic
	})
}

// TestAnalyzeCPU checks the CPU per accepted tx: node CPU over the
// workload divided by the txs accepted in it, absent when not measured.
func TestAnalyzeCPU(t *testing.T) {
	o := sampleObs()
	o.Mode = ModeProcess
	if r := Analyze(o).Report; r.CPU != nil {
		t.Fatalf("cpu %+v without a measurement", *r.CPU)
	}
	o.NodesCPU, o.LoadCPU = 1500*time.Millisecond, 250*time.Millisecond
	r := Analyze(o).Report
	want := 1500e3 / float64(len(o.Txs))
	if r.CPU == nil || r.CPU.NodesS != 1.5 || r.CPU.LoadS != 0.25 || math.Abs(r.CPU.PerAcceptedTxUs-want) > 0.05 {
		t.Fatalf("cpu %+v, want 1.5 s and %.1f µs per tx", r.CPU, want)
	}
}

// TestReportRecordsNodeSettings: a run with --mesh-degree or --prefill-age
// says so in report.json; a run without them carries neither key.
func TestReportRecordsNodeSettings(t *testing.T) {
	o := sampleObs()
	o.MeshDegree, o.PrefillAge = 4, 50*time.Millisecond
	m := reportJSON(t, o)
	if string(m["mesh_degree"]) != "4" || string(m["prefill_age_ms"]) != "50" {
		t.Errorf("mesh_degree %s, prefill_age_ms %s; want 4 and 50", m["mesh_degree"], m["prefill_age_ms"])
	}
	m = reportJSON(t, sampleObs())
	if _, ok := m["mesh_degree"]; ok {
		t.Error("defaults must leave mesh_degree out")
	}
	if _, ok := m["prefill_age_ms"]; ok {
		t.Error("defaults must leave prefill_age_ms out")
	}
}

// reportJSON is the top level of report.json for o's report.
func reportJSON(t *testing.T, o *Observations) map[string]json.RawMessage {
	t.Helper()
	b, err := json.Marshal(Analyze(o).Report)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
