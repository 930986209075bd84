package p2p

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-relay/rumor/relay/transport"
)

// names caches the relay's text name of each connected peer, both ways.
// The relay names peers by text and libp2p by multihash bytes; encoding
// base58 for every duplicate, validation and served request, and decoding
// it for every request sent, was 2.5% of a 1000-node simulation's CPU and
// 5% of its allocations. Entries live while their peer is connected, so the
// connection limits bound the maps; a peer missing from them (a race with
// a notification, or one never connected) is converted on the spot.
type names struct {
	mu     sync.RWMutex
	byPeer map[peer.ID]transport.PeerID
	byName map[transport.PeerID]peer.ID
}

func newNames() *names {
	return &names{byPeer: make(map[peer.ID]transport.PeerID), byName: make(map[transport.PeerID]peer.ID)}
}

// name returns p's transport name.
func (n *names) name(p peer.ID) transport.PeerID {
	n.mu.RLock()
	s, ok := n.byPeer[p]
	n.mu.RUnlock()
	if ok {
		return s
	}
	return ID(p)
}

// peer returns the libp2p id named s; ok is false when s names none.
func (n *names) peer(s transport.PeerID) (peer.ID, bool) {
	n.mu.RLock()
	p, ok := n.byName[s]
	n.mu.RUnlock()
	if ok {
		return p, true
	}
	return PeerOf(s)
}

// add caches p's name (p connected).
func (n *names) add(p peer.ID) {
	s := ID(p)
	n.mu.Lock()
	n.byPeer[p] = s
	n.byName[s] = p
	n.mu.Unlock()
}

// drop forgets p (its last connection closed).
func (n *names) drop(p peer.ID) {
	n.mu.Lock()
	if s, ok := n.byPeer[p]; ok {
		delete(n.byName, s)
		delete(n.byPeer, p)
	}
	n.mu.Unlock()
}
