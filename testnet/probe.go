package testnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"
)

// The probe is the simulator's self-check. Before the workload, every sim
// node joins one extra GossipSub topic with an accept-all validator and
// the testnet publishes Config.Probe tiny messages on it, one at a time
// from random nodes. Nothing of rumor's relay is involved (no batching,
// no fetches, no CPU model): the message travels by GossipSub push over
// the simulated links only, so its time to all must land at the topic's
// mesh floor: computed on the mesh links present both just before the
// publish and once every node has it, a lower bound on any delivery over
// the mesh. Heartbeats graft and prune while a probe is under way; when a
// node got its first copy over a link outside that stable mesh (a link
// grafted mid-way, or IHAVE/IWANT gossip after a prune), the probe
// measured GossipSub's mesh maintenance, not the links, and is counted as
// disturbed instead of compared with the floor.
// A ratio well above 1 means the simulator (links, scheduling, virtual
// time) adds delay of its own, and no figure of that run can be trusted.

const (
	// probeTopic is the self-check's GossipSub topic.
	probeTopic = "/rumor/probe/1"
	// probeMeshWait lets the probe topic's meshes form: subscriptions
	// spread in one link latency, and GossipSub's heartbeat (1 s) grafts
	// up to D peers; three heartbeats fill every mesh.
	probeMeshWait = 4 * time.Second
	// probeTimeout bounds the wait for one probe to reach every node.
	probeTimeout = 10 * time.Second
	// probeGap separates probes, so one never queues behind another.
	probeGap = 200 * time.Millisecond
)

// ProbeReport is report.json's "probe" object: plain GossipSub push of a
// tiny message on the simulated network, against its mesh floor.
type ProbeReport struct {
	// Messages counts probes published; ReachedAll those every node got.
	Messages   int `json:"messages"`
	ReachedAll int `json:"reached_all"`
	// Disturbed counts probes that reached all but took a link outside
	// the stable mesh; they are left out of FloorMs and the ratios.
	Disturbed int `json:"disturbed"`
	// TimeToAllMs is the distribution over probes of the latest arrival.
	TimeToAllMs Percentiles `json:"time_to_all_ms"`
	// FloorMs is the median over probes of their mesh floor.
	FloorMs float64 `json:"floor_ms"`
	// RatioP50, RatioMin and RatioMax summarise, over undisturbed probes,
	// time to all over that probe's own floor. The simulator is right when the median
	// is within 1.0-1.3 and no probe beats its floor (RatioMin >= 1).
	RatioP50 float64 `json:"ratio_p50"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
}

// OK reports whether every probe reached every node and at least half of
// them undisturbed, none faster than its mesh floor, with the median
// within 1.3x of it.
func (p *ProbeReport) OK() bool {
	return p != nil && p.Messages > 0 && p.ReachedAll == p.Messages && 2*p.Disturbed <= p.Messages &&
		p.RatioMin >= 0.999 && p.RatioP50 <= 1.3
}

// probeArrivals records when each node first saw each probe.
type probeArrivals struct {
	mu      sync.Mutex
	at      [][]time.Time // [probe][node]
	from    [][]int       // [probe][node]: the node it first came from, or -1
	missing []int         // per probe: nodes not reached yet
	done    []chan struct{}
}

func newProbeArrivals(probes, nodes int) *probeArrivals {
	a := &probeArrivals{at: make([][]time.Time, probes), from: make([][]int, probes), missing: make([]int, probes),
		done: make([]chan struct{}, probes)}
	for k := range probes {
		a.at[k] = make([]time.Time, nodes)
		a.from[k] = make([]int, nodes)
		a.missing[k] = nodes
		a.done[k] = make(chan struct{})
	}
	return a
}

// mark records node's first copy of probe k at t, received from node
// from (-1 for the origin or an unknown peer).
func (a *probeArrivals) mark(k, node, from int, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k < 0 || k >= len(a.at) || node < 0 || node >= len(a.at[k]) || !a.at[k][node].IsZero() {
		return
	}
	a.at[k][node] = t
	a.from[k][node] = from
	if a.missing[k]--; a.missing[k] == 0 {
		close(a.done[k])
	}
}

// runProbe runs the self-check on the nodes' transports (by node index;
// peerIDs[i] is node i's id) and returns its report. lat is the link
// latency by node index.
func runProbe(ctx context.Context, trs []transport.Transport, peerIDs []string, count int, rng *mrand.Rand,
	lat func(u, v int) time.Duration) (*ProbeReport, error) {
	n := len(trs)
	arr := newProbeArrivals(count, n)
	index := nodeIndex(peerIDs)
	topics := make([]transport.Topic, n)
	defer func() {
		for _, t := range topics {
			if t != nil {
				_ = t.Close()
			}
		}
	}()
	for i, tr := range trs {
		t, err := tr.Join(probeTopic, transport.TopicConfig{Validate: func(_ context.Context, from transport.PeerID, data []byte) transport.Validation {
			if len(data) != 8 {
				return transport.Reject
			}
			j, ok := index[string(from)]
			if !ok {
				j = -1
			}
			arr.mark(int(binary.BigEndian.Uint64(data)), i, j, time.Now())
			return transport.Accept
		}})
		if err != nil {
			return nil, fmt.Errorf("probe: node %d: %w", i, err)
		}
		topics[i] = t
	}
	if err := sleepCtx(ctx, probeMeshWait); err != nil {
		return nil, err
	}
	rep := &ProbeReport{Messages: count}
	var t2a, floors, ratios []float64
	for k := range count {
		before := readProbeMesh(topics, index)
		origin := rng.IntN(n)
		msg := binary.BigEndian.AppendUint64(nil, uint64(k))
		start := time.Now()
		arr.mark(k, origin, -1, start)
		if err := topics[origin].Publish(ctx, msg); err != nil {
			return nil, fmt.Errorf("probe %d: publish at node %d: %w", k, origin, err)
		}
		select {
		case <-arr.done[k]:
		case <-time.After(probeTimeout):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// The stable mesh: links present before the publish and after.
		mesh := readProbeMesh(topics, index)
		for u := range mesh {
			mesh[u] = slices.DeleteFunc(mesh[u], func(v int) bool { return !slices.Contains(before[u], v) })
		}
		arr.mu.Lock()
		reached := arr.missing[k] == 0
		last, disturbed := start, false
		for v, t := range arr.at[k] {
			if t.After(last) {
				last = t
			}
			if u := arr.from[k][v]; v != origin && (u < 0 || !slices.Contains(mesh[u], v)) {
				disturbed = true
			}
		}
		arr.mu.Unlock()
		if reached {
			rep.ReachedAll++
			ms := float64(last.Sub(start)) / float64(time.Millisecond)
			t2a = append(t2a, ms)
			floor, ok := Floor(origin, nil, mesh, lat)
			if disturbed {
				rep.Disturbed++
			} else if ok && floor > 0 {
				f := float64(floor) / float64(time.Millisecond)
				floors = append(floors, f)
				ratios = append(ratios, ms/f)
			}
		}
		if err := sleepCtx(ctx, probeGap); err != nil {
			return nil, err
		}
	}
	rep.TimeToAllMs = Summarize(t2a)
	rep.FloorMs = roundUs(Median(floors))
	if len(ratios) > 0 {
		rep.RatioP50 = math.Round(Median(ratios)*1000) / 1000
		rep.RatioMin = math.Round(slices.Min(ratios)*1000) / 1000
		rep.RatioMax = math.Round(slices.Max(ratios)*1000) / 1000
	}
	return rep, nil
}

// readProbeMesh returns every node's mesh of the probe topic by node index.
func readProbeMesh(topics []transport.Topic, index map[string]int) [][]int {
	mesh := make([][]int, len(topics))
	for i, t := range topics {
		for _, p := range t.Mesh() {
			if j, ok := index[string(p)]; ok {
				mesh[i] = append(mesh[i], j)
			}
		}
	}
	return mesh
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
