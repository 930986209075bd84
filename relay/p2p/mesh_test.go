package p2p

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/relay/transport"
)

// TestMeshIsWhereMessagesGo: a topic's Mesh() is exactly the set of peers
// GossipSub sends this node's own messages to: no flood publishing (the
// simulator's mesh floors and the relay's mesh metrics rely on it).
func TestMeshIsWhereMessagesGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 30
		// With latency, the author's own copy is the first any receiver
		// validates (a relayed one takes two hops).
		mn, hosts := linkedMocknet(t, n, 50*time.Millisecond)
		trs := make([]*Transport, n)
		for i, h := range hosts {
			tr, err := New(h, Config{})
			if err != nil {
				t.Fatal(err)
			}
			trs[i] = tr
		}
		rng := mrand.New(mrand.NewPCG(1, 2))
		for i := 1; i < n; i++ {
			for _, j := range rng.Perm(i)[:min(4, i)] {
				if _, err := mn.ConnectPeers(hosts[i].ID(), hosts[j].ID()); err != nil {
					t.Fatal(err)
				}
			}
		}
		var mu sync.Mutex
		direct := map[string][]transport.PeerID{} // message -> receivers that got it from its author
		topics := make([]transport.Topic, n)
		for i, tr := range trs {
			tp, err := tr.Join("/mesh-test", transport.TopicConfig{Validate: func(_ context.Context, from transport.PeerID, data []byte) transport.Validation {
				var author int
				if _, err := fmt.Sscanf(string(data), "from %d", &author); err != nil || author < 0 || author >= n {
					return transport.Reject
				}
				if from == trs[author].Self() {
					mu.Lock()
					direct[string(data)] = append(direct[string(data)], trs[i].Self())
					mu.Unlock()
				}
				return transport.Accept
			}})
			if err != nil {
				t.Fatal(err)
			}
			topics[i] = tp
		}
		time.Sleep(5 * time.Second)
		for i, tp := range topics {
			mesh := tp.Mesh()
			msg := fmt.Sprintf("from %d at %v", i, time.Now().UnixNano())
			if err := tp.Publish(context.Background(), []byte(msg)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
			mu.Lock()
			got := direct[msg]
			mu.Unlock()
			slices.Sort(mesh)
			slices.Sort(got)
			if !slices.Equal(mesh, got) {
				t.Errorf("node %d: Mesh() %v, sent to %v", i, short(mesh), short(got))
			}
		}
		closeAll(topics, trs, hosts)
	})
}

// joinAll starts a transport with cfg on each host and joins topic on
// each, accepting every message.
func joinAll(t *testing.T, hosts []host.Host, cfg Config, topic string) ([]*Transport, []transport.Topic) {
	t.Helper()
	trs := make([]*Transport, len(hosts))
	topics := make([]transport.Topic, len(hosts))
	for i, h := range hosts {
		tr, err := New(h, cfg)
		if err != nil {
			t.Fatal(err)
		}
		trs[i] = tr
		tp, err := tr.Join(topic, transport.TopicConfig{Validate: func(context.Context, transport.PeerID, []byte) transport.Validation {
			return transport.Accept
		}})
		if err != nil {
			t.Fatal(err)
		}
		topics[i] = tp
	}
	return trs, topics
}

// closeAll closes topics, then transports, then hosts: inside a synctest
// bubble nothing may outlive the test.
func closeAll(topics []transport.Topic, trs []*Transport, hosts []host.Host) {
	for _, tp := range topics {
		_ = tp.Close()
	}
	for _, tr := range trs {
		_ = tr.Close()
	}
	for _, h := range hosts {
		_ = h.Close()
	}
}

func short(ps []transport.PeerID) []string {
	var out []string
	for _, p := range ps {
		out = append(out, string(p)[len(p)-6:])
	}
	return out
}

// linkedMocknet makes n mocknet hosts, links every pair with the given
// latency (connections are left to the test) and closes the net when the
// test ends.
func linkedMocknet(t *testing.T, n int, latency time.Duration) (mocknet.Mocknet, []host.Host) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	for range n {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: latency})
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	return mn, mn.Hosts()
}

// TestMeshDegreeBoundsTheMesh: with Config.MeshDegree set, every node's
// mesh stays within that degree's bounds (D-1..2D) and near D on a fully
// connected network, where GossipSub's default keeps 5..12 of 23 peers.
func TestMeshDegreeBoundsTheMesh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, degree = 24, 4
		mn, hosts := linkedMocknet(t, n, 10*time.Millisecond)
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
		trs, topics := joinAll(t, hosts, Config{MeshDegree: degree}, "/degree-test")
		time.Sleep(10 * time.Second) // ten heartbeats
		sizes := make([]int, n)
		for i, tp := range topics {
			sizes[i] = len(tp.Mesh())
		}
		total := 0
		for i, s := range sizes {
			total += s
			if s < degree-1 || s > 2*degree {
				t.Errorf("node %d: mesh of %d peers, want %d..%d (all sizes %v)", i, s, degree-1, 2*degree, sizes)
			}
		}
		// Grafts pair nodes up, so with the default D of 6 the mean is at
		// least 6; at degree 4 it stays near 4 (4.3-4.9 measured).
		if mean := float64(total) / n; mean > 5.5 {
			t.Errorf("mean mesh size %.2f, want at most 5.5 at degree %d (sizes %v)", mean, degree, sizes)
		}
		closeAll(topics, trs, hosts)
	})
}

// TestMeshParams: every degree in range gives parameters GossipSub accepts,
// in the proportions of its defaults; degrees out of range are refused.
func TestMeshParams(t *testing.T) {
	def, err := MeshParams(0)
	if err != nil || def.D != 6 || def.Dlo != 5 || def.Dhi != 12 || def.Dout != 2 || def.Dlazy != GossipLazyPeers {
		t.Fatalf("MeshParams(0) = D %d Dlo %d Dhi %d Dout %d Dlazy %d, %v; want GossipSub's defaults with Dlazy %d",
			def.D, def.Dlo, def.Dhi, def.Dout, def.Dlazy, err, GossipLazyPeers)
	}
	p6, _ := MeshParams(6)
	if p6.D != def.D || p6.Dlo != def.Dlo || p6.Dhi != def.Dhi || p6.Dout != def.Dout || p6.Dscore != def.Dscore {
		t.Errorf("MeshParams(6) differs from GossipSub's defaults: %+v", p6)
	}
	_, hosts := linkedMocknet(t, MaxMeshDegree+1, 0)
	for d := MinMeshDegree; d <= MaxMeshDegree; d++ {
		p, err := MeshParams(d)
		if err != nil || p.D != d {
			t.Fatalf("MeshParams(%d): D %d, %v", d, p.D, err)
		}
		// GossipSub validates its parameters when it starts.
		tr, err := New(hosts[d], Config{MeshDegree: d})
		if err != nil {
			t.Fatalf("degree %d: %v", d, err)
		}
		_ = tr.Close()
	}
	for _, d := range []int{-1, 1, 2, 3, MaxMeshDegree + 1} {
		if _, err := MeshParams(d); err == nil {
			t.Errorf("MeshParams(%d) accepted", d)
		}
		if _, err := New(hosts[0], Config{MeshDegree: d}); err == nil {
			t.Errorf("New with degree %d accepted", d)
		}
	}
}

// wireRecorder keeps the gossip traffic an observer is told of.
type wireRecorder struct {
	mu    sync.Mutex
	units []wireUnit
}

type wireUnit struct {
	wire int
	msgs []transport.Published
}

func (r *wireRecorder) PeerConnected(transport.PeerID)             {}
func (r *wireRecorder) PeerDisconnected(transport.PeerID)          {}
func (r *wireRecorder) Duplicate(string, transport.PeerID, []byte) {}
func (r *wireRecorder) MeshChanged(string, int)                    {}
func (r *wireRecorder) GossipTraffic(in bool, n int, msgs []transport.Published) {
	if !in {
		return
	}
	r.mu.Lock()
	r.units = append(r.units, wireUnit{n, slices.Clone(msgs)})
	r.mu.Unlock()
}

// TestPublishedWireIsTheMessagesShare: each message reported in received
// gossip says what it took of the RPC's bytes, envelope included: more
// than its data and topic, at most the RPC, and all of an RPC that
// carried nothing else.
func TestPublishedWireIsTheMessagesShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn, hosts := linkedMocknet(t, 2, 10*time.Millisecond)
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
		trs, topics := joinAll(t, hosts, Config{}, "/wire-test")
		rec := &wireRecorder{}
		trs[1].Observe(rec)
		time.Sleep(3 * time.Second) // the mesh forms
		data := make([]byte, 300)   // a length whose varint takes two bytes
		for i := range data {
			data[i] = byte(i)
		}
		if err := topics[0].Publish(context.Background(), data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		seen, alone := 0, false
		for _, u := range rec.units {
			for _, m := range u.msgs {
				if string(m.Data) != string(data) {
					continue
				}
				seen++
				if m.Wire <= len(m.Data)+len(m.Topic) || m.Wire > u.wire {
					t.Errorf("message of %d bytes on %q: wire %d, RPC %d", len(m.Data), m.Topic, m.Wire, u.wire)
				}
				alone = alone || (len(u.msgs) == 1 && m.Wire == u.wire)
			}
		}
		if seen == 0 {
			t.Fatal("the message was never reported")
		}
		if !alone {
			t.Error("no RPC carrying only the message counted all of its bytes as the message's")
		}
		closeAll(topics, trs, hosts)
	})
}
