package peers

import (
	"errors"
	"math"
	"sync"
	"time"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

var log = golog.Logger("rumor/peers")

const (
	// MaxTrackedPeers bounds the score book and the limiter. A node keeps at
	// most a few hundred connections (the connection manager's high
	// watermark), so 4096 leaves room for peers that come and go while their
	// scores are retained; past it the least informative record (score
	// nearest zero) is forgotten.
	MaxTrackedPeers = 4096

	// DefaultHalfLife is how fast scores decay toward zero: a penalty loses
	// half its weight every 10 minutes, so an honest peer that tripped once
	// recovers within the hour while a persistent offender stays down.
	DefaultHalfLife = 10 * time.Minute

	// DefaultBanThreshold is the score at which a peer is banned: two
	// invalid blocks, four mismatched bodies, or twenty invalid txs in quick
	// succession (within about 9 s of one another, see banSlack).
	DefaultBanThreshold = -200.0

	// banSlack is the fraction of the ban threshold a peer's score may fall
	// short of and still be banned. Scores decay continuously, so two
	// oversize frames a second apart sum to -199.9, not -200: without the
	// slack "two and the peer is banned" would need two offenses in the
	// same instant. 1% is 2 points at the default threshold, which the
	// decay takes about 9 s to give back: offenses that add up to the
	// threshold within 9 s ban, as the weights' reasoning intends.
	banSlack = 0.01

	// DefaultBanDuration is how long a ban lasts: 24 h, Bitcoin Core's
	// default -bantime.
	DefaultBanDuration = 24 * time.Hour

	// MaxReward caps the positive score a peer can bank with useful
	// deliveries, so good behaviour earlier cannot pay for a later attack.
	MaxReward = 20.0
)

// BookConfig sets the score book's policy. Zero fields take the defaults.
type BookConfig struct {
	// HalfLife is the decay half-life of scores. Zero means DefaultHalfLife.
	HalfLife time.Duration
	// BanThreshold is the (negative) score at or below which a peer is
	// banned (less banSlack of it, for the decay between offenses). Zero
	// means DefaultBanThreshold.
	BanThreshold float64
	// BanDuration is how long a ban lasts. Zero means DefaultBanDuration.
	BanDuration time.Duration
}

// DefaultBookConfig returns the default policy.
func DefaultBookConfig() BookConfig {
	return BookConfig{HalfLife: DefaultHalfLife, BanThreshold: DefaultBanThreshold, BanDuration: DefaultBanDuration}
}

// Validate fills zero fields with defaults and rejects nonsense.
func (c *BookConfig) Validate() error {
	d := DefaultBookConfig()
	if c.HalfLife == 0 {
		c.HalfLife = d.HalfLife
	}
	if c.BanThreshold == 0 {
		c.BanThreshold = d.BanThreshold
	}
	if c.BanDuration == 0 {
		c.BanDuration = d.BanDuration
	}
	if c.HalfLife < 0 || c.BanDuration < 0 {
		return errors.New("peers: half-life and ban duration must be positive")
	}
	if c.BanThreshold > 0 || math.IsNaN(c.BanThreshold) {
		return errors.New("peers: ban threshold must be negative")
	}
	return nil
}

// BanFunc is called, outside the book's lock, when a peer crosses the ban
// threshold.
type BanFunc func(p peer.ID, until time.Time, last Offense)

// Book is the score book. See the package doc for its concurrency contract.
type Book struct {
	cfg   BookConfig
	onBan BanFunc

	mu    sync.Mutex
	peers map[peer.ID]*record
}

type record struct {
	score   float64 // as of updated
	updated time.Time
	counts  [numOffenses]uint32
	banned  bool // already reported to onBan; cleared when the score recovers
}

// NewBook returns an empty score book. onBan may be nil.
func NewBook(cfg BookConfig, onBan BanFunc) (*Book, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Book{cfg: cfg, onBan: onBan, peers: make(map[peer.ID]*record)}, nil
}

// banAt is the score at or below which a peer is banned: the threshold
// less banSlack of it.
func (b *Book) banAt() float64 { return b.cfg.BanThreshold * (1 - banSlack) }

// decay brings r's score to now.
func (b *Book) decay(r *record, now time.Time) {
	if dt := now.Sub(r.updated); dt > 0 {
		r.score *= math.Exp2(-float64(dt) / float64(b.cfg.HalfLife))
		r.updated = now
	}
}

// get returns p's record, creating it (and evicting if full) when missing.
func (b *Book) get(p peer.ID, now time.Time) *record {
	r, ok := b.peers[p]
	if ok {
		b.decay(r, now)
		return r
	}
	if len(b.peers) >= MaxTrackedPeers {
		b.evictLocked(now)
	}
	r = &record{updated: now}
	b.peers[p] = r
	return r
}

// evictLocked forgets the record whose decayed score is nearest zero: it
// carries the least information. Bans live in the BanList, not here, so
// eviction never lifts a ban.
func (b *Book) evictLocked(now time.Time) {
	var victim peer.ID
	best := math.Inf(1)
	for id, r := range b.peers {
		b.decay(r, now)
		if a := math.Abs(r.score); a < best {
			best, victim = a, id
		}
	}
	delete(b.peers, victim)
}

// Penalize records an offense by p and returns p's new score. When the score
// reaches the ban threshold the ban callback runs (once per crossing).
func (b *Book) Penalize(p peer.ID, o Offense, now time.Time) float64 {
	b.mu.Lock()
	r := b.get(p, now)
	r.score += o.Weight()
	if o >= 0 && o < numOffenses {
		r.counts[o]++
	}
	score := r.score
	ban := score <= b.banAt() && !r.banned
	if ban {
		r.banned = true
	}
	b.mu.Unlock()
	log.Debugw("penalty", "peer", p, "offense", o, "score", score)
	if ban {
		log.Infow("banning peer", "peer", p, "offense", o, "score", score, "for", b.cfg.BanDuration)
		if b.onBan != nil {
			b.onBan(p, now.Add(b.cfg.BanDuration), o)
		}
	}
	return score
}

// Reward credits p for useful work (a first delivery of a valid item),
// capped at MaxReward.
func (b *Book) Reward(p peer.ID, amount float64, now time.Time) {
	if amount <= 0 || math.IsNaN(amount) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.get(p, now)
	r.score = math.Min(r.score+amount, MaxReward)
	if r.score > b.banAt() {
		r.banned = false
	}
}

// Score returns p's decayed score (0 for an unknown peer).
func (b *Book) Score(p peer.ID, now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.peers[p]
	if !ok {
		return 0
	}
	b.decay(r, now)
	return r.score
}

// Breakdown is a peer's score and the offenses counted against it.
type Breakdown struct {
	Score    float64           `json:"score"`
	Offenses map[string]uint32 `json:"offenses,omitempty"`
}

// Breakdown returns p's score and offense counts, for JSON-RPC and logs.
func (b *Book) Breakdown(p peer.ID, now time.Time) Breakdown {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.peers[p]
	if !ok {
		return Breakdown{}
	}
	b.decay(r, now)
	out := Breakdown{Score: r.score}
	for o, n := range r.counts {
		if n > 0 {
			if out.Offenses == nil {
				out.Offenses = make(map[string]uint32)
			}
			out.Offenses[Offense(o).String()] = n
		}
	}
	return out
}

// Len returns the number of peers tracked.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.peers)
}
