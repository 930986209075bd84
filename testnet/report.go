package testnet

import (
	"fmt"
	"github.com/rumor-relay/rumor/node"
	"math"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// Report is report.json: the stable, documented summary of one testnet
// run. Tools and tests read it; keys never change meaning. Times are
// milliseconds with microsecond resolution; bytes are counted by the
// relay's own counters (measure_stats) over the measurement window.
type Report struct {
	// Nodes is the number of nodes in the network.
	Nodes int `json:"nodes"`
	// Mode is "process" or "sim".
	Mode string `json:"mode"`
	// BlockRelay is the block relay mode: "compact", "pull" or "push".
	BlockRelay string `json:"block_relay"`
	// TxRelay is the tx relay mode: "announce", "link" or "push".
	TxRelay string `json:"tx_relay"`
	// MeshDegree is the nodes' GossipSub D when set (absent: GossipSub's
	// default, 6).
	MeshDegree int `json:"mesh_degree,omitempty"`
	// PrefillAgeMs is the nodes' prefill age when set (absent: only txs
	// not yet announced are prefilled).
	PrefillAgeMs float64 `json:"prefill_age_ms,omitempty"`
	// DurationS is how long the workload ran, in seconds.
	DurationS float64 `json:"duration_s"`
	// LatencyMs is the injected one-way link latency (0 in process mode).
	LatencyMs float64 `json:"latency_ms"`
	// Txs summarises transaction propagation.
	Txs TxReport `json:"txs"`
	// Blocks summarises block propagation.
	Blocks BlockReport `json:"blocks"`
	// Heads compares the nodes' best tips after settling.
	Heads HeadsReport `json:"heads"`
	// Bytes is the relay traffic over the measurement window.
	Bytes BytesReport `json:"bytes"`
	// DuplicatesPerBody is bodies received per receiving node per item
	// (tx or block): 1.0 means every node received every body exactly once.
	DuplicatesPerBody float64 `json:"duplicates_per_body"`
	// FloorMs is the mesh floor for blocks (median over blocks): the
	// fastest a block could reach its farthest node when every node, the
	// proposer included, sends it over its GossipSub block-topic mesh, each
	// hop costing its link's latency (see floor.go). Null in process mode, where there is no
	// injected latency, and when the meshes are unknown.
	FloorMs *float64 `json:"floor_ms"`
	// FloorConnMs is the connection-graph floor for blocks (median): every
	// hop may use any connection. No relay on this overlay can beat it.
	FloorConnMs *float64 `json:"floor_conn_ms"`
	// TxFloorMs is the mesh floor for txs (median over txs, from the node
	// that accepted each over RPC, on the tx topic's mesh).
	TxFloorMs *float64 `json:"tx_floor_ms"`
	// Ratios is time to all over the mesh floors; null without floors.
	Ratios *Ratios `json:"ratios"`
	// RatiosOwnFloor is each item's time to all over its own origin's
	// mesh floor, p50 and p99 over the items: unlike Ratios, a proposer
	// whose farthest node is a hop further than the median origin's does
	// not count as a delay. Null without floors.
	RatiosOwnFloor *Ratios `json:"ratios_own_floor"`
	// RatiosConn is time to all over the connection-graph floor.
	RatiosConn *Ratios `json:"ratios_conn"`
	// Degree is the distribution of connections per node at the end of a
	// sim run; null in process mode.
	Degree *DegreeReport `json:"degree"`
	// Loss is the fraction of gossip every sim node lost (--loss); absent
	// when none. The self-check's plain push loses it too, so its ratio is
	// no simulator check then.
	Loss float64 `json:"loss,omitempty"`
	// Partition describes a partition and its heal; absent when none.
	Partition *PartitionReport `json:"partition,omitempty"`
	// Chaos describes a --chaos run's kills and restarts; absent when
	// none.
	Chaos *ChaosReport `json:"chaos,omitempty"`
	// Probe is the plain-GossipSub self-check; null when not run.
	Probe *ProbeReport `json:"probe"`
	// VirtualTime is true for a sim run in virtual time: latencies are the
	// protocol's, the network's and the CPU model's only.
	VirtualTime bool `json:"virtual_time"`
	// CPUModel is the per-node CPU cost model of a virtual-time run; null
	// otherwise.
	CPUModel *node.CPUModel `json:"cpu_model"`
	// Seed is the run's seed (keys, load, topology).
	Seed string `json:"seed"`
	// WallS is the run's wall-clock time in seconds, start to report.
	WallS float64 `json:"wall_s"`
	// PeakRSSBytes is the testnet process's peak resident memory (in sim
	// mode: every node's).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// CPU is what the nodes' processes spent during the workload (process
	// mode on Linux, without chaos); absent otherwise.
	CPU *CPUReport `json:"cpu,omitempty"`
	// Errors lists what went wrong: tx_send refusals (grouped, with
	// counts), items that missed nodes, differing tips. Never null.
	Errors []string `json:"errors"`
}

// CPUReport is report.json's "cpu" object: the CPU time (user and system)
// of every node process from the workload's start to its end. On a shared
// machine it is steadier than accepted tx/s, which swings with whatever
// else runs: compare builds by CPU per accepted tx.
type CPUReport struct {
	// NodesS is the CPU time of all nodes together, in seconds.
	NodesS float64 `json:"nodes_s"`
	// PerAcceptedTxUs is NodesS over the txs accepted in the workload, in
	// microseconds: what one tx costs the whole network, idle work
	// (heartbeats, blocks) included.
	PerAcceptedTxUs float64 `json:"per_accepted_tx_us"`
	// LoadS is the CPU time of this process, the load generator (signing
	// txs, JSON-RPC calls, progress polls), over the same span, in
	// seconds: what the nodes could not use of a shared machine.
	LoadS float64 `json:"load_s"`
}

// DegreeReport is report.json's "degree" object.
type DegreeReport struct {
	// P50 and Max are the median and largest connection count of a node.
	P50 float64 `json:"p50"`
	Max int     `json:"max"`
}

// Ratios is time to all divided by a floor: 1.0 is the floor itself.
type Ratios struct {
	// BlockP50 and BlockP99 are block time to all p50 and p99 over the
	// block floor.
	BlockP50 float64 `json:"block_p50"`
	BlockP99 float64 `json:"block_p99"`
	// TxP50 and TxP99 are tx time to all p50 and p99 over the tx floor.
	TxP50 float64 `json:"tx_p50"`
	TxP99 float64 `json:"tx_p99"`
}

// TxReport is the "txs" object of report.json.
type TxReport struct {
	// Submitted counts tx_send calls made.
	Submitted int `json:"submitted"`
	// Accepted counts txs a node accepted over RPC (tx_send returned an id).
	Accepted int `json:"accepted"`
	// AcceptedPerS is Accepted / DurationS: the throughput figure.
	AcceptedPerS float64 `json:"accepted_per_s"`
	// ReachedAll counts accepted txs first-seen at every node.
	ReachedAll int `json:"reached_all"`
	// TimeToAllMs is the distribution over txs that reached all nodes of
	// the latest latency at any node.
	TimeToAllMs Percentiles `json:"time_to_all_ms"`
	// ArrivalMs is the distribution of every (tx, node) latency, the
	// origin node excluded.
	ArrivalMs Percentiles `json:"arrival_ms"`
	// Unconfirmed counts accepted txs whose node still tracked them as its
	// own and not confirmed delivered (seen by fewer than its
	// DeliveryConfirmPeers peers, not included) at the end of the run.
	Unconfirmed int `json:"unconfirmed"`
}

// BlockReport is the "blocks" object of report.json.
type BlockReport struct {
	// Produced counts blocks on the final best chain whose proposer stored
	// them during the workload window.
	Produced int `json:"produced"`
	// ReachedAll counts produced blocks stored at every node.
	ReachedAll int `json:"reached_all"`
	// TimeToAllMs is the distribution over blocks that reached all nodes
	// of the latest latency at any node.
	TimeToAllMs Percentiles `json:"time_to_all_ms"`
	// ArrivalMs is the distribution of every (block, node) latency, the
	// proposer excluded.
	ArrivalMs Percentiles `json:"arrival_ms"`
	// TxnNeeded counts compact blocks received short of txs after the pool
	// lookup (each sent a getblocktxn), summed over nodes; TxnFromPool
	// those of them completed from the pool (the txs arrived as txs)
	// before the getblocktxn was answered.
	TxnNeeded   int64 `json:"txn_needed"`
	TxnFromPool int64 `json:"txn_from_pool"`
}

// HeadsReport is the "heads" object of report.json.
type HeadsReport struct {
	// SameTip is true when every node reported the same best block id.
	SameTip bool `json:"same_tip"`
	// Heights are the nodes' best heights, by node index.
	Heights []uint64 `json:"heights"`
}

// BytesReport is the "bytes" object of report.json. All counts are deltas
// of the relay's counters between the start of the workload and the end
// of settling.
type BytesReport struct {
	// PerNodeInMedian is the median over nodes of relay bytes received.
	PerNodeInMedian float64 `json:"per_node_in_median"`
	// PerNodeOutMedian is the median over nodes of relay bytes sent.
	PerNodeOutMedian float64 `json:"per_node_out_median"`
	// AnnounceBytes is announcement bytes received, summed over nodes.
	AnnounceBytes int64 `json:"announce_bytes"`
	// BodyBytes is body bytes (txs and blocks) received, summed over nodes.
	BodyBytes int64 `json:"body_bytes"`
	// ReconcileBytes is mempool reconciliation bytes (requests and coded
	// symbols) received, summed over nodes.
	ReconcileBytes int64 `json:"reconcile_bytes"`
	// GossipOverheadBytes is what GossipSub adds around the messages
	// (framing, envelopes) and its control traffic (IHAVE, IWANT, GRAFT,
	// PRUNE, IDONTWANT), received, summed over nodes.
	GossipOverheadBytes int64 `json:"gossip_overhead_bytes"`
	// AnnounceShareOfBodies is what announcing costs against what it
	// saves: announcement payloads plus the gossip overhead, over body
	// bytes (0 without bodies). In push modes the overhead framing bodies
	// is counted in too, so compare it between announce-mode runs.
	AnnounceShareOfBodies float64 `json:"announce_share_of_bodies"`
	// BlockPerNodeMedian is the median over nodes of what blocks cost to
	// receive: block announcements (prefilled txs included) and block and
	// getblocktxn responses, not GossipSub framing.
	BlockPerNodeMedian float64 `json:"block_per_node_median"`
	// TxAnnounceBytes is tx announcement payloads received and TxBodyBytes
	// tx bodies received, summed over nodes: txs apart from blocks, whose
	// compact announcements carry prefilled txs.
	TxAnnounceBytes int64 `json:"tx_announce_bytes"`
	TxBodyBytes     int64 `json:"tx_body_bytes"`
	// TxAnnounceWireBytes is the same announcements as they came on the
	// wire, each GossipSub message's envelope included.
	TxAnnounceWireBytes int64 `json:"tx_announce_wire_bytes"`
	// TxAnnounceShare is TxAnnounceBytes over TxBodyBytes: what announcing
	// txs costs against the bodies it fetches, payloads only;
	// TxAnnounceShareEnveloped is TxAnnounceWireBytes over TxBodyBytes,
	// envelopes included; TxAnnounceShareFramed adds all of GossipSub's
	// framing and control, blocks' included (control is not split by
	// topic), to the payloads: the tx share with control included lies
	// between the last two. All 0 without tx bodies.
	TxAnnounceShare          float64 `json:"tx_announce_share"`
	TxAnnounceShareEnveloped float64 `json:"tx_announce_share_enveloped"`
	TxAnnounceShareFramed    float64 `json:"tx_announce_share_framed"`
}

// Percentiles summarises a distribution in milliseconds. An empty
// distribution is all zeros.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted values: the smallest value with at least p% of values at or
// below it. It returns 0 for no values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize returns p50/p90/p99/max of values (which it sorts in place),
// rounded to microseconds.
func Summarize(values []float64) Percentiles {
	slices.Sort(values)
	return Percentiles{
		P50: roundUs(Percentile(values, 50)),
		P90: roundUs(Percentile(values, 90)),
		P99: roundUs(Percentile(values, 99)),
		Max: roundUs(Percentile(values, 100)),
	}
}

func roundUs(ms float64) float64 { return math.Round(ms*1000) / 1000 }

// Median returns the median of values (mean of the middle two for an even
// count), 0 for none. It does not modify values.
func Median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	s := slices.Clone(values)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Stats are the relay counters the report reads from measure_stats.
type Stats struct {
	BytesIn          int64 // all relay bytes received
	BytesOut         int64 // all relay bytes sent
	AnnounceBytesIn  int64 // announcement bytes received
	BodyBytesIn      int64 // tx and block body bytes received
	ReconcileBytesIn int64 // reconciliation bytes received
	OverheadBytesIn  int64 // GossipSub framing and control received
	BlockBytesIn     int64 // block announcements and block/getblocktxn responses received
	TxAnnounceIn     int64 // tx announcement payloads received
	TxBodyIn         int64 // tx bodies received (tx responses, pushed txs)
	TxAnnounceWireIn int64 // tx announcements received with their GossipSub envelopes
	BodiesReceived   int64 // bodies received, duplicates included
	DuplicateBodies  int64 // bodies received that were already held
	BlockTxnNeeded   int64 // compact blocks received short of txs (getblocktxn sent)
	BlockTxnFromPool int64 // of those, completed from the pool before the answer
}

// Sub returns s - o, counter by counter (a window's delta).
func (s Stats) Sub(o Stats) Stats {
	return Stats{
		BytesIn:          s.BytesIn - o.BytesIn,
		BytesOut:         s.BytesOut - o.BytesOut,
		AnnounceBytesIn:  s.AnnounceBytesIn - o.AnnounceBytesIn,
		BodyBytesIn:      s.BodyBytesIn - o.BodyBytesIn,
		ReconcileBytesIn: s.ReconcileBytesIn - o.ReconcileBytesIn,
		OverheadBytesIn:  s.OverheadBytesIn - o.OverheadBytesIn,
		BlockBytesIn:     s.BlockBytesIn - o.BlockBytesIn,
		TxAnnounceIn:     s.TxAnnounceIn - o.TxAnnounceIn,
		TxBodyIn:         s.TxBodyIn - o.TxBodyIn,
		TxAnnounceWireIn: s.TxAnnounceWireIn - o.TxAnnounceWireIn,
		BodiesReceived:   s.BodiesReceived - o.BodiesReceived,
		DuplicateBodies:  s.DuplicateBodies - o.DuplicateBodies,
		BlockTxnNeeded:   s.BlockTxnNeeded - o.BlockTxnNeeded,
		BlockTxnFromPool: s.BlockTxnFromPool - o.BlockTxnFromPool,
	}
}

// TxObs is one transaction a node accepted over RPC.
type TxObs struct {
	ID     chain.Hash
	Origin int   // index of the node that accepted it over RPC
	SentUs int64 // client clock when tx_send returned (fallback origin time)
}

// BlockObs is one block of the final best chain (walked at node 0).
type BlockObs struct {
	ID       chain.Hash
	Height   uint64
	Origin   int   // index of the node holding the proposer's key
	HeaderUs int64 // header timestamp (fallback origin time)
	Txs      []chain.Hash
	InWindow bool // proposer stored it during the workload window
}

// HeadObs is one node's chain_head after settling; a zero ID means the
// node did not answer.
type HeadObs struct {
	Height uint64
	ID     chain.Hash
}

// Observations is everything a run measured, as plain data: the input of
// Analyze, which does no I/O (unit tests build Observations by hand).
type Observations struct {
	Nodes       int
	Mode        string
	BlockRelay  string
	TxRelay     string
	MeshDegree  int           // 0: GossipSub's default
	PrefillAge  time.Duration // 0: only txs not yet announced
	Duration    time.Duration // workload length actually run
	Latency     time.Duration // injected one-way link latency; 0 in process mode
	Submitted   int
	Unconfirmed int     // accepted txs still unconfirmed at their node at the end
	Loss        float64 // gossip lost per sim node (--loss)
	Txs         []TxObs
	Blocks      []BlockObs             // every walked block; InWindow marks the measured ones
	TxSeen      []map[chain.Hash]int64 // per node: tx id -> first-seen (Unix µs)
	BlockSeen   []map[chain.Hash]int64 // per node: block id -> first-seen (Unix µs)
	Heads       []HeadObs              // per node
	Stats       []Stats                // per node, delta over the stats window
	BodyItems   int                    // txs plus blocks propagated during the stats window
	Graph       [][]int                // connection graph adjacency by node index; nil if unknown
	TxMesh      [][]int                // tx topic mesh, directed, by node index; nil if unknown
	BlockMesh   [][]int                // block topic mesh, directed; nil if unknown
	// LinkLatency is each link's one-way latency; nil means Latency on
	// every link.
	LinkLatency func(u, v int) time.Duration
	Probe       *ProbeReport
	Errors      []string
	// LifeStartUs is, per node, when its final process started (Unix µs)
	// if chaos restarted it, else 0. A time the node reports from that
	// life (>= it) for an item created before it is a replay or catch-up
	// time, not a propagation time; nil means no restarts.
	LifeStartUs []int64
	// Down marks nodes that were down at the end (a failed chaos
	// restart): coverage and tips are judged without them. nil: none.
	Down []bool
	// Chaos is the chaos summary (Analyze adds HeldAfterRestart); nil
	// without chaos.
	Chaos *ChaosReport

	VirtualTime  bool
	CPUModel     *node.CPUModel
	Seed         string
	WallS        float64
	PeakRSSBytes int64
	// NodesCPU is the node processes' CPU time over the workload and
	// LoadCPU the load generator's (this process); zero when not measured.
	NodesCPU, LoadCPU time.Duration
}

// ItemResult is one tx or block with its first-seen time at every node,
// the rows of the CSV and the points of the plots.
type ItemResult struct {
	Kind     string // "tx" or "block"
	ID       chain.Hash
	Height   uint64 // blocks only
	Origin   int
	OriginUs int64   // acceptance (tx) or production (block) time, Unix µs
	SeenUs   []int64 // per node; 0 = never seen
	// ViaBlock marks nodes where a tx's time is that of the block that
	// carried it (the node never had it in its mempool, or saw the block
	// first).
	ViaBlock []bool
	// AfterRestart marks nodes that hold the item but restarted (chaos)
	// after it was created: SeenUs is nonzero, yet no propagation time,
	// so they have no latency. nil: none.
	AfterRestart []bool
	// Down marks nodes down at the end of the run (shared by all items),
	// which coverage leaves out. nil: none.
	Down []bool
}

// LatencyMs returns the latency at node i in ms and whether node i has
// one: it saw the item, and not only after a restart.
func (it *ItemResult) LatencyMs(i int) (float64, bool) {
	if it.SeenUs[i] == 0 || it.afterRestart(i) {
		return 0, false
	}
	return float64(it.SeenUs[i]-it.OriginUs) / 1000, true
}

// ReachedAll reports whether every node (that was up at the end) saw the
// item.
func (it *ItemResult) ReachedAll() bool {
	for i, t := range it.SeenUs {
		if t == 0 && !it.down(i) {
			return false
		}
	}
	return true
}

func (it *ItemResult) afterRestart(i int) bool { return i < len(it.AfterRestart) && it.AfterRestart[i] }
func (it *ItemResult) down(i int) bool         { return i < len(it.Down) && it.Down[i] }

// TimeToAllMs returns the largest latency over nodes (meaningful only
// when ReachedAll).
func (it *ItemResult) TimeToAllMs() float64 {
	var m float64
	for i := range it.SeenUs {
		if l, ok := it.LatencyMs(i); ok && l > m {
			m = l
		}
	}
	return m
}

// Analysis is the result of Analyze: the report and the per-item data
// behind it.
type Analysis struct {
	Report *Report
	Txs    []ItemResult
	Blocks []ItemResult // in-window blocks only
}

// maxItemErrors caps how many individual items missing nodes the report
// lists; past it, one line counts the rest (the CSV has them all).
const maxItemErrors = 20

// Analyze computes the report from observations. It is pure: same input,
// same output.
func Analyze(o *Observations) *Analysis {
	r := &Report{
		Nodes:        o.Nodes,
		Mode:         o.Mode,
		BlockRelay:   o.BlockRelay,
		TxRelay:      o.TxRelay,
		MeshDegree:   o.MeshDegree,
		PrefillAgeMs: roundUs(ms(o.PrefillAge)),
		DurationS:    math.Round(o.Duration.Seconds()*1000) / 1000,
		LatencyMs:    roundUs(float64(o.Latency) / float64(time.Millisecond)),
		VirtualTime:  o.VirtualTime,
		CPUModel:     o.CPUModel,
		Seed:         o.Seed,
		WallS:        math.Round(o.WallS*100) / 100,
		PeakRSSBytes: o.PeakRSSBytes,
		Errors:       append([]string{}, o.Errors...),
	}
	a := &Analysis{Report: r}

	// Which block carried each tx, for nodes that learned a tx from a block.
	txBlock := make(map[chain.Hash]chain.Hash)
	for _, b := range o.Blocks {
		for _, id := range b.Txs {
			txBlock[id] = b.ID
		}
	}
	seen := func(m []map[chain.Hash]int64, node int, id chain.Hash) int64 {
		if node < len(m) && m[node] != nil {
			return m[node][id]
		}
		return 0
	}
	// A node's time t for an item created at origin is a propagation time
	// unless the node restarted after the item was created and t is from
	// its final life: then it was replayed, synced, or only found there.
	life := func(node int) int64 {
		if node < len(o.LifeStartUs) {
			return o.LifeStartUs[node]
		}
		return 0
	}
	valid := func(node int, t, origin int64) bool {
		l := life(node)
		return l == 0 || t < l || origin >= l
	}
	held := 0
	newItem := func(kind string, id chain.Hash, origin int) ItemResult {
		it := ItemResult{Kind: kind, ID: id, Origin: origin, SeenUs: make([]int64, o.Nodes), ViaBlock: make([]bool, o.Nodes), Down: o.Down}
		if o.LifeStartUs != nil {
			it.AfterRestart = make([]bool, o.Nodes)
		}
		return it
	}
	// markRestarts flags the nodes whose time is no propagation time.
	markRestarts := func(it *ItemResult) {
		if it.AfterRestart == nil {
			return
		}
		for n, t := range it.SeenUs {
			if n != it.Origin && t != 0 && !valid(n, t, it.OriginUs) {
				it.AfterRestart[n] = true
				held++
			}
		}
	}

	// Transactions.
	r.Txs.Submitted = o.Submitted
	r.Txs.Accepted = len(o.Txs)
	r.Txs.Unconfirmed = o.Unconfirmed
	r.Loss = o.Loss
	if r.DurationS > 0 {
		r.Txs.AcceptedPerS = math.Round(float64(len(o.Txs))/o.Duration.Seconds()*10) / 10
	}
	if o.NodesCPU > 0 {
		r.CPU = &CPUReport{NodesS: math.Round(o.NodesCPU.Seconds()*1000) / 1000, LoadS: math.Round(o.LoadCPU.Seconds()*1000) / 1000}
		if len(o.Txs) > 0 {
			r.CPU.PerAcceptedTxUs = math.Round(float64(o.NodesCPU.Microseconds())/float64(len(o.Txs))*10) / 10
		}
	}
	var floors *floorCache
	if o.Mode != ModeProcess && o.Graph != nil {
		lat := o.LinkLatency
		if lat == nil {
			lat = func(int, int) time.Duration { return o.Latency }
		}
		floors = newFloorCache(&Overlay{Conn: o.Graph, TxMesh: o.TxMesh, BlockMesh: o.BlockMesh, Latency: lat})
	}
	var txFloors, blockFloors, connFloors []time.Duration
	unreachable := 0
	var txT2A, txArr []float64
	var txOwn, blockOwn []float64 // time to all over the item's own mesh floor
	noOrigin := 0
	for _, tx := range o.Txs {
		var own time.Duration
		if floors != nil && o.TxMesh != nil {
			if f, ok := floors.meshFloor(0, tx.Origin); ok {
				txFloors = append(txFloors, f)
				own = f
			} else {
				unreachable++
			}
		}
		it := newItem("tx", tx.ID, tx.Origin)
		blk, inBlock := txBlock[tx.ID]
		for n := 0; n < o.Nodes; n++ {
			t := seen(o.TxSeen, n, tx.ID)
			if inBlock {
				if bt := seen(o.BlockSeen, n, blk); bt != 0 && (t == 0 || bt < t) {
					t = bt
					it.ViaBlock[n] = true
				}
			}
			it.SeenUs[n] = t
		}
		it.OriginUs = seen(o.TxSeen, tx.Origin, tx.ID)
		restartedSince := life(tx.Origin) != 0 && tx.SentUs < life(tx.Origin)
		switch {
		case it.OriginUs != 0 && valid(tx.Origin, it.OriginUs, tx.SentUs):
		case it.OriginUs == 0 && !restartedSince:
			noOrigin++ // its RPC node should know it
			it.OriginUs = tx.SentUs
		default:
			// Its RPC node restarted after accepting it: its time there
			// was lost, or is the replay from the own-tx journal.
			it.OriginUs = tx.SentUs
		}
		it.SeenUs[tx.Origin] = it.OriginUs
		it.ViaBlock[tx.Origin] = false
		markRestarts(&it)
		collect(&it, &txArr)
		if it.ReachedAll() {
			r.Txs.ReachedAll++
			txT2A = append(txT2A, it.TimeToAllMs())
			if own > 0 {
				txOwn = append(txOwn, it.TimeToAllMs()/ms(own))
			}
		}
		a.Txs = append(a.Txs, it)
	}
	r.Txs.TimeToAllMs = Summarize(txT2A)
	r.Txs.ArrivalMs = Summarize(txArr)
	if noOrigin > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d txs had no first-seen time at their RPC node; used the client's acceptance time", noOrigin))
	}

	// Blocks.
	var blT2A, blArr []float64
	noOrigin = 0
	for _, b := range o.Blocks {
		if !b.InWindow {
			continue
		}
		it := newItem("block", b.ID, b.Origin)
		it.Height = b.Height
		for n := 0; n < o.Nodes; n++ {
			it.SeenUs[n] = seen(o.BlockSeen, n, b.ID)
		}
		it.OriginUs = it.SeenUs[b.Origin]
		if it.OriginUs == 0 {
			noOrigin++
			it.OriginUs = b.HeaderUs
			it.SeenUs[b.Origin] = b.HeaderUs
		}
		markRestarts(&it)
		collect(&it, &blArr)
		r.Blocks.Produced++
		var own time.Duration
		if floors != nil && o.BlockMesh != nil {
			own, _ = floors.meshFloor(1, b.Origin)
		}
		if it.ReachedAll() {
			r.Blocks.ReachedAll++
			blT2A = append(blT2A, it.TimeToAllMs())
			if own > 0 {
				blockOwn = append(blockOwn, it.TimeToAllMs()/ms(own))
			}
		}
		if floors != nil {
			if f, ok := floors.connFloor(b.Origin); ok {
				connFloors = append(connFloors, f)
			} else {
				unreachable++
			}
			if o.BlockMesh != nil {
				if f, ok := floors.meshFloor(1, b.Origin); ok {
					blockFloors = append(blockFloors, f)
				} else {
					unreachable++
				}
			}
		}
		a.Blocks = append(a.Blocks, it)
	}
	r.Blocks.TimeToAllMs = Summarize(blT2A)
	r.Blocks.ArrivalMs = Summarize(blArr)
	if noOrigin > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d blocks had no first-seen time at their proposer; used the header time", noOrigin))
	}
	r.Errors = append(r.Errors, coverageErrors(a.Txs, o.Nodes)...)
	r.Errors = append(r.Errors, coverageErrors(a.Blocks, o.Nodes)...)
	if o.Chaos != nil {
		c := *o.Chaos
		c.HeldAfterRestart = held
		r.Chaos = &c
		r.Errors = append(r.Errors, chaosErrors(&c)...)
	}

	// Floors and ratios.
	if unreachable > 0 {
		r.Errors = append(r.Errors, fmt.Sprintf("%d items have no propagation floor: some node is out of reach on the connection graph or the topic mesh", unreachable))
	}
	r.FloorMs = medianMs(blockFloors)
	r.FloorConnMs = medianMs(connFloors)
	r.TxFloorMs = medianMs(txFloors)
	r.Ratios = ratios(r, r.FloorMs, r.TxFloorMs)
	r.RatiosConn = ratios(r, r.FloorConnMs, r.FloorConnMs)
	r.RatiosOwnFloor = ownRatios(blockOwn, txOwn)
	r.Probe = o.Probe
	if o.Mode != ModeProcess && o.Graph != nil {
		var degs []float64
		d := &DegreeReport{}
		for _, adj := range o.Graph {
			degs = append(degs, float64(len(adj)))
			d.Max = max(d.Max, len(adj))
		}
		d.P50 = Median(degs)
		r.Degree = d
		if d.Max >= node.DefaultConnHighWater {
			r.Errors = append(r.Errors, fmt.Sprintf("a node held %d connections, at or above rumor's high watermark %d, which real hosts enforce", d.Max, node.DefaultConnHighWater))
		}
	}

	// Heads.
	r.Heads.Heights = make([]uint64, len(o.Heads))
	r.Heads.SameTip = false
	ref := -1 // the first node up at the end
	for i, h := range o.Heads {
		r.Heads.Heights[i] = h.Height
		if i < len(o.Down) && o.Down[i] {
			continue
		}
		if ref < 0 {
			ref = i
			r.Heads.SameTip = true
		}
		if h.ID.IsZero() || h.ID != o.Heads[ref].ID {
			r.Heads.SameTip = false
		}
	}
	if !r.Heads.SameTip && len(o.Heads) > 0 {
		r.Errors = append(r.Errors, "nodes ended on different tips: "+describeHeads(o.Heads))
	}

	// Bytes and duplicates.
	var in, out, blocks []float64
	var bodies int64
	for _, s := range o.Stats {
		blocks = append(blocks, float64(s.BlockBytesIn))
		in = append(in, float64(s.BytesIn))
		out = append(out, float64(s.BytesOut))
		r.Bytes.AnnounceBytes += s.AnnounceBytesIn
		r.Bytes.BodyBytes += s.BodyBytesIn
		r.Bytes.ReconcileBytes += s.ReconcileBytesIn
		r.Bytes.GossipOverheadBytes += s.OverheadBytesIn
		r.Bytes.TxAnnounceBytes += s.TxAnnounceIn
		r.Bytes.TxBodyBytes += s.TxBodyIn
		r.Bytes.TxAnnounceWireBytes += s.TxAnnounceWireIn
		bodies += s.BodiesReceived
		r.Blocks.TxnNeeded += s.BlockTxnNeeded
		r.Blocks.TxnFromPool += s.BlockTxnFromPool
	}
	if b := float64(r.Bytes.TxBodyBytes); b > 0 {
		r.Bytes.TxAnnounceShare = math.Round(float64(r.Bytes.TxAnnounceBytes)/b*1000) / 1000
		r.Bytes.TxAnnounceShareEnveloped = math.Round(float64(r.Bytes.TxAnnounceWireBytes)/b*1000) / 1000
		r.Bytes.TxAnnounceShareFramed = math.Round(float64(r.Bytes.TxAnnounceBytes+r.Bytes.GossipOverheadBytes)/b*1000) / 1000
	}
	if r.Bytes.BodyBytes > 0 {
		share := float64(r.Bytes.AnnounceBytes+r.Bytes.GossipOverheadBytes) / float64(r.Bytes.BodyBytes)
		r.Bytes.AnnounceShareOfBodies = math.Round(share*1000) / 1000
	}
	r.Bytes.PerNodeInMedian = Median(in)
	r.Bytes.BlockPerNodeMedian = Median(blocks)
	r.Bytes.PerNodeOutMedian = Median(out)
	if o.BodyItems > 0 && o.Nodes > 1 {
		r.DuplicatesPerBody = math.Round(float64(bodies)/float64(o.BodyItems*(o.Nodes-1))*1000) / 1000
	}
	return a
}

// ratios divides the report's times to all by the block and tx floors;
// nil without a block floor.
func ratios(r *Report, block, tx *float64) *Ratios {
	if block == nil || *block <= 0 {
		return nil
	}
	div := func(a float64, f *float64) float64 {
		if f == nil || *f <= 0 {
			return 0
		}
		return math.Round(a / *f * 1000) / 1000
	}
	return &Ratios{
		BlockP50: div(r.Blocks.TimeToAllMs.P50, block),
		BlockP99: div(r.Blocks.TimeToAllMs.P99, block),
		TxP50:    div(r.Txs.TimeToAllMs.P50, tx),
		TxP99:    div(r.Txs.TimeToAllMs.P99, tx),
	}
}

// ownRatios summarizes per-item ratios to their own floors (nil when no
// item has one).
func ownRatios(block, tx []float64) *Ratios {
	if len(block) == 0 && len(tx) == 0 {
		return nil
	}
	round := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	slices.Sort(block)
	slices.Sort(tx)
	return &Ratios{
		BlockP50: round(Percentile(block, 50)),
		BlockP99: round(Percentile(block, 99)),
		TxP50:    round(Percentile(tx, 50)),
		TxP99:    round(Percentile(tx, 99)),
	}
}

// collect appends the item's non-origin latencies to arr.
func collect(it *ItemResult, arr *[]float64) {
	for n := range it.SeenUs {
		if n == it.Origin {
			continue
		}
		if l, ok := it.LatencyMs(n); ok {
			*arr = append(*arr, l)
		}
	}
}

func coverageErrors(items []ItemResult, nodes int) []string {
	var errs []string
	missing := 0
	for i := range items {
		it := &items[i]
		if it.ReachedAll() {
			continue
		}
		missing++
		if missing > maxItemErrors {
			continue
		}
		have, up := 0, 0
		var lacking []int
		for n, t := range it.SeenUs {
			if it.down(n) {
				continue
			}
			up++
			if t != 0 {
				have++
			} else if len(lacking) < 8 {
				lacking = append(lacking, n)
			}
		}
		errs = append(errs, fmt.Sprintf("%s %s (origin node %d) reached %d/%d nodes; missing at nodes %v",
			it.Kind, it.ID.Short(), it.Origin, have, up, lacking))
	}
	if missing > maxItemErrors {
		errs = append(errs, fmt.Sprintf("... and %d more %ss that missed nodes (see first_seen.csv)", missing-maxItemErrors, items[0].Kind))
	}
	return errs
}

func describeHeads(heads []HeadObs) string {
	groups := make(map[chain.Hash][]int)
	var order []chain.Hash
	for i, h := range heads {
		if _, ok := groups[h.ID]; !ok {
			order = append(order, h.ID)
		}
		groups[h.ID] = append(groups[h.ID], i)
	}
	s := ""
	for i, id := range order {
		if i > 0 {
			s += "; "
		}
		nodes := groups[id]
		name := id.Short()
		if id.IsZero() {
			name = "no answer"
		}
		s += fmt.Sprintf("%s at height %d on nodes %v", name, heads[nodes[0]].Height, nodes)
	}
	return s
}

// OK reports whether the run met its bar: every accepted tx and every
// produced block reached every node (up at the end), all those nodes
// ended on one tip, and, with chaos, every killed node came back and
// caught up.
func (r *Report) OK() bool {
	return r.Txs.ReachedAll == r.Txs.Accepted && r.Blocks.ReachedAll == r.Blocks.Produced && r.Heads.SameTip &&
		r.Chaos.ok()
}
