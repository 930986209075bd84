package node

import (
	"fmt"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"google.golang.org/protobuf/proto"

	"github.com/rumor-relay/rumor/relay/p2p"
)

// TestHostileSubscriptionFlood: a peer subscribes to junk topics (the
// attack measured 50,000 in 0.3 s and 100 MiB of the node's memory). The
// node records subscriptions only to its relay topics and the topics an
// embedder named, so junk costs nothing and within the per-RPC cap it is
// no offense (a newer version's topics look the same); an RPC over the
// cap is dropped whole and costs its sender an oversize offense.
func TestHostileSubscriptionFlood(t *testing.T) {
	const appTopic = "/embedder/app/1"
	a, m := nodeWithGossipAttacker(t, appTopic)
	sub := func(topic string) *pb.RPC_SubOpts {
		return &pb.RPC_SubOpts{Subscribe: proto.Bool(true), Topicid: proto.String(topic)}
	}
	oversize := func() uint32 { return a.PeerScore(m.id()).Offenses["oversize"] }

	// At the cap: the embedder's topic is kept, the junk is not.
	subs := []*pb.RPC_SubOpts{sub(appTopic)}
	for i := 1; i < p2p.MaxSubscriptionsPerRPC; i++ {
		subs = append(subs, sub(fmt.Sprintf("/junk/%d", i)))
	}
	if err := m.writeRPC(&pb.RPC{Subscriptions: subs}); err != nil {
		t.Fatal(err)
	}
	ps := a.PubSub()
	eventually(t, 10*time.Second, "the node to record the embedder topic", func() bool {
		return contains(ps.ListPeers(appTopic), m.id())
	})
	for _, topic := range []string{"/junk/1", "/junk/63"} {
		if got := ps.ListPeers(topic); len(got) != 0 {
			t.Fatalf("the node keeps peers %v subscribed to %s", got, topic)
		}
	}
	if n := oversize(); n != 0 {
		t.Fatalf("%d oversize offenses for an RPC at the cap", n)
	}

	// Over the cap: dropped whole (its allowed unsubscribe too), and paid for.
	over := []*pb.RPC_SubOpts{{Subscribe: proto.Bool(false), Topicid: proto.String(appTopic)}}
	for i := range p2p.MaxSubscriptionsPerRPC {
		over = append(over, sub(fmt.Sprintf("/junk2/%d", i)))
	}
	if err := m.writeRPC(&pb.RPC{Subscriptions: over}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "an oversize offense", func() bool { return oversize() == 1 })
	if !contains(ps.ListPeers(appTopic), m.id()) {
		t.Fatal("the dropped RPC's unsubscribe took effect")
	}
	if got := ps.ListPeers("/junk2/0"); len(got) != 0 {
		t.Fatalf("the node keeps peers %v subscribed to junk from a dropped RPC", got)
	}
}

// nodeWithGossipAttacker starts a node (no peer exchange) that also allows
// the given GossipSub topics, and an attacker joined to its relay topics.
func nodeWithGossipAttacker(t *testing.T, topics ...string) (*Node, *attacker) {
	t.Helper()
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	cfg.PeerExchange = false
	a := startNode(t, cfg, WithGossipTopics(topics...))
	m := newAttacker(t, g.ChainID, nil)
	if err := m.connect(a); err != nil {
		t.Fatal(err)
	}
	m.joinGossip(a)
	return a, m
}
