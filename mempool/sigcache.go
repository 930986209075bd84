package mempool

import (
	"sync"

	"github.com/rumor-relay/rumor/chain"
)

// SigCache remembers the ids of transactions whose signatures verified, for
// pools on one chain in one process: a simulated network of N nodes checks
// each transaction's ed25519 signature once instead of N times. A tx id
// hashes the whole signed encoding, so a cached id vouches for exactly the
// bytes that verified. Pools sharing a cache must share a chain id (the
// signature covers it). What each node pays for verification is modelled
// separately (the node's CPU model); the cache only spares the host.
//
// It is safe for concurrent use and holds at most its capacity, forgetting
// the oldest ids first (a forgotten id is verified again: a cost, never an
// error).
type SigCache struct {
	mu   sync.Mutex
	ids  map[chain.Hash]struct{}
	ring []chain.Hash // insertion order, for eviction
	next int          // ring slot of the next insertion once full
	max  int
}

// NewSigCache returns a cache of at most capacity ids (at least 1).
func NewSigCache(capacity int) *SigCache {
	return &SigCache{ids: make(map[chain.Hash]struct{}), max: max(capacity, 1)}
}

// Has reports whether id's signature verified.
func (c *SigCache) Has(id chain.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ids[id]
	return ok
}

// Add records that id's signature verified.
func (c *SigCache) Add(id chain.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ids[id]; ok {
		return
	}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, id)
	} else {
		delete(c.ids, c.ring[c.next])
		c.ring[c.next] = id
		c.next = (c.next + 1) % c.max
	}
	c.ids[id] = struct{}{}
}

// Len returns how many ids the cache holds.
func (c *SigCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}
