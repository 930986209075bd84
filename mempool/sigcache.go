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
	mu  sync.Mutex
	ids recentSet // the same bounded, oldest-out set Known uses
}

// NewSigCache returns a cache of at most capacity ids (at least 1).
func NewSigCache(capacity int) *SigCache {
	return &SigCache{ids: newRecentSet(max(capacity, 1))}
}

// Has reports whether id's signature verified.
func (c *SigCache) Has(id chain.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids.has(id)
}

// Add records that id's signature verified. A repeat takes no slot.
func (c *SigCache) Add(id chain.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ids.has(id) {
		c.ids.add(id)
	}
}

// Len returns how many ids the cache holds.
func (c *SigCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids.m)
}
