package node

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

const (
	// bootstrapMinBackoff and bootstrapMaxBackoff bound the retry delay while
	// the node has too few peers (a successful dial resets it to the first);
	// the delay doubles from the first to the second (Kubo retries its bootstrap
	// every 30 s; a node with no peers at all should try sooner).
	bootstrapMinBackoff = time.Second
	bootstrapMaxBackoff = time.Minute
	// bootstrapCheckInterval is how often a node with enough peers checks
	// whether it still has enough (Kubo's bootstrap period).
	bootstrapCheckInterval = 30 * time.Second
	// bootstrapDialTimeout bounds one dial of a bootstrap peer.
	bootstrapDialTimeout = 15 * time.Second
	// mdnsMaxDials caps concurrent dials of peers found by mDNS; further
	// finds are dropped (the next announcement, ~every 10 s, brings them back).
	mdnsMaxDials = 4
	// mdnsDialTimeout bounds one dial of an mDNS-found peer.
	mdnsDialTimeout = 10 * time.Second
)

// bootstrapper dials the configured bootstrap peers at start and again,
// with doubling backoff, whenever the node holds fewer than minPeers
// connections. It leaves a node with enough peers alone: re-dialling the seed
// every time would turn the overlay back into a star.
type bootstrapper struct {
	h        host.Host
	peers    []peer.AddrInfo
	minPeers int

	cancel context.CancelFunc
	done   chan struct{}
}

func newBootstrapper(h host.Host, peers []peer.AddrInfo, minPeers int) *bootstrapper {
	self := h.ID()
	ps := make([]peer.AddrInfo, 0, len(peers))
	for _, p := range peers {
		if p.ID != self { // a testnet may hand node 0 its own address
			ps = append(ps, p)
		}
	}
	return &bootstrapper{h: h, peers: ps, minPeers: max(minPeers, 1), done: make(chan struct{})}
}

func (b *bootstrapper) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	if len(b.peers) == 0 {
		close(b.done)
		return
	}
	go b.loop(ctx)
}

func (b *bootstrapper) close() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
	}
}

func (b *bootstrapper) loop(ctx context.Context) {
	defer close(b.done)
	backoff := bootstrapMinBackoff
	for {
		delay := bootstrapCheckInterval
		if len(b.h.Network().Peers()) < b.minPeers {
			if b.dialAll(ctx) {
				backoff = bootstrapMinBackoff
			}
			// Short of peers, look again after the backoff even when the
			// dial succeeded: a seed over its connection limit trims a
			// joiner seconds after accepting it, and a full check interval
			// would leave that joiner alone for 30 s.
			delay = backoff
			backoff = min(2*backoff, bootstrapMaxBackoff)
		}
		// Jitter of ±20% keeps a testnet's joiners from retrying in lockstep.
		delay = time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dialAll dials every bootstrap peer not yet connected, in parallel, and
// reports whether the node is connected to at least one of them afterwards.
func (b *bootstrapper) dialAll(ctx context.Context) bool {
	var wg sync.WaitGroup
	for _, p := range b.peers {
		if b.h.Network().Connectedness(p.ID) == network.Connected {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, bootstrapDialTimeout)
			defer cancel()
			if err := b.h.Connect(dctx, p); err != nil {
				log.Debugw("bootstrap dial failed", "peer", p.ID, "err", err)
			} else {
				log.Infow("connected to bootstrap peer", "peer", p.ID)
			}
		}()
	}
	wg.Wait()
	for _, p := range b.peers {
		if b.h.Network().Connectedness(p.ID) == network.Connected {
			return true
		}
	}
	return false
}

// mdnsNotifee dials peers found on the local network, at most mdnsMaxDials at
// a time.
type mdnsNotifee struct {
	h    host.Host
	ctx  context.Context
	sem  chan struct{}
	wg   sync.WaitGroup
	stop context.CancelFunc
}

// HandlePeerFound implements mdns.Notifee.
func (n *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == n.h.ID() || n.h.Network().Connectedness(ai.ID) == network.Connected || n.ctx.Err() != nil {
		return
	}
	select {
	case n.sem <- struct{}{}:
	default:
		return
	}
	n.wg.Add(1)
	go func() {
		defer func() { <-n.sem; n.wg.Done() }()
		ctx, cancel := context.WithTimeout(n.ctx, mdnsDialTimeout)
		defer cancel()
		if err := n.h.Connect(ctx, ai); err != nil {
			log.Debugw("mdns dial failed", "peer", ai.ID, "err", err)
		}
	}()
}

// mdnsDiscovery wraps the libp2p mDNS service with our notifee.
type mdnsDiscovery struct {
	svc    mdns.Service
	notify *mdnsNotifee
}

// mdnsServiceName is the DNS-SD service rumor nodes announce. DNS-SD limits
// a service label to 15 characters (RFC 6335), too few to carry a chain id,
// so every rumor node on a LAN finds every other; a node of another chain
// shares no topic and no protocol and is trimmed like any idle connection.
const mdnsServiceName = "_rumor._udp"

func startMDNS(h host.Host) (*mdnsDiscovery, error) {
	ctx, cancel := context.WithCancel(context.Background())
	n := &mdnsNotifee{h: h, ctx: ctx, stop: cancel, sem: make(chan struct{}, mdnsMaxDials)}
	svc := mdns.NewMdnsService(h, mdnsServiceName, n)
	if err := svc.Start(); err != nil {
		cancel()
		return nil, err
	}
	return &mdnsDiscovery{svc: svc, notify: n}, nil
}

func (d *mdnsDiscovery) close() error {
	err := d.svc.Close()
	d.notify.stop()
	d.notify.wg.Wait()
	return err
}
