package mempool

import (
	"math"

	"github.com/rumor-relay/rumor/chain"
)

// TxBudget returns the maxBytes to pass to Template for a block of at most
// maxBlockBytes: what is left after the header and the longest possible tx
// count prefix. Template counts each tx with its in-block length prefix.
func TxBudget(maxBlockBytes int) int {
	return maxBlockBytes - chain.HeaderSize - uvarintLen(chain.MaxBlockTxs)
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}

// inBlockSize is what a tx of encoded size n adds to a block: its length
// prefix and its encoding.
func inBlockSize(n int) int { return uvarintLen(uint64(n)) + n }

// minInBlockSize is the smallest a tx can add to a block (empty payload).
var minInBlockSize = inBlockSize((&chain.Tx{}).Size())

// head is one sender's next candidate in Template: s.txs[i].
type head struct {
	s *sender
	i int
}

// headHeap is a max-heap of sender heads by mining priority (mineLess).
type headHeap []head

func (h headHeap) less(i, j int) bool { return mineLess(h[i].s.txs[h[i].i], h[j].s.txs[h[j].i]) }

func (h headHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h *headHeap) popTop() {
	old := *h
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	h.down(0)
}

// selectLocked walks executable txs in mining order, highest fee rate first
// among each sender's next nonce, and calls take for each that fits in the
// remaining byte budget (counted with inBlockSize). take returns false to
// stop. A sender whose next tx does not fit is skipped entirely, since its
// later nonces cannot go before it.
func (p *Pool) selectLocked(maxBytes int, take func(e *entry) bool) {
	h := make(headHeap, 0, len(p.senders))
	for _, s := range p.senders {
		if s.nexec > 0 {
			h = append(h, head{s: s})
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	left := maxBytes
	for len(h) > 0 && left >= minInBlockSize {
		top := &h[0]
		e := top.s.txs[top.i]
		need := inBlockSize(e.size)
		if need > left {
			h.popTop()
			continue
		}
		if !take(e) {
			return
		}
		left -= need
		if top.i+1 < top.s.nexec {
			top.i++
			h.down(0)
		} else {
			h.popTop()
		}
	}
}

// Template returns transactions for the next block: executable ones only,
// highest fee rate first subject to each sender's nonce order, at most
// maxTxs of them, whose in-block sizes (encoding plus length prefix) sum to
// at most maxBytes (see TxBudget). The txs are shared: do not modify them.
func (p *Pool) Template(maxBytes, maxTxs int) []*chain.Tx {
	if maxTxs <= 0 || maxBytes <= 0 {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*chain.Tx, 0, min(maxTxs, len(p.byID), maxBytes/minInBlockSize+1))
	p.selectLocked(maxBytes, func(e *entry) bool {
		out = append(out, e.tx)
		return len(out) < maxTxs
	})
	return out
}

// IDs returns up to max ids of executable transactions, most valuable to
// mine first, for mempool sync: a peer that fetches only the first ones
// gets what the next blocks will contain.
func (p *Pool) IDs(max int) []chain.Hash {
	if max <= 0 {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]chain.Hash, 0, min(max, len(p.byID)))
	p.selectLocked(math.MaxInt, func(e *entry) bool {
		out = append(out, e.id)
		return len(out) < max
	})
	return out
}

// collided marks a short id matched by more than one held tx.
var collided = new(entry)

// LookupShortIDs resolves a compact block's keyed short ids against every
// held transaction, queued ones included (a block may fill their gap):
// out[i] is the held tx whose short id (shortOf of its id) is short[i], or
// nil when no held tx or more than one matches (the caller then fetches it
// by position). The short-id scheme belongs to the relay's wire format, so
// it is passed in. The index is built per call over the wanted ids only, so
// its memory is bounded by len(short), not by the pool.
func (p *Pool) LookupShortIDs(shortOf func(chain.Hash) uint64, short []uint64) []*chain.Tx {
	out := make([]*chain.Tx, len(short))
	if len(short) == 0 {
		return out
	}
	found := make(map[uint64]*entry, len(short))
	for _, s := range short {
		found[s] = nil
	}
	p.mu.RLock()
	for id, e := range p.byID {
		sid := shortOf(id)
		prev, want := found[sid]
		switch {
		case !want:
		case prev == nil:
			found[sid] = e
		default:
			found[sid] = collided
		}
	}
	p.mu.RUnlock()
	for i, s := range short {
		if e := found[s]; e != nil && e != collided {
			out[i] = e.tx
		}
	}
	return out
}
