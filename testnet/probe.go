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
// mesh floor, computed on the mesh as it stood just before the publish.
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
	// TimeToAllMs is the distribution over probes of the latest arrival.
	TimeToAllMs Percentiles `json:"time_to_all_ms"`
	// FloorMs is the median over probes of their mesh floor.
	FloorMs float64 `json:"floor_ms"`
	// RatioP50, RatioMin and RatioMax summarise, over probes, time to all
	// over that probe's own floor. The simulator is right when the median
	// is within 1.0-1.3 and no probe beats its floor (RatioMin >= 1).
	RatioP50 float64 `json:"ratio_p50"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
}

// OK reports whether every probe reached every node, none faster than
// its mesh floor, with the median within 1.3x of it.
func (p *ProbeReport) OK() bool {
	return p != nil && p.Messages > 0 && p.ReachedAll == p.Messages && p.RatioMin >= 0.999 && p.RatioP50 <= 1.3
}

// probeArrivals records when each node first saw each probe.
type probeArrivals struct {
	mu      sync.Mutex
	at      [][]time.Time // [probe][node]
	missing []int         // per probe: nodes not reached yet
	done    []chan struct{}
}

func newProbeArrivals(probes, nodes int) *probeArrivals {
	a := &probeArrivals{at: make([][]time.Time, probes), missing: make([]int, probes), done: make([]chan struct{}, probes)}
	for k := range probes {
		a.at[k] = make([]time.Time, nodes)
		a.missing[k] = nodes
		a.done[k] = make(chan struct{})
	}
	return a
}

func (a *probeArrivals) mark(k, node int, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k < 0 || k >= len(a.at) || node < 0 || node >= len(a.at[k]) || !a.at[k][node].IsZero() {
		return
	}
	a.at[k][node] = t
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
	topics := make([]transport.Topic, n)
	defer func() {
		for _, t := range topics {
			if t != nil {
				_ = t.Close()
			}
		}
	}()
	for i, tr := range trs {
		t, err := tr.Join(probeTopic, transport.TopicConfig{Validate: func(_ context.Context, _ transport.PeerID, data []byte) transport.Validation {
			if len(data) != 8 {
				return transport.Reject
			}
			arr.mark(int(binary.BigEndian.Uint64(data)), i, time.Now())
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
	index := nodeIndex(peerIDs)
	rep := &ProbeReport{Messages: count}
	var t2a, floors, ratios []float64
	for k := range count {
		mesh := make([][]int, n)
		for i, t := range topics {
			for _, p := range t.Mesh() {
				if j, ok := index[string(p)]; ok {
					mesh[i] = append(mesh[i], j)
				}
			}
		}
		origin := rng.IntN(n)
		floor, ok := Floor(origin, nil, mesh, lat)
		msg := binary.BigEndian.AppendUint64(nil, uint64(k))
		start := time.Now()
		arr.mark(k, origin, start)
		if err := topics[origin].Publish(ctx, msg); err != nil {
			return nil, fmt.Errorf("probe %d: publish at node %d: %w", k, origin, err)
		}
		select {
		case <-arr.done[k]:
		case <-time.After(probeTimeout):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		arr.mu.Lock()
		reached := arr.missing[k] == 0
		last := start
		for _, t := range arr.at[k] {
			if t.After(last) {
				last = t
			}
		}
		arr.mu.Unlock()
		if reached {
			rep.ReachedAll++
			ms := float64(last.Sub(start)) / float64(time.Millisecond)
			t2a = append(t2a, ms)
			if ok && floor > 0 {
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
