package testnet

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-relay/rumor/relay/p2p"
	"github.com/rumor-relay/rumor/relay/transport"
)

// TestPlainGossipSubAtFloor checks the simulated links alone, without any
// rumor node: 100 bare GossipSub routers on the sim's link model (latency
// drawn per link from 20-80 ms, 100 Mbit/s uplinks), each dialling four
// random earlier ones, gossip tiny messages that must reach every node at
// their mesh floor, to within the serialization of a few hundred bytes.
func TestPlainGossipSubAtFloor(t *testing.T) {
	skipBubbleUnderRace(t)
	synctest.Test(t, func(t *testing.T) {
		n := 100
		mn := newSimMocknet()
		for range n {
			if _, err := addSimPeer(mn, rand.Reader); err != nil {
				t.Fatal(err)
			}
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		hosts := mn.Hosts()
		index := map[peer.ID]int{}
		for i, h := range hosts {
			index[h.ID()] = i
		}
		lat := linkLatencies(&Config{Latency: 20 * time.Millisecond, LatencyMax: 80 * time.Millisecond, Seed: "bare"})
		model := newLinkModel(func(a, b peer.ID) time.Duration { return lat(index[a], index[b]) }, DefaultBandwidth)
		trs := make([]transport.Transport, n)
		ids := make([]string, n)
		var routers []*p2p.Transport
		for i, h := range hosts {
			tr, err := p2p.New(newDelayHost(h, model), p2p.Config{})
			if err != nil {
				t.Fatal(err)
			}
			trs[i], ids[i] = tr, string(p2p.ID(h.ID()))
			routers = append(routers, tr)
		}
		rng := mrand.New(mrand.NewPCG(1, 2))
		for i := 1; i < n; i++ {
			for _, j := range rng.Perm(i)[:min(4, i)] {
				if _, err := mn.ConnectPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(2 * time.Second)
		rep, err := runProbe(context.Background(), trs, ids, 8, rng, lat)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", *rep)
		if !rep.OK() || rep.RatioMin < 1 || rep.RatioMax > 1.01 {
			t.Errorf("plain GossipSub at %.3f-%.3fx its mesh floor, want 1.00-1.01x; %d/%d reached all, %d disturbed",
				rep.RatioMin, rep.RatioMax, rep.ReachedAll, rep.Messages, rep.Disturbed)
		}
		model.close()
		for _, r := range routers {
			_ = r.Close()
		}
		for _, h := range hosts {
			_ = h.Close()
		}
		_ = mn.Close()
	})
}
