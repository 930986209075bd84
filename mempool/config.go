package mempool

import (
	"errors"
	"fmt"
	"time"

	golog "github.com/ipfs/go-log/v2"
)

var log = golog.Logger("rumor/mempool")

// Default limits. Each says where its number comes from.
const (
	// DefaultMaxTxs bounds the transactions held. A default block (1 MiB)
	// holds about 4,000 transactions of 250 bytes, so 50,000 is a backlog of
	// a dozen full blocks, the same order as geth's 5,120 executable plus
	// 1,024 queued slots scaled to our smaller transactions. Bitcoin Core
	// bounds by memory instead (300 MB); we bound both.
	DefaultMaxTxs = 50_000
	// DefaultMaxBytes bounds the sum of the transactions' encoded sizes.
	// 50,000 typical transactions take about 12 MiB; 64 MiB leaves room for
	// large-payload transactions while bounding the pool's memory (about
	// twice this, with the per-entry index overhead).
	DefaultMaxBytes = 64 << 20
	// DefaultMaxPerSender bounds one sender's transactions. geth guarantees
	// 16 executable slots per account (AccountSlots) and queues 64
	// (AccountQueue); Bitcoin Core limits a chain of unconfirmed
	// descendants to 25. A sender here is one key, not a UTXO graph, and
	// testnet load generators stream from a key faster than blocks confirm:
	// 64 keeps several blocks' worth in flight while one sender holds at
	// most 0.13% of a default pool.
	DefaultMaxPerSender = 64
	// DefaultMaxNonceGap is how far past a sender's pending nonce a
	// transaction may be and still be queued. Gossip reorders a sender's
	// consecutive transactions by a few positions; a nonce more than 16
	// ahead is not reordering. geth queues up to 64 per account, which the
	// DETER attack used.
	DefaultMaxNonceGap = 16
	// DefaultMaxQueued bounds queued (not yet executable) transactions in
	// all: 10% of DefaultMaxTxs, close to geth's GlobalQueue/GlobalSlots
	// ratio (1,024 / 5,120). Queued transactions can never evict executable
	// ones, so this bounds what an attacker's future nonces can occupy.
	DefaultMaxQueued = DefaultMaxTxs / 10
	// DefaultTTL is how long a transaction may wait. geth drops queued
	// transactions after 3 h (Lifetime); Bitcoin Core keeps transactions
	// 336 h, suited to 10-minute blocks. With second-scale blocks a
	// transaction unmined for 3 h is not going to be.
	DefaultTTL = 3 * time.Hour
	// DefaultReplaceBumpPercent is the fee increase a replacement (same
	// sender and nonce) must pay, geth's PriceBump (10%). Without a minimum
	// bump one key could make every node relay it again and again for free.
	DefaultReplaceBumpPercent = 10
	// DefaultMaxRecent is how many recently included transaction ids the
	// pool remembers, so the relay does not fetch a just-mined transaction
	// again. Bitcoin Core keeps a rolling filter of 48,000 recently
	// confirmed transactions; 50,000 is a dozen full default blocks.
	DefaultMaxRecent = 50_000
)

// Sanity bounds on configuration, checked by Validate.
const (
	// maxReplaceBumpPercent rejects bumps that are surely a unit mistake
	// (a factor of 11 written as 1000%).
	maxReplaceBumpPercent = 1000
)

// Config sets the pool's limits. A zero field means its default; negative
// values are invalid. The pool copies the Config when it is created.
type Config struct {
	// MaxTxs is the most transactions held, queued ones included
	// (0 = DefaultMaxTxs).
	MaxTxs int
	// MaxBytes is the most bytes of encoded transactions held
	// (0 = DefaultMaxBytes).
	MaxBytes int
	// MaxPerSender is the most transactions held for one sender
	// (0 = DefaultMaxPerSender, capped at MaxTxs).
	MaxPerSender int
	// MaxNonceGap is how far past its sender's pending nonce a transaction
	// may be and still be queued (0 = DefaultMaxNonceGap).
	MaxNonceGap int
	// MaxQueued is the most queued (future-nonce) transactions held in all
	// (0 = DefaultMaxQueued, capped at MaxTxs).
	MaxQueued int
	// TTL is how long a transaction may stay before Expire drops it
	// (0 = DefaultTTL).
	TTL time.Duration
	// ReplaceBumpPercent is the least fee increase, in percent, for a
	// transaction replacing another with the same sender and nonce; the
	// fee must also rise by at least 1 unit and the fee rate must not fall
	// (0 = DefaultReplaceBumpPercent).
	ReplaceBumpPercent int
	// MaxRecent is how many recently included transaction ids Known
	// remembers (0 = DefaultMaxRecent).
	MaxRecent int
	// PersistPath is where the node saves the pool on clean shutdown and
	// loads it on start ("" = no persistence). The pool itself only
	// reads or writes it when Save or Load is called.
	PersistPath string
	// JournalPath is where the node keeps its own-tx journal (see
	// Journal): every transaction it acknowledges to an RPC client is
	// written there first, so a crash (kill -9, an OOM kill, a panic)
	// does not lose it; on start the node replays it into the pool
	// ("" = no journal). The pool itself never touches it.
	JournalPath string
	// JournalSync makes the journal fsync each batch of appends before
	// they are acknowledged, so an acknowledged transaction also survives
	// power loss (JournalConfig.Sync). Off by default, like the chain
	// store's SyncWrites: the failures the journal is for (kill -9, an
	// OOM kill, a panic) lose nothing without it, a node whose store may
	// lose its last blocks to a power failure gains little from a journal
	// that does not, and the fsync is the journal's whole cost: 0.6 ms per
	// lone append against 4.5 µs on a virtio disk, and 1.3k instead of
	// 3.2k accepted tx/s from 16 RPC clients of a node on 2 cores
	// (cmd/rumor's TestKillDashNineKeepsAcknowledgedTxs).
	JournalSync bool
}

// DefaultConfig returns the default limits, without persistence.
func DefaultConfig() Config {
	return Config{
		MaxTxs:             DefaultMaxTxs,
		MaxBytes:           DefaultMaxBytes,
		MaxPerSender:       DefaultMaxPerSender,
		MaxNonceGap:        DefaultMaxNonceGap,
		MaxQueued:          DefaultMaxQueued,
		TTL:                DefaultTTL,
		ReplaceBumpPercent: DefaultReplaceBumpPercent,
		MaxRecent:          DefaultMaxRecent,
	}
}

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxTxs == 0 {
		c.MaxTxs = d.MaxTxs
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.MaxPerSender == 0 {
		c.MaxPerSender = min(d.MaxPerSender, max(c.MaxTxs, 0))
	}
	if c.MaxNonceGap == 0 {
		c.MaxNonceGap = d.MaxNonceGap
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = min(d.MaxQueued, max(c.MaxTxs, 0))
	}
	if c.TTL == 0 {
		c.TTL = d.TTL
	}
	if c.ReplaceBumpPercent == 0 {
		c.ReplaceBumpPercent = d.ReplaceBumpPercent
	}
	if c.MaxRecent == 0 {
		c.MaxRecent = d.MaxRecent
	}
	return c
}

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("invalid mempool config")

// Validate checks the configuration after filling defaults: no negative
// limits, MaxQueued and MaxPerSender within MaxTxs, and a replacement bump
// of at most 1000%.
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.MaxTxs < 0:
		return bad("MaxTxs %d < 0", c.MaxTxs)
	case c.MaxBytes < 0:
		return bad("MaxBytes %d < 0", c.MaxBytes)
	case c.MaxPerSender < 0:
		return bad("MaxPerSender %d < 0", c.MaxPerSender)
	case c.MaxNonceGap < 0:
		return bad("MaxNonceGap %d < 0", c.MaxNonceGap)
	case c.MaxQueued < 0:
		return bad("MaxQueued %d < 0", c.MaxQueued)
	case c.TTL < 0:
		return bad("TTL %v < 0", c.TTL)
	case c.ReplaceBumpPercent < 0 || c.ReplaceBumpPercent > maxReplaceBumpPercent:
		return bad("ReplaceBumpPercent %d outside 1..%d", c.ReplaceBumpPercent, maxReplaceBumpPercent)
	case c.MaxRecent < 0:
		return bad("MaxRecent %d < 0", c.MaxRecent)
	case c.MaxQueued > c.MaxTxs:
		return bad("MaxQueued %d exceeds MaxTxs %d", c.MaxQueued, c.MaxTxs)
	case c.MaxPerSender > c.MaxTxs:
		return bad("MaxPerSender %d exceeds MaxTxs %d", c.MaxPerSender, c.MaxTxs)
	}
	return nil
}
