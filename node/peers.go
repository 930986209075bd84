package node

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/p2p"
)

// This file wires package peers into the node:
//
//	relay offense --penalty hook--> Book.Penalize --score <= BanThreshold--> onBan
//	onBan: BanList.Ban (in memory; the ban list's own goroutine writes
//	       <DataDir>/bans.json), then the peer's connections are closed
//	       (disconnect queue, drained by dropLoop)
//	Gater on our own host: a banned peer is refused on dial and after the
//	       security handshake; a Connected notifee closes a banned peer's
//	       connection on a caller's host (WithHost), which has no gater of ours
//	Book.Score x peers.AppSpecificWeight -> GossipSub's app-specific score
//	       (P5): a peer at the ban threshold is graylisted by GossipSub too;
//	       a peer GossipSub graylists (score < -2500) is banned and dropped
//	Limiter -> relay.WithServeBudget; a peer's buckets outlive its
//	       connections (the limiter keeps the MaxTrackedPeers most recently
//	       served), so reconnecting does not refill them
//	Liveness: pings every PingInterval, drops peers that stop answering
//	rcmgr: per-IP connection caps (host.go, connLimitOptions)

const (
	// disconnectQueue bounds bans waiting for their peer's connections to
	// be closed. Bans are rare (one per peer crossing the threshold); when
	// the queue is full, the connection is closed on a goroutine of its own
	// instead, so a burst of bans never blocks the relay.
	disconnectQueue = 256
	// gossipScoreInspectPeriod is how often the node copies GossipSub's peer
	// scores for net_peers and tests: GossipSub decays scores every second
	// (peers.GossipScoring's DecayInterval), so a finer snapshot shows
	// nothing new.
	gossipScoreInspectPeriod = time.Second
)

// outboundTag is the connection-manager protection of outbound peers.
const outboundTag = "rumor:outbound"

// graylistReason is the ban reason recorded for a peer banned because
// GossipSub's score fell below the graylist threshold.
const graylistReason = "graylisted"

// offenseMap maps every offense the relay reports to the score book's
// offense. A relay offense missing here is logged and not scored;
// TestEveryRelayOffenseMaps fails until it is added.
var offenseMap = map[relay.Offense]peers.Offense{
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

// scoreOffense returns the score book's offense for a relay offense.
func scoreOffense(o relay.Offense) (peers.Offense, bool) {
	po, ok := offenseMap[o]
	return po, ok
}

// peerPolicy holds the node's score book, ban list, serving budgets and
// liveness checker, and the glue between them and the host and relay.
//
// Concurrency: book, bans and limiter are safe for concurrent use (package
// peers). host and metrics are set by start before the relay exists, so
// every hook sees them. The penalty hook and the ban callback run on relay
// goroutines and block on neither the network nor the disk: disconnections
// go through the drops queue to dropLoop, and the ban list writes its file
// on a goroutine of its own (closed by close). mu guards the GossipSub
// score snapshot.
type peerPolicy struct {
	cfg     *Config
	book    *peers.Book
	bans    *peers.BanList
	limiter *peers.Limiter
	gater   *peers.Gater

	host    host.Host
	metrics *peerMetrics // nil when metrics are off
	live    *peers.Liveness
	drops   chan peer.ID
	notifee *network.NotifyBundle

	mu     sync.Mutex
	gossip map[peer.ID]float64 // last GossipSub score snapshot
	// colocationWeight is GossipSub's IP colocation weight (P6; zero when
	// off), so setGossipScores can tell a score dragged down by sharing an
	// address from one the peer earned.
	colocationWeight float64
	// outbound are the peers this node dialled whose connections the
	// connection manager may not trim, at most TargetPeers of them (see
	// protectOutbound).
	outbound map[peer.ID]struct{}
}

// newPeerPolicy opens the ban list (<DataDir>/bans.json, or memory only
// with InMemory or no data dir) and builds the score book and limiter.
func newPeerPolicy(cfg *Config) (*peerPolicy, error) {
	path := ""
	if !cfg.InMemory && cfg.DataDir != "" {
		path = filepath.Join(cfg.DataDir, BanFile)
	}
	bans, err := peers.OpenBanList(path)
	if err != nil {
		return nil, err
	}
	p := &peerPolicy{
		cfg:     cfg,
		bans:    bans,
		limiter: peers.NewLimiter(cfg.ServeBudget),
		gater:   &peers.Gater{Bans: bans},
		drops:   make(chan peer.ID, disconnectQueue),
	}
	p.book, err = peers.NewBook(peers.BookConfig{
		HalfLife:     cfg.ScoreHalfLife,
		BanThreshold: cfg.BanThreshold,
		BanDuration:  cfg.BanDuration,
	}, p.onBan)
	if err != nil {
		bans.Close()
		return nil, err
	}
	if n := len(bans.List(time.Now())); n > 0 {
		log.Infow("ban list loaded", "path", path, "bans", n)
	}
	return p, nil
}

// hostGater returns the gater to install on the node's own host: ours, or
// ours and the caller's together (a connection must pass both).
func (p *peerPolicy) hostGater(caller connmgr.ConnectionGater) connmgr.ConnectionGater {
	if caller == nil {
		return p.gater
	}
	return bothGaters{p.gater, caller}
}

// relayOptions returns what connects the relay and its GossipSub to the
// policy: the penalty hook and the serving budget (relay options, over the
// relay's peer ids), GossipSub peer scoring with the book as the
// application score and the score snapshot (pubsub options).
func (p *peerPolicy) relayOptions(txTopic, blockTopic string) ([]relay.Option, []pubsub.Option) {
	coloc := max(p.cfg.ColocationThreshold, 0)
	params, thresholds := peers.GossipScoring(p.book, peers.ScoringConfig{
		TxTopic: txTopic, BlockTopic: blockTopic, ColocationThreshold: coloc,
	})
	p.mu.Lock()
	p.colocationWeight = params.IPColocationFactorWeight
	p.mu.Unlock()
	return []relay.Option{
			relay.WithPenaltyHook(p.relayPenalty),
			relay.WithServeBudget(serveBudget{p.limiter}),
		}, []pubsub.Option{
			pubsub.WithPeerScore(params, thresholds),
			pubsub.WithPeerScoreInspect(pubsub.ExtendedPeerScoreInspectFn(p.setGossipScores), gossipScoreInspectPeriod),
		}
}

// relayPenalty is the relay's penalty hook: the relay names peers by the
// transport's ids (base58 text on p2p).
func (p *peerPolicy) relayPenalty(id relay.PeerID, o relay.Offense) {
	if pid, ok := p2p.PeerOf(id); ok {
		p.penalize(pid, o)
	}
}

// serveBudget is relay.ServeBudget over the policy's limiter.
type serveBudget struct{ l *peers.Limiter }

var _ relay.ServeBudget = serveBudget{}

// AllowRequest implements relay.ServeBudget; an unparsable id gets nothing.
func (b serveBudget) AllowRequest(p relay.PeerID, now time.Time) bool {
	id, ok := p2p.PeerOf(p)
	return ok && b.l.AllowRequest(id, now)
}

// AllowBytes implements relay.ServeBudget.
func (b serveBudget) AllowBytes(p relay.PeerID, n int, now time.Time) bool {
	id, ok := p2p.PeerOf(p)
	return ok && b.l.AllowBytes(id, n, now)
}

// start attaches the policy to h: the notifee that enforces bans on a
// caller's host and forgets the buckets of departed peers, the ping
// service (mounted on a caller's host that lacks it), the disconnect loop
// and the liveness loop. The loops stop when ctx ends; wg tracks them.
func (p *peerPolicy) start(ctx context.Context, h host.Host, wg *sync.WaitGroup) {
	p.host = h
	p.notifee = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if p.bans.IsBanned(c.RemotePeer(), time.Now()) {
				p.disconnect(c.RemotePeer())
				return
			}
			if c.Stat().Direction == network.DirOutbound {
				p.protectOutbound(c.RemotePeer())
			}
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if len(n.ConnsToPeer(c.RemotePeer())) == 0 {
				p.unprotectOutbound(c.RemotePeer())
			}
		},
	}
	h.Network().Notify(p.notifee)
	// Peers that connected before the notifee existed (a caller's host).
	for _, id := range h.Network().Peers() {
		if p.bans.IsBanned(id, time.Now()) {
			p.disconnect(id)
		}
	}
	wg.Add(1)
	go p.dropLoop(ctx, wg)

	if p.cfg.PingInterval > 0 {
		if !slices.Contains(h.Mux().Protocols(), ping.ID) {
			ping.NewPingService(h)
		}
		p.live = &peers.Liveness{
			Host:     h,
			Interval: p.cfg.PingInterval,
			Timeout:  p.cfg.PingTimeout,
			OnDrop:   func(peer.ID) { p.metrics.livenessDrop() },
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.live.Run(ctx)
		}()
	}
}

// protectOutbound keeps the connection manager from trimming id, a peer
// this node dialled, while fewer than TargetPeers are protected. The node
// picks its outbound peers (seeds, pex candidates drawn at random), while
// anyone can open inbound connections: an attacker that opens enough of
// them to cross the high watermark would otherwise have the trim close the
// node's own choices, a step towards eclipsing it. Bitcoin Core likewise
// never evicts its 8 outbound full-relay peers for inbound ones. GossipSub
// protects mesh peers on its own; this covers the rest, and the
// protections end with the peer's last connection.
func (p *peerPolicy) protectOutbound(id peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.outbound[id]; ok || len(p.outbound) >= p.cfg.TargetPeers {
		return
	}
	if p.outbound == nil {
		p.outbound = make(map[peer.ID]struct{})
	}
	p.outbound[id] = struct{}{}
	p.host.ConnManager().Protect(id, outboundTag)
}

// unprotectOutbound ends id's protection (its last connection closed).
func (p *peerPolicy) unprotectOutbound(id peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.outbound[id]; !ok {
		return
	}
	delete(p.outbound, id)
	p.host.ConnManager().Unprotect(id, outboundTag)
}

// stop detaches the notifee (the host may be the caller's and outlive us).
func (p *peerPolicy) stop() {
	if p.host != nil && p.notifee != nil {
		p.host.Network().StopNotify(p.notifee)
	}
}

// close stops the ban list's persister and writes its last state. The node
// calls it once the relay and host are closed, so no ban comes after it.
func (p *peerPolicy) close() error { return p.bans.Close() }

// penalize is the relay's penalty hook.
func (p *peerPolicy) penalize(id peer.ID, o relay.Offense) {
	po, ok := scoreOffense(o)
	if !ok {
		log.Warnw("relay offense with no score mapping; not scored", "peer", id, "offense", o)
		return
	}
	p.metrics.offense(po)
	p.book.Penalize(id, po, time.Now())
}

// onBan is the book's ban callback: record the ban, then cut the peer off.
// It runs on the relay's fetch loop, so it does no I/O: the ban list saves
// itself in the background.
func (p *peerPolicy) onBan(id peer.ID, until time.Time, last peers.Offense) {
	p.bans.Ban(id, until, last.String())
	p.metrics.ban()
	p.disconnect(id)
}

// disconnect queues id's connections for closing without blocking.
func (p *peerPolicy) disconnect(id peer.ID) {
	if p.host == nil {
		return
	}
	select {
	case p.drops <- id:
	default:
		go func() { _ = p.host.Network().ClosePeer(id) }()
	}
}

func (p *peerPolicy) dropLoop(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-p.drops:
			if err := p.host.Network().ClosePeer(id); err != nil {
				log.Debugw("closing banned peer", "peer", id, "err", err)
			}
		}
	}
}

// setGossipScores receives GossipSub's score snapshot (on a goroutine of
// GossipSub's, every gossipScoreInspectPeriod). A connected peer below the
// graylist threshold is banned and dropped: GossipSub already ignores its
// every RPC, so it only takes a connection slot, and the invalid messages
// that put it there stop reaching the relay, so the score book alone might
// never see it cross the ban threshold (three malformed messages graylist
// a peer; the fourth, which would ban it, is never read).
//
// Only a peer to blame is banned: one with offenses in the score book, or
// one GossipSub graylists without counting IP colocation (P6), that is
// for its own conduct: broken IWANT promises and GRAFTs while backed off
// (the behaviour penalty, P7), invalid messages (P4). A score dragged down
// by colocation alone (many honest nodes behind one NAT, or every node of
// a simulation in one /64) must not ban anyone. Control-message attacks
// earn no score-book offense (the relay never sees them), so before P7
// counted here an attacker GossipSub graylisted for them stayed connected.
func (p *peerPolicy) setGossipScores(snap map[peer.ID]*pubsub.PeerScoreSnapshot) {
	m := make(map[peer.ID]float64, len(snap))
	for id, s := range snap {
		m[id] = s.Score
	}
	p.mu.Lock()
	p.gossip = m
	coloc := p.colocationWeight
	p.mu.Unlock()
	if p.host == nil {
		return
	}
	now := time.Now()
	for id, s := range snap {
		if s.Score >= peers.GraylistThreshold || p.host.Network().Connectedness(id) != network.Connected || p.bans.IsBanned(id, now) {
			continue
		}
		own := s.Score - s.IPColocationFactor*coloc
		if p.book.Score(id, now) >= 0 && own >= peers.GraylistThreshold {
			continue
		}
		log.Infow("banning graylisted peer", "peer", id, "gossip_score", s.Score, "behaviour_penalty", s.BehaviourPenalty, "for", p.cfg.BanDuration)
		p.bans.Ban(id, now.Add(p.cfg.BanDuration), graylistReason)
		p.metrics.ban()
		p.disconnect(id)
	}
}

// gossipScore returns p's GossipSub score as of the last snapshot.
func (p *peerPolicy) gossipScore(id peer.ID) (float64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.gossip[id]
	return s, ok
}

// bothGaters allows a connection only when both gaters do.
type bothGaters [2]connmgr.ConnectionGater

var _ connmgr.ConnectionGater = bothGaters{}

func (g bothGaters) InterceptPeerDial(p peer.ID) bool {
	return g[0].InterceptPeerDial(p) && g[1].InterceptPeerDial(p)
}

func (g bothGaters) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return g[0].InterceptAddrDial(p, a) && g[1].InterceptAddrDial(p, a)
}

func (g bothGaters) InterceptAccept(c network.ConnMultiaddrs) bool {
	return g[0].InterceptAccept(c) && g[1].InterceptAccept(c)
}

func (g bothGaters) InterceptSecured(d network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return g[0].InterceptSecured(d, p, c) && g[1].InterceptSecured(d, p, c)
}

func (g bothGaters) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	for _, x := range g {
		if ok, why := x.InterceptUpgraded(c); !ok {
			return false, why
		}
	}
	return true, 0
}

// PeerScore returns p's score and the offenses counted against it in the
// node's score book (zero before New returned, or for an unknown peer).
func (n *Node) PeerScore(p peer.ID) peers.Breakdown {
	return n.peers.book.Breakdown(p, time.Now())
}

// GossipScore returns p's GossipSub peer score (application score times
// peers.AppSpecificWeight plus GossipSub's own topic and behaviour
// components), as of the last snapshot (taken every second). ok is false
// when GossipSub has no record of p.
func (n *Node) GossipScore(p peer.ID) (score float64, ok bool) {
	return n.peers.gossipScore(p)
}

// Bans returns the bans in force, soonest expiry first.
func (n *Node) Bans() []peers.Ban { return n.peers.bans.List(time.Now()) }

// BanPeer bans p for d (an operator's ban) and disconnects it. Unlike the
// node's own bans it waits for the ban list to be written, so the error
// says whether the ban will survive a restart (p is banned either way).
func (n *Node) BanPeer(p peer.ID, d time.Duration, reason string) error {
	n.peers.bans.Ban(p, time.Now().Add(d), reason)
	n.peers.disconnect(p)
	return n.peers.bans.Flush()
}

// UnbanPeer lifts p's ban and, like BanPeer, waits for the ban list to be
// written. Its score is untouched: a peer that misbehaves again is banned
// again sooner.
func (n *Node) UnbanPeer(p peer.ID) error {
	n.peers.bans.Unban(p)
	return n.peers.bans.Flush()
}
