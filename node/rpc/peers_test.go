package rpc

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestNetPeersScoresAndBans checks the peer-scoring fields of net_peers
// (score, offenses, gossip_score) and net_bans, with and without the
// backend hooks.
func TestNetPeersScoresAndBans(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h1, _ := mn.GenPeer()
	h2, _ := mn.GenPeer()
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(h1.ID(), h2.ID()); err != nil {
		t.Fatal(err)
	}
	until := time.Unix(1_800_000_000, 0).UTC()
	f := newFixture(t, func(_ *Config, b *Backend) {
		b.Host = h1
		b.PeerScore = func(p peer.ID) PeerScore {
			if p != h2.ID() {
				return PeerScore{}
			}
			return PeerScore{Score: -42.5, Offenses: map[string]uint32{"malformed": 1}, GossipScore: -850}
		}
		b.Bans = func() []Ban { return []Ban{{Peer: h2.ID(), Until: until, Reason: "oversize"}} }
	})
	type peerRow struct {
		ID          peer.ID           `json:"id"`
		Score       float64           `json:"score"`
		Offenses    map[string]uint32 `json:"offenses"`
		GossipScore float64           `json:"gossip_score"`
	}
	rows := decode[[]peerRow](t, f.call(t, "net_peers"))
	if len(rows) != 1 || rows[0].ID != h2.ID() || rows[0].Score != -42.5 || rows[0].Offenses["malformed"] != 1 || rows[0].GossipScore != -850 {
		t.Fatalf("net_peers %+v", rows)
	}
	bans := decode[[]Ban](t, f.call(t, "net_bans"))
	if len(bans) != 1 || bans[0].Peer != h2.ID() || !bans[0].Until.Equal(until) || bans[0].Reason != "oversize" {
		t.Fatalf("net_bans %+v", bans)
	}
	wantCode(t, f.call(t, "net_bans", 1), -32602)

	// Without the hooks: zero scores, an empty (not null) offense map, no bans.
	g := newFixture(t, func(_ *Config, b *Backend) { b.Host = h2 })
	if r := g.call(t, "net_peers"); !jsonHas(r.Result, `"score":0`, `"offenses":{}`, `"gossip_score":0`) {
		t.Fatalf("net_peers without scores: %s", r.Result)
	}
	if r := g.call(t, "net_bans"); string(r.Result) != "[]" {
		t.Fatalf("net_bans without a ban list: %s", r.Result)
	}
}

func jsonHas(b []byte, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(string(b), p) {
			return false
		}
	}
	return true
}
