package p2p

import (
	"testing"

	p2ptest "github.com/libp2p/go-libp2p/core/test"
)

// TestNamesFollowConnections checks the name cache: names of connected
// peers round-trip and are dropped on disconnect, and a peer never cached
// still converts both ways.
func TestNamesFollowConnections(t *testing.T) {
	n := newNames()
	h := p2ptest.RandPeerIDFatal(t)
	if got := n.name(h); got != ID(h) {
		t.Fatalf("uncached name %q, want %q", got, ID(h))
	}
	if p, ok := n.peer(ID(h)); !ok || p != h {
		t.Fatalf("uncached peer %v %v", p, ok)
	}
	n.add(h)
	if len(n.byPeer) != 1 || len(n.byName) != 1 {
		t.Fatalf("after add: %d/%d entries", len(n.byPeer), len(n.byName))
	}
	if p, ok := n.peer(ID(h)); !ok || p != h || n.name(h) != ID(h) {
		t.Fatal("cached lookups disagree with the conversions")
	}
	if _, ok := n.peer("not a peer id"); ok {
		t.Fatal("junk name resolved")
	}
	n.drop(h)
	if len(n.byPeer) != 0 || len(n.byName) != 0 {
		t.Fatalf("after drop: %d/%d entries", len(n.byPeer), len(n.byName))
	}
}
