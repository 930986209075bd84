package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"google.golang.org/protobuf/proto"
)

// plainHost starts a libp2p host on loopback that speaks no rumor
// protocol: a bystander to dial or to be dialled.
func plainHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestHostilePeerExchangeFromStranger: a peer with no record of good
// service sends a PRUNE whose peer exchange names a host of its choosing.
// The node must not dial it (a step towards eclipsing the node with the
// attacker's sybils); only peers that have earned AcceptPXThreshold are
// believed.
func TestHostilePeerExchangeFromStranger(t *testing.T) {
	const marker = "/embedder/marker/1"
	a, m := nodeWithGossipAttacker(t, marker)

	lure := plainHost(t)
	var rec []byte
	eventually(t, 10*time.Second, "the lure's signed peer record", func() bool {
		env := lure.Peerstore().(peerstore.CertifiedAddrBook).GetPeerRecord(lure.ID())
		if env == nil {
			return false
		}
		var err error
		rec, err = env.Marshal()
		return err == nil
	})
	prune := &pb.ControlPrune{
		TopicID: proto.String(m.txTopic),
		Peers:   []*pb.PeerInfo{{PeerID: []byte(lure.ID()), SignedPeerRecord: rec}},
		Backoff: proto.Uint64(60),
	}
	if err := m.writeRPC(&pb.RPC{Control: &pb.ControlMessage{Prune: []*pb.ControlPrune{prune}}}); err != nil {
		t.Fatal(err)
	}
	// GossipSub handles one stream's RPCs in order: once the marker
	// subscription is in, the PRUNE has been handled too.
	sub := &pb.RPC_SubOpts{Subscribe: proto.Bool(true), Topicid: proto.String(marker)}
	if err := m.writeRPC(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{sub}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the marker subscription", func() bool {
		return contains(a.PubSub().ListPeers(marker), m.id())
	})
	// A dial set off by the PRUNE starts within milliseconds; 2 s is
	// ample, and with the old threshold (0) this failed every time.
	if poll(2*time.Second, func() bool { return a.Host().Network().Connectedness(lure.ID()) == network.Connected }) {
		t.Fatal("the node dialled a host named by a stranger's peer exchange")
	}
}

// TestOutboundPeersSurviveTrim: peers the node dialled are protected from
// the connection manager's trim, up to TargetPeers of them, while inbound
// connections (anyone's to open) are trimmed; a protection ends with its
// peer's connection.
func TestOutboundPeersSurviveTrim(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	cfg.PeerExchange = false
	cfg.TargetPeers = 2
	cfg.ConnLowWater = 2
	cfg.ConnGracePeriod = time.Nanosecond
	a := startNode(t, cfg)
	cm := a.Host().ConnManager()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	chosen := []host.Host{plainHost(t), plainHost(t), plainHost(t)}
	for _, h := range chosen {
		if err := a.Host().Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	var inbound []host.Host
	for range 8 {
		h := plainHost(t)
		if err := h.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		inbound = append(inbound, h)
	}
	protected := func(h host.Host) bool { return cm.IsProtected(h.ID(), outboundTag) }
	if !protected(chosen[0]) || !protected(chosen[1]) {
		t.Fatal("the first TargetPeers outbound peers are not protected")
	}
	if protected(chosen[2]) {
		t.Fatal("more than TargetPeers outbound peers protected")
	}
	for _, h := range inbound {
		if protected(h) {
			t.Fatal("an inbound peer is protected")
		}
	}

	time.Sleep(10 * time.Millisecond) // past the grace period
	cm.TrimOpenConns(ctx)
	for _, h := range chosen[:2] {
		if a.Host().Network().Connectedness(h.ID()) != network.Connected {
			t.Fatal("a protected outbound peer was trimmed")
		}
	}
	left := 0
	for _, h := range inbound {
		if a.Host().Network().Connectedness(h.ID()) == network.Connected {
			left++
		}
	}
	if left == len(inbound) {
		t.Fatal("the trim closed no inbound connection")
	}

	// A protected peer that leaves frees its slot for the next one dialled.
	if err := a.Host().Network().ClosePeer(chosen[0].ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the protection to end", func() bool { return !protected(chosen[0]) })
	late := plainHost(t)
	if err := a.Host().Connect(ctx, peer.AddrInfo{ID: late.ID(), Addrs: late.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the next outbound peer to be protected", func() bool { return protected(late) })
}
