package peers

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Liveness defaults: ping every connected peer every 15 s and give it 10 s
// to answer; three misses in a row (45 s of silence, comparable to Bitcoin
// Core's 20 min inactivity timeout scaled to a relay that wants fast
// replacement) disconnect it.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultPingTimeout  = 10 * time.Second
	DefaultMaxMisses    = 3
)

// Liveness pings connected peers and disconnects those that stop answering,
// so that discovery replaces them. The libp2p ping service must be mounted
// on the host (libp2p.Ping(true), the default).
type Liveness struct {
	Host      host.Host
	Interval  time.Duration // zero means DefaultPingInterval
	Timeout   time.Duration // zero means DefaultPingTimeout
	MaxMisses int           // zero means DefaultMaxMisses
	// OnDrop, if set, is called after a peer is disconnected for silence.
	OnDrop func(peer.ID)

	mu     sync.Mutex
	misses map[peer.ID]int
	rtt    map[peer.ID]time.Duration
}

// Run pings peers until ctx ends. Pings of one round run in parallel, one
// goroutine per connected peer, bounded by the connection manager's high
// watermark; a round never starts before the previous one ended.
func (l *Liveness) Run(ctx context.Context) {
	interval, timeout, maxMisses := l.Interval, l.Timeout, l.MaxMisses
	if interval <= 0 {
		interval = DefaultPingInterval
	}
	if timeout <= 0 {
		timeout = DefaultPingTimeout
	}
	if maxMisses <= 0 {
		maxMisses = DefaultMaxMisses
	}
	l.mu.Lock()
	l.misses = make(map[peer.ID]int)
	l.rtt = make(map[peer.ID]time.Duration)
	l.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.round(ctx, timeout, maxMisses)
	}
}

func (l *Liveness) round(ctx context.Context, timeout time.Duration, maxMisses int) {
	connected := l.Host.Network().Peers()
	var wg sync.WaitGroup
	for _, p := range connected {
		wg.Add(1)
		go func(p peer.ID) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var res ping.Result
			select {
			case res = <-ping.Ping(pctx, l.Host, p):
			case <-pctx.Done():
				res.Error = pctx.Err()
			}
			if ctx.Err() != nil {
				return
			}
			l.record(p, res, maxMisses)
		}(p)
	}
	wg.Wait()
	// Forget peers that are gone, so the maps stay bounded by the
	// connection count.
	live := make(map[peer.ID]bool, len(connected))
	for _, p := range connected {
		live[p] = true
	}
	l.mu.Lock()
	for p := range l.misses {
		if !live[p] {
			delete(l.misses, p)
			delete(l.rtt, p)
		}
	}
	l.mu.Unlock()
}

func (l *Liveness) record(p peer.ID, res ping.Result, maxMisses int) {
	l.mu.Lock()
	if res.Error == nil {
		l.misses[p] = 0
		l.rtt[p] = res.RTT
		l.mu.Unlock()
		return
	}
	l.misses[p]++
	drop := l.misses[p] >= maxMisses
	if drop {
		delete(l.misses, p)
		delete(l.rtt, p)
	}
	l.mu.Unlock()
	if drop {
		log.Infow("dropping unresponsive peer", "peer", p, "misses", maxMisses, "err", res.Error)
		_ = l.Host.Network().ClosePeer(p)
		if l.OnDrop != nil {
			l.OnDrop(p)
		}
	}
}

// RTT returns the last measured round-trip time to p, if any.
func (l *Liveness) RTT(p peer.ID) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.rtt[p]
	return d, ok
}
