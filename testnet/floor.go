package testnet

import (
	"container/heap"
	"slices"
	"time"
)

// Floors: how fast an item could possibly reach every node.
//
// GossipSub forwards a message only over each node's mesh for the topic
// (D..2D peers: 6..12 by default, --mesh-degree), the origin included: go-libp2p-pubsub v0.19 leaves
// flood publishing off unless WithFloodPublish turns it on, and rumor does
// not (a node with flood publishing would send its own messages to every
// connected subscriber; Floor's first argument models that). The mesh
// floor of an item is therefore the latest arrival, over all nodes, on the
// fastest path over mesh edges, each edge costing its link's one-way
// latency. The connection-graph floor lets every hop use
// any connection: no protocol on this overlay can beat it. Both are
// computed on the graphs as they stood when the run ended (meshes change
// a little at every heartbeat).

// Overlay is what the floors are computed on: the connection graph and
// each topic's mesh, by node index, and the link latencies.
type Overlay struct {
	// Conn is the undirected connection graph.
	Conn [][]int
	// TxMesh and BlockMesh are the directed mesh graphs of the tx and
	// block topics: TxMesh[u] lists the peers u forwards txs to.
	TxMesh, BlockMesh [][]int
	// Latency is a link's one-way latency.
	Latency func(u, v int) time.Duration
}

// Floor returns the time a message published at origin needs to reach
// every node when origin sends it over first and every node forwards it
// over out, each edge costing lat; ok is false when some node is out of
// reach. It is Dijkstra's algorithm with a binary heap: O(E log N).
func Floor(origin int, first []int, out [][]int, lat func(u, v int) time.Duration) (floor time.Duration, ok bool) {
	n := len(out)
	if origin < 0 || origin >= n {
		return 0, false
	}
	const unreached = time.Duration(-1)
	dist := make([]time.Duration, n)
	for i := range dist {
		dist[i] = unreached
	}
	dist[origin] = 0
	q := &distHeap{}
	relax := func(u int, vs []int) {
		for _, v := range vs {
			if v < 0 || v >= n || v == u {
				continue
			}
			d := dist[u] + lat(u, v)
			if dist[v] == unreached || d < dist[v] {
				dist[v] = d
				heap.Push(q, distItem{v, d})
			}
		}
	}
	relax(origin, first)
	relax(origin, out[origin])
	for q.Len() > 0 {
		it := heap.Pop(q).(distItem)
		if it.d != dist[it.node] {
			continue // stale entry
		}
		relax(it.node, out[it.node])
	}
	for _, d := range dist {
		if d == unreached {
			return 0, false
		}
		floor = max(floor, d)
	}
	return floor, true
}

type distItem struct {
	node int
	d    time.Duration
}

type distHeap []distItem

func (h distHeap) Len() int           { return len(h) }
func (h distHeap) Less(i, j int) bool { return h[i].d < h[j].d }
func (h distHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *distHeap) Push(x any)        { *h = append(*h, x.(distItem)) }
func (h *distHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// floorCache computes each origin's floors once: at 1000 nodes a run has
// thousands of items but at most 1000 origins.
type floorCache struct {
	ov   *Overlay
	mesh map[[2]int]floorResult // (topic 0 tx / 1 block, origin)
	conn map[int]floorResult
}

type floorResult struct {
	d  time.Duration
	ok bool
}

func newFloorCache(ov *Overlay) *floorCache {
	return &floorCache{ov: ov, mesh: make(map[[2]int]floorResult), conn: make(map[int]floorResult)}
}

// meshFloor is the mesh floor of an item of topic (0 tx, 1 block) published at origin.
func (c *floorCache) meshFloor(topic, origin int) (time.Duration, bool) {
	k := [2]int{topic, origin}
	if r, ok := c.mesh[k]; ok {
		return r.d, r.ok
	}
	out := c.ov.TxMesh
	if topic == 1 {
		out = c.ov.BlockMesh
	}
	var r floorResult
	if origin >= 0 && origin < len(c.ov.Conn) && len(out) == len(c.ov.Conn) {
		r.d, r.ok = Floor(origin, nil, out, c.ov.Latency)
	}
	c.mesh[k] = r
	return r.d, r.ok
}

// connFloor is the connection-graph floor of an item published at origin.
func (c *floorCache) connFloor(origin int) (time.Duration, bool) {
	if r, ok := c.conn[origin]; ok {
		return r.d, r.ok
	}
	var r floorResult
	r.d, r.ok = Floor(origin, nil, c.ov.Conn, c.ov.Latency)
	c.conn[origin] = r
	return r.d, r.ok
}

// medianMs returns the lower median of ds in milliseconds (a floor that
// some item really has), rounded to microseconds, or nil (JSON null) for
// none.
func medianMs(ds []time.Duration) *float64 {
	if len(ds) == 0 {
		return nil
	}
	slices.Sort(ds)
	m := roundUs(float64(ds[(len(ds)-1)/2]) / float64(time.Millisecond))
	return &m
}
