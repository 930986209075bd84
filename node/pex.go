package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Peer exchange: how nodes that were told only one seed end up in a random
// mesh rather than a star around the seed.
//
// pex is a one-round-trip protocol of our own (/rumor/<chainid>/pex/1.0.0):
// while a node holds fewer than TargetPeers connections it asks up to
// pexFanout connected peers for up to pexMaxPeers of theirs and dials a
// random subset until it reaches the target. A node answers only with peers
// that speak the same chain's pex protocol, so chains never mix.
//
// Why not GossipSub's own peer exchange (pubsub.WithPeerExchange, available
// as Config.GossipPeerExchange): it fires only when a mesh overflows D_hi,
// and then the pruned peer dials every one of up to 16 signed records it was
// handed, with no regard for its connection manager. Measured on the 30-node
// test (every node told only the seed, watermarks 10/16 then): degrees of
// 15-25 against a target of 8, and the seed held above its high watermark by
// a trim/reconnect churn. pex dials only the deficit to TargetPeers, and
// node degrees settled at 7-15.
//
// Why not go-libp2p-kad-dht: a DHT finds peers close to a key, which for
// discovery means random walks over a routing table that must itself be
// bootstrapped and refreshed; it pulls boxo and OpenTelemetry into the
// binary, and its default protocol reaches the public IPFS network unless
// every node remembers the private prefix. A few-hundred-node relay network
// needs only "give me some of your peers", which pex says in 60 lines of wire
// format with every size checked. Randomness comes from both ends: the answer
// is a random sample of the responder's peers and the asker dials a random
// subset, so the resulting graph approximates a random regular graph
// (diameter ~4 at 100 nodes for degree 8) instead of a tree rooted at the
// seed. Peers that disconnected recently are not redialled for
// pexRedialBackoff, so a seed that trims a joiner is not dialled straight
// back.
const (
	// pexFanout is how many connected peers one round asks: three answers of
	// pexMaxPeers overlap little in a random graph and survive one liar.
	pexFanout = 3
	// pexStreamTimeout bounds a whole request (open, write, read) and a whole
	// served request, so a silent peer never holds a goroutine.
	pexStreamTimeout = 10 * time.Second
	// pexDialTimeout bounds one dial of a candidate (libp2p's own default
	// dial timeout is 15 s; candidates are plentiful, so give up sooner).
	pexDialTimeout = 10 * time.Second
	// pexMaxServing caps requests served concurrently; further streams are
	// reset. A request costs one peerstore scan and a ~1 KiB answer.
	pexMaxServing = 8
	// pexRoundInterval is the pause between rounds while below target, and
	// pexIdleInterval the pause between checks at target. 5 s is five
	// GossipSub heartbeats: enough for the last round's dials to identify.
	pexRoundInterval = 5 * time.Second
	pexIdleInterval  = time.Minute
	// pexMinRoundGap spaces rounds triggered by new connections.
	pexMinRoundGap = time.Second
	// pexRedialBackoff is how long a peer that disconnected, or failed a
	// dial, is skipped as a candidate (GossipSub's PRUNE backoff is 1 min).
	pexRedialBackoff = 2 * time.Minute
	// pexMaxBackoff caps the backoff table; expired entries go first.
	pexMaxBackoff = 4096
	// pexEventBuffer is the event-bus buffer for connectedness events; the
	// consumer only updates a map, so it never falls far behind.
	pexEventBuffer = 256
)

// pexProtocol returns the peer-exchange protocol id of a chain.
func pexProtocol(chainID string) protocol.ID {
	return protocol.ID(fmt.Sprintf("/rumor/%s/pex/1.0.0", chainID))
}

// pex runs the peer-exchange protocol. Goroutines: eventLoop (connectedness
// events -> backoff table, round triggers), roundLoop (asks and dials), and
// one per served stream (at most pexMaxServing). mu guards backoff.
type pex struct {
	h      host.Host
	proto  protocol.ID
	target int

	serving chan struct{} // semaphore of served streams
	trigger chan struct{} // cap 1: a round is wanted

	mu      sync.Mutex
	backoff map[peer.ID]time.Time // until when a peer is not a candidate
	closed  bool                  // no more served streams join wg

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newPex(h host.Host, chainID string, target int) *pex {
	ctx, cancel := context.WithCancel(context.Background())
	return &pex{
		h:       h,
		proto:   pexProtocol(chainID),
		target:  target,
		serving: make(chan struct{}, pexMaxServing),
		trigger: make(chan struct{}, 1),
		backoff: make(map[peer.ID]time.Time),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// start registers the protocol handler and starts the loops.
func (p *pex) start() error {
	sub, err := p.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(pexEventBuffer))
	if err != nil {
		return fmt.Errorf("pex: %w", err)
	}
	p.h.SetStreamHandler(p.proto, p.serve)
	p.wg.Add(2)
	go p.eventLoop(sub)
	go p.roundLoop()
	p.kick()
	return nil
}

// close stops the loops and waits for them and for served streams.
func (p *pex) close() {
	p.h.RemoveStreamHandler(p.proto)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

func (p *pex) kick() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

func (p *pex) eventLoop(sub event.Subscription) {
	defer p.wg.Done()
	defer sub.Close()
	for {
		select {
		case <-p.ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			switch ev.Connectedness {
			case network.NotConnected:
				p.setBackoff(ev.Peer, time.Now())
			case network.Connected:
				if len(p.h.Network().Peers()) < p.target {
					p.kick()
				}
			}
		}
	}
}

func (p *pex) setBackoff(id peer.ID, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.backoff) >= pexMaxBackoff {
		for k, until := range p.backoff {
			if now.After(until) {
				delete(p.backoff, k)
			}
		}
		for k := range p.backoff { // still full: forget an arbitrary one
			if len(p.backoff) < pexMaxBackoff {
				break
			}
			delete(p.backoff, k)
		}
	}
	p.backoff[id] = now.Add(pexRedialBackoff)
}

func (p *pex) backedOff(id peer.ID, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	until, ok := p.backoff[id]
	if ok && now.After(until) {
		delete(p.backoff, id)
		return false
	}
	return ok
}

func (p *pex) roundLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(pexRoundInterval)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.trigger:
		case <-timer.C:
		}
		p.round(p.ctx)
		next := pexIdleInterval
		if len(p.h.Network().Peers()) < p.target {
			next = pexRoundInterval
		}
		timer.Reset(next)
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(pexMinRoundGap):
		}
	}
}

// round asks some connected peers for theirs and dials random candidates
// until the node holds target connections.
func (p *pex) round(ctx context.Context) {
	peers := p.h.Network().Peers()
	deficit := p.target - len(peers)
	if deficit <= 0 || len(peers) == 0 {
		return
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	ask := make([]peer.ID, 0, pexFanout)
	for _, id := range peers {
		if len(ask) == pexFanout {
			break
		}
		if ok, _ := p.h.Peerstore().SupportsProtocols(id, p.proto); len(ok) > 0 {
			ask = append(ask, id)
		}
	}
	var (
		mu    sync.Mutex
		found = make(map[peer.ID]peer.AddrInfo)
		wg    sync.WaitGroup
	)
	for _, id := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			infos, err := p.request(ctx, id, pexMaxPeers)
			if err != nil {
				log.Debugw("pex request failed", "peer", id, "err", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, ai := range infos {
				found[ai.ID] = ai
			}
		}()
	}
	wg.Wait()

	now := time.Now()
	cands := make([]peer.AddrInfo, 0, len(found))
	for id, ai := range found {
		if id == p.h.ID() || len(ai.Addrs) == 0 ||
			p.h.Network().Connectedness(id) == network.Connected || p.backedOff(id, now) {
			continue
		}
		cands = append(cands, ai)
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if len(cands) > deficit {
		cands = cands[:deficit]
	}
	for _, ai := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, pexDialTimeout)
			defer cancel()
			if err := p.h.Connect(dctx, ai); err != nil {
				log.Debugw("pex dial failed", "peer", ai.ID, "err", err)
				p.setBackoff(ai.ID, time.Now())
			}
		}()
	}
	wg.Wait()
}

// request asks one peer for up to want of its peers.
func (p *pex) request(ctx context.Context, id peer.ID, want int) ([]peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, pexStreamTimeout)
	defer cancel()
	s, err := p.h.NewStream(ctx, id, p.proto)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(pexStreamTimeout))
	if _, err := s.Write(encodePexRequest(want)); err != nil {
		s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(s, pexMaxMsgSize+1))
	if err != nil {
		s.Reset()
		return nil, err
	}
	if len(b) > pexMaxMsgSize {
		s.Reset()
		return nil, pexMalformed("response over %d bytes", pexMaxMsgSize)
	}
	_ = s.Close()
	return decodePexResponse(b)
}

// serve answers one request with a random sample of this node's peers that
// speak the same pex protocol.
func (p *pex) serve(s network.Stream) {
	select {
	case p.serving <- struct{}{}:
	default:
		s.Reset()
		return
	}
	defer func() { <-p.serving }()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		s.Reset()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	stop := context.AfterFunc(p.ctx, func() { s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(pexStreamTimeout))
	b, err := io.ReadAll(io.LimitReader(s, binary.MaxVarintLen64+1))
	if err != nil {
		s.Reset()
		return
	}
	want, err := decodePexRequest(b)
	if err != nil {
		log.Debugw("pex: bad request", "peer", s.Conn().RemotePeer(), "err", err)
		s.Reset()
		return
	}
	resp := encodePexResponse(p.sample(s.Conn().RemotePeer(), s.Conn().RemoteMultiaddr(), want))
	if _, err := s.Write(resp); err != nil {
		s.Reset()
		return
	}
	_ = s.Close()
}

// sample picks up to want connected peers other than asker that speak pex,
// with the addresses the asker can use: a requester on a public address gets
// no private or loopback addresses, and relay-circuit addresses are dropped.
func (p *pex) sample(asker peer.ID, askerAddr ma.Multiaddr, want int) []peer.AddrInfo {
	publicOnly := askerAddr != nil && manet.IsPublicAddr(askerAddr)
	peers := p.h.Network().Peers()
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	out := make([]peer.AddrInfo, 0, want)
	for _, id := range peers {
		if len(out) == want {
			break
		}
		if id == asker {
			continue
		}
		if ok, _ := p.h.Peerstore().SupportsProtocols(id, p.proto); len(ok) == 0 {
			continue
		}
		var addrs []ma.Multiaddr
		for _, a := range p.h.Peerstore().Addrs(id) {
			if len(addrs) == pexMaxAddrsPerPeer {
				break
			}
			if isCircuit(a) || (publicOnly && !manet.IsPublicAddr(a)) || len(a.Bytes()) > pexMaxAddrLen {
				continue
			}
			addrs = append(addrs, a)
		}
		if len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: id, Addrs: addrs})
		}
	}
	return out
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
