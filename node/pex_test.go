package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestPexAnswersWithSameChainPeersOnly: a responder shares its connected
// peers that speak the same chain's pex protocol, never the asker itself,
// nor peers of another chain or peers without the protocol.
func TestPexAnswersWithSameChainPeersOnly(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var hs []host.Host
	for range 5 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	// hs[4] connects to the responder but runs no pex at all.
	responder, asker, same, other := hs[0], hs[1], hs[2], hs[3]
	for _, p := range []struct {
		h     host.Host
		chain string
	}{{responder, "a"}, {asker, "a"}, {same, "a"}, {other, "b"}} {
		x := newPex(p.h, p.chain, 1) // target 1: rounds stay idle once connected
		if err := x.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.close)
	}
	ctx := context.Background()
	for _, h := range hs[1:] {
		if err := h.Connect(ctx, peer.AddrInfo{ID: responder.ID(), Addrs: responder.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	// Identify must have told the responder who speaks what.
	eventually(t, 10*time.Second, "identify", func() bool {
		ok, _ := responder.Peerstore().SupportsProtocols(same.ID(), pexProtocol("a"))
		ok2, _ := responder.Peerstore().SupportsProtocols(other.ID(), pexProtocol("b"))
		return len(ok) > 0 && len(ok2) > 0
	})
	client := newPex(asker, "a", 1)
	got, err := client.request(ctx, responder.ID(), pexMaxPeers)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != same.ID() || len(got[0].Addrs) == 0 {
		t.Fatalf("answer %v, want only %s with addresses", got, same.ID())
	}
}

// TestPexRoundDialsCandidatesAndBacksOff: a node below target asks its
// peer and dials what it learns; a candidate that just disconnected is
// skipped until the backoff passes.
func TestPexRoundDialsCandidatesAndBacksOff(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var hs []host.Host
	for range 4 {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	seed, joiner, c1, c2 := hs[0], hs[1], hs[2], hs[3]
	for _, h := range []host.Host{seed, c1, c2} {
		x := newPex(h, "a", 1)
		if err := x.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.close)
	}
	ctx := context.Background()
	for _, h := range []host.Host{c1, c2} {
		if err := h.Connect(ctx, peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "identify at the seed", func() bool {
		a, _ := seed.Peerstore().SupportsProtocols(c1.ID(), pexProtocol("a"))
		b, _ := seed.Peerstore().SupportsProtocols(c2.ID(), pexProtocol("a"))
		return len(a) > 0 && len(b) > 0
	})
	j := newPex(joiner, "a", 3) // not started: rounds driven by hand
	if err := joiner.Connect(ctx, peer.AddrInfo{ID: seed.ID(), Addrs: seed.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "identify at the joiner", func() bool {
		a, _ := joiner.Peerstore().SupportsProtocols(seed.ID(), pexProtocol("a"))
		return len(a) > 0
	})
	j.setBackoff(c2.ID(), time.Now()) // c2 "just disconnected" from us
	// Rounds repeat in the node. In one full -race run of the package a
	// single round came back without dialling c1 (cause not pinned down;
	// 30 isolated runs pass), so the test allows a few rounds, as the node
	// does, before calling the candidate undialled.
	eventually(t, 10*time.Second, "a round dials the candidate", func() bool {
		j.round(ctx)
		return joiner.Network().Connectedness(c1.ID()) == network.Connected
	})
	if len(joiner.Network().ConnsToPeer(c2.ID())) != 0 {
		t.Fatal("round dialled a backed-off candidate")
	}
	// Asked at a time past the backoff, the entry is expired (and dropped).
	if !j.backedOff(c2.ID(), time.Now()) || j.backedOff(c2.ID(), time.Now().Add(pexRedialBackoff+time.Second)) {
		t.Fatal("backoff does not expire after pexRedialBackoff")
	}
	// As above, a round may come back without its dial (a CI run under
	// -race): allow the few rounds the node itself would run.
	eventually(t, 10*time.Second, "a round dials the candidate once its backoff expired", func() bool {
		j.round(ctx)
		return len(joiner.Network().ConnsToPeer(c2.ID())) != 0
	})
}
