package peers

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Default serving budgets per peer. A syncing peer asks for at most 16
// blocks in flight (Bitcoin Core's per-peer window) and a relaying peer for
// a few tx batches per second; 50 requests/s with a burst of 100 leaves an
// honest peer unthrottled. 8 MiB/s of bodies with a 16 MiB burst lets a
// peer sync a few 1 MiB blocks per second from us without letting one peer
// take the whole uplink.
const (
	DefaultRequestsPerSecond = 50
	DefaultRequestBurst      = 100
	DefaultBytesPerSecond    = 8 << 20
	DefaultByteBurst         = 16 << 20
)

// LimiterConfig sets the per-peer serving budgets. Zero fields take the
// defaults.
type LimiterConfig struct {
	// RequestsPerSecond refills a peer's request bucket (requests/s).
	// Zero or less means DefaultRequestsPerSecond.
	RequestsPerSecond float64 `toml:"requests_per_second"`
	// RequestBurst is the request bucket's size. Zero or less means
	// DefaultRequestBurst.
	RequestBurst int `toml:"request_burst"`
	// BytesPerSecond refills a peer's byte bucket (bytes/s). Zero or less
	// means DefaultBytesPerSecond.
	BytesPerSecond float64 `toml:"bytes_per_second"`
	// ByteBurst is the byte bucket's size, and so the largest response
	// served. Zero or less means DefaultByteBurst.
	ByteBurst int `toml:"byte_burst"`
}

func (c *LimiterConfig) fill() {
	if c.RequestsPerSecond <= 0 {
		c.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if c.RequestBurst <= 0 {
		c.RequestBurst = DefaultRequestBurst
	}
	if c.BytesPerSecond <= 0 {
		c.BytesPerSecond = DefaultBytesPerSecond
	}
	if c.ByteBurst <= 0 {
		c.ByteBurst = DefaultByteBurst
	}
}

// Limiter holds a request bucket and a byte bucket per peer. Safe for
// concurrent use; at most MaxTrackedPeers peers are tracked (the least
// recently used is dropped, which only ever refills its buckets).
type Limiter struct {
	cfg LimiterConfig

	mu    sync.Mutex
	peers map[peer.ID]*buckets
}

type buckets struct {
	requests *rate.Limiter
	bytes    *rate.Limiter
	lastUsed time.Time
}

// NewLimiter returns a limiter with the given budgets.
func NewLimiter(cfg LimiterConfig) *Limiter {
	cfg.fill()
	return &Limiter{cfg: cfg, peers: make(map[peer.ID]*buckets)}
}

func (l *Limiter) get(p peer.ID, now time.Time) *buckets {
	b, ok := l.peers[p]
	if !ok {
		if len(l.peers) >= MaxTrackedPeers {
			var victim peer.ID
			var oldest time.Time
			for id, x := range l.peers {
				if oldest.IsZero() || x.lastUsed.Before(oldest) {
					victim, oldest = id, x.lastUsed
				}
			}
			delete(l.peers, victim)
		}
		b = &buckets{
			requests: rate.NewLimiter(rate.Limit(l.cfg.RequestsPerSecond), l.cfg.RequestBurst),
			bytes:    rate.NewLimiter(rate.Limit(l.cfg.BytesPerSecond), l.cfg.ByteBurst),
		}
		l.peers[p] = b
	}
	b.lastUsed = now
	return b
}

// AllowRequest takes one request token from p's bucket; false means the
// peer is over budget and the request should be refused.
func (l *Limiter) AllowRequest(p peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(p, now).requests.AllowN(now, 1)
}

// AllowBytes takes n byte tokens from p's bucket; false means serving n more
// bytes would exceed the peer's budget. A response larger than the burst is
// never allowed, so callers cap responses below ByteBurst.
func (l *Limiter) AllowBytes(p peer.ID, n int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.get(p, now).bytes.AllowN(now, n)
}

// Len returns the number of peers tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.peers)
}
