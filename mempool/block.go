package mempool

import (
	"slices"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// recentSet remembers the last n ids added, for Known. A ring holds them
// in order; the map holds each id's latest write sequence, so an id added
// twice is forgotten only when its latest slot is overwritten. Both grow
// with use up to n, not up front: a node that has seen few txs (a 1000-node
// simulation has many) holds little.
type recentSet struct {
	ring []chain.Hash
	n    int    // capacity
	seq  uint64 // writes so far
	m    map[chain.Hash]uint64
}

func newRecentSet(n int) recentSet {
	return recentSet{n: max(n, 0), m: make(map[chain.Hash]uint64)}
}

func (r *recentSet) add(id chain.Hash) {
	n := uint64(r.n)
	if n == 0 {
		return
	}
	slot := r.seq % n
	if r.seq >= n {
		if old := r.ring[slot]; r.m[old] == r.seq-n {
			delete(r.m, old)
		}
		r.ring[slot] = id
	} else {
		r.ring = append(r.ring, id) // slot == len(r.ring) until full
	}
	r.m[id] = r.seq
	r.seq++
}

func (r *recentSet) has(id chain.Hash) bool {
	_, ok := r.m[id]
	return ok
}

func (r *recentSet) remove(id chain.Hash) { delete(r.m, id) }

// touched lists the accounts a block changes that the pool holds txs of:
// senders (nonce and balance), recipients (balance) and the proposer
// (fees). Recipients matter on disconnect, when their balance falls.
func (p *Pool) touched(b *chain.Block) []*sender {
	var out []*sender
	seen := make(map[*sender]bool)
	add := func(a chain.Address) {
		if s := p.senders[a]; s != nil && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, tx := range b.Txs {
		add(tx.From)
		add(tx.To)
	}
	add(b.Header.Proposer)
	return out
}

// BlockConnected updates the pool after the store connected b to the best
// chain (call it after the store's state is at b or later, once per block,
// oldest first). b's transactions leave the pool and are remembered as
// recently included; every held sender whose account b touched is re-synced
// to the confirmed state: spent nonces leave, transactions its balance no
// longer covers leave with their later nonces, queued ones whose gap b
// filled are promoted. It returns the ids of held transactions that left,
// b's own included, and of those promoted: they were queued until now, so
// nothing has announced them as executable yet.
func (p *Pool) BlockConnected(b *chain.Block, now time.Time) (left, promoted []chain.Hash) {
	if b == nil {
		return nil, nil
	}
	return p.BlockConnectedIDs(b, b.TxIDs(), now) // hashing outside the lock
}

// BlockConnectedIDs is BlockConnected for a caller that holds b's tx ids
// already (b.TxIDs(), in order), which spares hashing a full block again.
func (p *Pool) BlockConnectedIDs(b *chain.Block, ids []chain.Hash, now time.Time) (left, promoted []chain.Hash) {
	if b == nil {
		return nil, nil
	}
	if len(ids) != len(b.Txs) { // not b's: hash them here
		ids = b.TxIDs()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if e, ok := p.byID[id]; ok {
			p.remove(e)
			left = append(left, id)
		}
		p.recent.add(id)
	}
	// Every sender of b is touched, so one whose txs were all mined is
	// re-synced to nothing and forgotten here.
	for _, s := range p.touched(b) {
		p.syncSender(s, p.state.Account(s.addr), true, &left, &promoted)
		p.gc(s)
	}
	if evicted := p.trim(); len(evicted) > 0 {
		left = append(left, evicted...)
		// A promoted tx the limits then evicted is not held.
		promoted = slices.DeleteFunc(promoted, func(id chain.Hash) bool {
			_, held := p.byID[id]
			return !held
		})
	}
	return left, promoted
}

// BlockDisconnected updates the pool after the store disconnected b from
// the best chain. Call it after the store has moved to its new tip, once
// per disconnected block, tip first, before the BlockConnected calls of the
// new branch. Held senders b touched are re-synced to the confirmed state,
// then b's transactions come back, stamped now, if still valid against it:
// a nonce the new branch already spent or a balance it no longer covers
// keeps them out. They skip the signature check (the store validated the
// block) and, until the next BlockConnected, Add or Expire, the size and
// gap limits, so that blocks coming back newest first can refill the nonce
// gaps they open. It returns the ids that came back.
func (p *Pool) BlockDisconnected(b *chain.Block, now time.Time) []chain.Hash {
	if b == nil {
		return nil
	}
	ids := b.TxIDs()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.recent.remove(id)
	}
	for _, s := range p.touched(b) {
		p.syncSender(s, p.state.Account(s.addr), false, nil, nil)
		p.gc(s)
	}
	var back []chain.Hash
	for i, tx := range b.Txs {
		if r := p.addLocked(tx, ids[i], now, true); r.Code.Held() {
			back = append(back, ids[i])
		}
	}
	return back
}

// Expire drops transactions held for TTL or longer, with their senders'
// later nonces (which could no longer be mined), and returns their ids.
// Call it periodically (a minute is plenty against a 3 h TTL).
func (p *Pool) Expire(now time.Time) []chain.Hash {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []chain.Hash
	for {
		e := p.timeHeap.peek()
		if e == nil || now.Sub(e.added) < p.cfg.TTL {
			break
		}
		s := e.s
		j, _ := s.find(e.tx.Nonce)
		p.dropFrom(s, j, &out)
		p.relink(s, nil, &out)
		p.gc(s)
	}
	out = append(out, p.trim()...)
	if len(out) > 0 {
		log.Debugw("expired transactions", "count", len(out))
	}
	return out
}
