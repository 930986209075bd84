package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/wire"
)

// withLoopbackConnCap applies MaxConnsPerIP to loopback connections, so the
// per-IP cap can be tested on 127.0.0.1.
func withLoopbackConnCap() Option { return func(o *options) { o.limitLoopback = true } }

// TestEveryRelayOffenseMaps walks every offense the relay can report (they
// are numbered from 1 until String says "unknown") and checks each has a
// score-book offense, and that the mapping is the one the weights assume.
func TestEveryRelayOffenseMaps(t *testing.T) {
	want := map[relay.Offense]peers.Offense{
		relay.OffenseMalformed:     peers.Malformed,
		relay.OffenseOversize:      peers.Oversize,
		relay.OffenseInvalidTx:     peers.InvalidTx,
		relay.OffenseInvalidBlock:  peers.InvalidBlock,
		relay.OffenseBodyMismatch:  peers.MismatchedBody,
		relay.OffenseTimeout:       peers.WithheldBody,
		relay.OffenseNotFound:      peers.NotFound,
		relay.OffenseUnrequested:   peers.Unrequested,
		relay.OffenseRequestFlood:  peers.RequestFlood,
		relay.OffenseAnnounceFlood: peers.TooManyAnnouncements,
		relay.OffenseBadRequest:    peers.BadRequest,
	}
	n := 0
	for o := relay.Offense(1); o.String() != "unknown"; o++ {
		n++
		got, ok := scoreOffense(o)
		if !ok {
			t.Errorf("relay offense %v (%d) has no score-book offense", o, o)
			continue
		}
		if w, listed := want[o]; !listed {
			t.Errorf("relay offense %v maps to %v but this table does not list it", o, got)
		} else if got != w {
			t.Errorf("relay offense %v maps to %v, want %v", o, got, w)
		}
		if got.Weight() >= 0 {
			t.Errorf("relay offense %v maps to %v, which costs nothing", o, got)
		}
	}
	if n != len(want) || len(offenseMap) != n {
		t.Fatalf("%d relay offenses, %d in the table, %d mapped", n, len(want), len(offenseMap))
	}
	if _, ok := scoreOffense(relay.Offense(0)); ok {
		t.Fatal("the zero offense maps")
	}
}

// banByOversize makes n ban m with two oversize request frames.
func banByOversize(t *testing.T, n *Node, m *attacker) {
	t.Helper()
	for range 2 {
		s, err := m.h.NewStream(m.ctx, n.ID(), m.proto)
		if err != nil {
			t.Fatal(err)
		}
		s.Write(binary.AppendUvarint(nil, wire.MaxRequestFrame+1))
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		s.Read(make([]byte, 1))
		s.Reset()
	}
	eventually(t, 5*time.Second, "the ban", func() bool { return banned(n, m.id()) })
}

// TestBansSurviveRestart: a node on disk bans a peer, stops, and starts
// again from the same data dir: the ban is still listed (net_bans), the
// peer is refused when it dials and the node refuses to dial it, while
// another peer connects as usual. An in-memory node writes no ban file.
// TestCorruptBanFileDoesNotStopNode: a ban file cut short (a crash of an
// older version, a full disk) is moved aside, the node starts with no bans,
// and an operator's ban is written to a fresh file.
func TestCorruptBanFileDoesNotStopNode(t *testing.T) {
	cfg := testConfig(t, testGenesis(time.Hour))
	cfg.InMemory = false
	path := filepath.Join(cfg.DataDir, BanFile)
	if err := os.WriteFile(path, []byte(`[{"peer":"12D3KooW`), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("a corrupt ban file stopped the node: %v", err)
	}
	defer n.Close()
	if len(n.Bans()) != 0 {
		t.Fatalf("bans from a corrupt file: %v", n.Bans())
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Fatalf("corrupt ban file not kept aside: %v", err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.BanPeer(id, time.Hour, "operator"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), id.String()) {
		t.Fatalf("ban file after BanPeer: %v %s", err, data)
	}
}

func TestBansSurviveRestart(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	cfg.InMemory = false
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	n1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := newAttacker(t, g.ChainID, key)
	if err := m.connect(n1); err != nil {
		t.Fatal(err)
	}
	banByOversize(t, n1, m)
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, BanFile))
	if err != nil || !strings.Contains(string(data), m.id().String()) {
		t.Fatalf("ban file: %v %s", err, data)
	}

	n2 := startNode(t, cfg)
	if !banned(n2, m.id()) {
		t.Fatal("ban lost across restart")
	}
	if res, _ := rpcCall(t, n2.RPCAddr(), "net_bans"); !strings.Contains(string(res), m.id().String()) || !strings.Contains(string(res), `"reason":"oversize"`) {
		t.Fatalf("net_bans after restart: %s", res)
	}
	if err := m.connect(n2); err == nil {
		checkDroppedAfterDial(t, n2, m, "the banned peer connected after the restart")
	}
	if n2.Host().Network().Connectedness(m.id()) == network.Connected {
		t.Fatal("the banned peer connected after the restart")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n2.Host().Connect(ctx, peer.AddrInfo{ID: m.id(), Addrs: m.h.Addrs()}); err == nil {
		t.Fatal("the node dialled a banned peer")
	}
	honest := newAttacker(t, g.ChainID, nil)
	if err := honest.connect(n2); err != nil {
		t.Fatalf("an unbanned peer could not connect: %v", err)
	}

	mem := testConfig(t, g) // InMemory
	n3 := startNode(t, mem)
	m3 := newAttacker(t, g.ChainID, nil)
	if err := m3.connect(n3); err != nil {
		t.Fatal(err)
	}
	banByOversize(t, n3, m3)
	if _, err := os.Stat(filepath.Join(mem.DataDir, BanFile)); !os.IsNotExist(err) {
		t.Fatalf("in-memory node wrote a ban file: %v", err)
	}
}

// TestBanEnforcedOnCallerHost: with WithHost the node installs no gater on
// the caller's host, so a connected peer that gets banned is disconnected
// by the node and, when it connects again, dropped at once.
func TestBanEnforcedOnCallerHost(t *testing.T) {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	h0, _ := mn.GenPeer()
	hm, _ := mn.GenPeer()
	hx1, _ := mn.GenPeer() // marker peers, banned late in the test
	hx2, _ := mn.GenPeer()
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, testConfig(t, testGenesis(time.Hour)), WithHost(h0))
	if _, err := mn.ConnectPeers(hm.ID(), h0.ID()); err != nil {
		t.Fatal(err)
	}
	if err := n.BanPeer(hm.ID(), time.Hour, "operator"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the banned peer dropped", func() bool {
		return h0.Network().Connectedness(hm.ID()) != network.Connected
	})
	mn.ConnectPeers(hm.ID(), h0.ID())
	eventually(t, 5*time.Second, "the banned peer dropped again", func() bool {
		return h0.Network().Connectedness(hm.ID()) != network.Connected
	})
	// flushDrops bans the marker peer p and waits until it is gone. The
	// node closes the connections of the peers it drops one at a time, in
	// the order it decided to, so every drop decided before this one has
	// then been carried out.
	flushDrops := func(p peer.ID) {
		t.Helper()
		if _, err := mn.ConnectPeers(h0.ID(), p); err != nil {
			t.Fatal(err)
		}
		if err := n.BanPeer(p, time.Hour, "operator"); err != nil {
			t.Fatal(err)
		}
		waitNotConnected(t, h0, p, 5*time.Second, "a banned marker peer dropped")
	}
	if err := n.UnbanPeer(hm.ID()); err != nil {
		t.Fatal(err)
	}
	// Drops of hm decided while it was banned (the node's GossipSub may
	// redial it after a drop) are carried out before hm connects again.
	flushDrops(hx1.ID())
	// h0 dials hm this time: mocknet runs the dialler's notifiees before
	// the dial returns, so the node's notifee has already judged the new
	// connection, and queued hm for dropping if it still counts as banned.
	c, err := mn.ConnectPeers(h0.ID(), hm.ID())
	if err != nil {
		t.Fatal(err)
	}
	flushDrops(hx2.ID())
	if c.IsClosed() || h0.Network().Connectedness(hm.ID()) != network.Connected {
		t.Fatal("unbanned peer dropped")
	}
}

// TestPerIPConnectionCap: with MaxConnsPerIP 2 (applied to loopback for
// the test), two peers from 127.0.0.1 connect and the third is refused by
// the resource manager; when one leaves, a slot frees.
func TestPerIPConnectionCap(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	cfg.MaxConnsPerIP = 2
	cfg.PeerExchange = false
	n := startNode(t, cfg, withLoopbackConnCap())
	var ms []*attacker
	for i := range 3 {
		m := newAttacker(t, g.ChainID, nil)
		err := m.connect(n)
		if i < 2 && err != nil {
			t.Fatalf("peer %d refused under the cap: %v", i, err)
		}
		if i == 2 {
			t.Logf("third connection: %v", err)
			if err == nil {
				checkDroppedAfterDial(t, n, m, "third connection from one IP accepted over a cap of 2")
			}
			// A slot frees when a peer leaves.
			ms[0].h.Network().ClosePeer(n.ID())
			eventually(t, 5*time.Second, "the slot freed", func() bool {
				return n.Host().Network().Connectedness(ms[0].id()) != network.Connected
			})
			// The resource manager releases the closed connection's
			// scope a moment after the node sees it gone: retry the dial
			// until then.
			var lastErr error
			if !poll(5*time.Second, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				if sw, ok := m.h.Network().(*swarm.Swarm); ok {
					sw.Backoff().Clear(n.ID())
				}
				lastErr = m.h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
				return lastErr == nil
			}) {
				t.Fatalf("a freed slot was not reusable: %v", lastErr)
			}
		}
		ms = append(ms, m)
	}
}

// TestLivenessDropsUnresponsivePeer: a peer that does not answer pings is
// disconnected after the configured misses; one that answers stays.
func TestLivenessDropsUnresponsivePeer(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	cfg.PingInterval = 100 * time.Millisecond
	cfg.PeerExchange = false
	cfg.MetricsAddr = "127.0.0.1:0"
	n := startNode(t, cfg)
	if cfg2 := n.Config(); cfg2.PingTimeout != 100*time.Millisecond {
		t.Fatalf("ping timeout defaulted to %v, want the interval", cfg2.PingTimeout)
	}
	silent := newAttacker(t, g.ChainID, nil, libp2p.Ping(false))
	answering := newAttacker(t, g.ChainID, nil)
	for _, m := range []*attacker{silent, answering} {
		if err := m.connect(n); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "the silent peer dropped", func() bool {
		return n.Host().Network().Connectedness(silent.id()) != network.Connected
	})
	if n.Host().Network().Connectedness(answering.id()) != network.Connected {
		t.Fatal("the answering peer was dropped")
	}
	if v, _ := gaugeValue(t, n, "rumor_peer_liveness_drops_total"); v < 1 {
		t.Fatalf("liveness drops metric %v", v)
	}
}

// TestColocationAloneDoesNotBan: a peer GossipSub graylists only because
// of IP colocation (honest nodes behind one NAT; every mocknet node shares
// one /64) keeps its connection; one we hold an offense against is banned,
// and so is one GossipSub graylists for its own conduct (its behaviour
// penalty: broken IWANT promises, GRAFTs while backed off), which earns no
// score-book offense.
func TestColocationAloneDoesNotBan(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	a, _ := mn.GenPeer()
	b, _ := mn.GenPeer()
	c, _ := mn.GenPeer()
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []peer.ID{b.ID(), c.ID()} {
		if _, err := mn.ConnectPeers(a.ID(), h); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{InMemory: true, BanDuration: time.Hour, ColocationThreshold: 1}
	p, err := newPeerPolicy(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.relayOptions("tx", "block") // sets the colocation weight
	p.host = a
	p.drops = make(chan peer.ID, 4)

	// All of b's score is its colocation penalty (factor x weight).
	colocated := &pubsub.PeerScoreSnapshot{Score: 10 * peers.GraylistThreshold, IPColocationFactor: 10 * peers.GraylistThreshold / p.colocationWeight}
	p.setGossipScores(map[peer.ID]*pubsub.PeerScoreSnapshot{b.ID(): colocated})
	if p.bans.IsBanned(b.ID(), time.Now()) || len(p.drops) != 0 {
		t.Fatal("a peer with no offenses was banned for its colocation penalty alone")
	}
	p.book.Penalize(b.ID(), peers.Malformed, time.Now())
	p.setGossipScores(map[peer.ID]*pubsub.PeerScoreSnapshot{b.ID(): colocated})
	if !p.bans.IsBanned(b.ID(), time.Now()) {
		t.Fatal("a graylisted peer with offenses was not banned")
	}
	behaved := &pubsub.PeerScoreSnapshot{Score: 10 * peers.GraylistThreshold, BehaviourPenalty: 56}
	p.setGossipScores(map[peer.ID]*pubsub.PeerScoreSnapshot{c.ID(): behaved})
	if !p.bans.IsBanned(c.ID(), time.Now()) {
		t.Fatal("a peer graylisted for its behaviour penalty was not banned")
	}
}
