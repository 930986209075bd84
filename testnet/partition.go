package testnet

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// PartitionReport describes a sim run's partition and how the txs
// submitted during it spread after the heal.
type PartitionReport struct {
	// Nodes is how many nodes were cut off from the rest.
	Nodes int `json:"nodes"`
	// AtMs and ForMs place the partition in the workload (ms after its
	// start) and say how long it lasted.
	AtMs  float64 `json:"at_ms"`
	ForMs float64 `json:"for_ms"`
	// LinksCut is how many connections the partition closed (and the heal
	// dialled again).
	LinksCut int `json:"links_cut"`
	// TxsDuring is how many txs were accepted while it lasted, and
	// ReachedAll how many of those reached every node.
	TxsDuring  int `json:"txs_during"`
	ReachedAll int `json:"reached_all"`
	// HealToAllMs is, over the txs accepted during the partition that
	// reached every node, how long after the heal the last node had each.
	HealToAllMs Percentiles `json:"heal_to_all_ms"`
}

// partitionRun is a partition in progress: which nodes are cut off, and
// when it started and healed (zero until then).
type partitionRun struct {
	side          []bool
	start, healed time.Time
	cut           int
	done          chan struct{}
}

// partitionSide draws round(fraction*n) nodes from the seed, never all or
// none when the fraction asks for some.
func partitionSide(n int, fraction float64, seed string) []bool {
	k := min(max(int(fraction*float64(n)+0.5), 1), n-1)
	rng := rand.New(rand.NewPCG(seed64(seed+"/partition"), 0))
	side := make([]bool, n)
	for _, i := range rng.Perm(n)[:k] {
		side[i] = true
	}
	return side
}

// startPartition cuts the drawn nodes off from the rest at wStart+at:
// every link between the two sides is removed from the mock network (so
// nobody can dial across) and every connection across is closed. After
// dur it links them again and dials again every pair that was connected,
// as peers redial when a network heals.
func (sc *simCluster) startPartition(ctx context.Context, cfg *Config, wStart time.Time) *partitionRun {
	p := &partitionRun{side: partitionSide(len(sc.nodes), cfg.Partition, cfg.Seed), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		if !sleepUntil(ctx, wStart.Add(cfg.PartitionAt)) {
			return
		}
		hosts := sc.mn.Hosts()
		byID := make(map[peer.ID]int, len(sc.nodes))
		for i, n := range sc.nodes {
			byID[n.ID()] = i
		}
		type pair struct{ a, b peer.ID }
		var cut []pair
		for _, h := range hosts {
			i, ok := byID[h.ID()]
			if !ok || !p.side[i] {
				continue
			}
			for _, other := range hosts {
				j, ok := byID[other.ID()]
				if !ok || p.side[j] {
					continue
				}
				if h.Network().Connectedness(other.ID()) == network.Connected {
					cut = append(cut, pair{h.ID(), other.ID()})
				}
				_ = sc.mn.UnlinkPeers(h.ID(), other.ID())
				_ = sc.mn.DisconnectPeers(h.ID(), other.ID())
			}
		}
		p.start, p.cut = time.Now(), len(cut)
		log.Infof("partition: %d nodes cut off, %d connections closed", countTrue(p.side), len(cut))
		if !sleepUntil(ctx, p.start.Add(cfg.PartitionFor)) {
			return
		}
		for _, h := range hosts {
			i, ok := byID[h.ID()]
			if !ok || !p.side[i] {
				continue
			}
			for _, other := range hosts {
				if j, ok := byID[other.ID()]; ok && !p.side[j] {
					_, _ = sc.mn.LinkPeers(h.ID(), other.ID())
				}
			}
		}
		p.healed = time.Now()
		// Every cut pair redials at once, as peers would on their own;
		// a serial redial would measure this loop, not the relay.
		var wg sync.WaitGroup
		for _, c := range cut {
			wg.Go(func() {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				_ = sc.mn.Host(c.a).Connect(dctx, peer.AddrInfo{ID: c.b, Addrs: sc.mn.Host(c.b).Addrs()})
			})
		}
		wg.Wait()
		log.Infof("partition healed: %d connections dialled again in %v", len(cut), time.Since(p.healed))
	}()
	return p
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// report measures the txs accepted while the partition lasted.
func (p *partitionRun) report(cfg *Config, txs []ItemResult) *PartitionReport {
	r := &PartitionReport{Nodes: countTrue(p.side), AtMs: ms(cfg.PartitionAt), ForMs: ms(cfg.PartitionFor), LinksCut: p.cut}
	if p.start.IsZero() || p.healed.IsZero() {
		return r
	}
	from, to, heal := p.start.UnixMicro(), p.healed.UnixMicro(), p.healed.UnixMicro()
	var after []float64
	for i := range txs {
		it := &txs[i]
		if it.OriginUs < from || it.OriginUs >= to {
			continue
		}
		r.TxsDuring++
		if !it.ReachedAll() {
			continue
		}
		r.ReachedAll++
		last := slices.Max(it.SeenUs)
		after = append(after, max(0, float64(last-heal)/1000))
	}
	r.HealToAllMs = Summarize(after)
	return r
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// printPartition writes the partition line of the text report.
func printPartition(w io.Writer, p *PartitionReport) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "partition: %d nodes cut off at %.1f s for %.1f s (%d connections); %d of %d txs accepted during it reached all, heal to all p50 %.1f p99 %.1f max %.1f ms\n",
		p.Nodes, p.AtMs/1000, p.ForMs/1000, p.LinksCut, p.ReachedAll, p.TxsDuring, p.HealToAllMs.P50, p.HealToAllMs.P99, p.HealToAllMs.Max)
}
