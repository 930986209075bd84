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
		for _, tp := range topics {
			_ = tp.Close()
		}
		for _, tr := range trs {
			_ = tr.Close()
		}
		for _, h := range hosts {
			_ = h.Close()
		}
	})
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
