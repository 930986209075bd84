package relay

import (
	"sync"
	"sync/atomic"
)

// MaxRecentRejects bounds the ids of txs found invalid that the relay
// remembers, so a peer announcing them again (or another peer relaying
// the same junk) costs no fetch and no validation. Bitcoin Core keeps
// 120,000 in a rolling Bloom filter; an exact table of 16,384 ids (~1 MiB
// when full, nothing until used) covers sixteen times the validation
// throttle's worth of junk.
const MaxRecentRejects = 16384

// recentRejects remembers txs the pool found Invalid, forgetting all of
// them when the chain's tip changes (as Bitcoin Core does): a chain may
// call a tx invalid for state that a new block changes. The oldest id
// makes room when full. A tightly scoped mutex guards it; nothing calls
// out while holding it.
type recentRejects struct {
	// used is set once anything was recorded, so the common case (no
	// junk seen) costs one atomic load per id, not a Tip call.
	used atomic.Bool

	mu  sync.Mutex
	tip ID // the tip the entries were rejected under
	ids idRing[struct{}]
}

// add records id as rejected while tip is the chain's tip.
func (r *recentRejects) add(id, tip ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetIfMoved(tip)
	r.ids.cap = MaxRecentRejects
	r.ids.put(id, struct{}{})
	r.used.Store(true)
}

// has reports whether id was rejected under the current tip.
func (r *recentRejects) has(id, tip ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetIfMoved(tip)
	_, ok := r.ids.get(id)
	return ok
}

func (r *recentRejects) resetIfMoved(tip ID) {
	if tip != r.tip {
		r.tip = tip
		r.ids.reset()
	}
}

// txRejected records a tx the pool found Invalid.
func (r *Relay) txRejected(id ID) {
	_, tip := r.chain.Tip()
	r.rejects.add(id, tip)
}

// recentlyRejected reports whether the pool found id Invalid since the
// tip last changed.
func (r *Relay) recentlyRejected(id ID) bool {
	if !r.rejects.used.Load() {
		return false
	}
	_, tip := r.chain.Tip()
	return r.rejects.has(id, tip)
}
