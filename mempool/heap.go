package mempool

import (
	"bytes"
	"math/bits"
)

// entryHeap is a binary min-heap of entries that records each entry's
// position (through index) so any entry can be removed in O(log n).
type entryHeap struct {
	items []*entry
	less  func(a, b *entry) bool
	index func(e *entry) *int
}

func (h *entryHeap) len() int { return len(h.items) }

func (h *entryHeap) peek() *entry {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *entryHeap) push(e *entry) {
	*h.index(e) = len(h.items)
	h.items = append(h.items, e)
	h.up(len(h.items) - 1)
}

func (h *entryHeap) pop() *entry {
	if len(h.items) == 0 {
		return nil
	}
	e := h.items[0]
	h.remove(e)
	return e
}

// remove takes e out of the heap; it is a no-op if e is not in it.
func (h *entryHeap) remove(e *entry) {
	i := *h.index(e)
	if i < 0 || i >= len(h.items) || h.items[i] != e {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	*h.index(e) = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

func (h *entryHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.index(h.items[i]) = i
	*h.index(h.items[j]) = j
}

func (h *entryHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *entryHeap) down(i int) {
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			m = r
		}
		if !h.less(h.items[m], h.items[i]) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// rateCmp compares the fee rates (fee per encoded byte) of a and b exactly,
// with 128-bit cross products: -1 if a's is lower, 0 if equal, +1 if higher.
func rateCmp(a, b *entry) int {
	ah, al := bits.Mul64(a.tx.Fee, uint64(b.size))
	bh, bl := bits.Mul64(b.tx.Fee, uint64(a.size))
	switch {
	case ah < bh || (ah == bh && al < bl):
		return -1
	case ah == bh && al == bl:
		return 0
	}
	return 1
}

// evictLess orders entries from first to evict: lowest fee rate, then the
// most recently added (older entries waited longer for their place), then by
// id so the order is deterministic.
func evictLess(a, b *entry) bool {
	if c := rateCmp(a, b); c != 0 {
		return c < 0
	}
	if !a.added.Equal(b.added) {
		return a.added.After(b.added)
	}
	return bytes.Compare(a.id[:], b.id[:]) < 0
}

// mineLess orders entries from first to mine: highest fee rate, then the
// oldest, then by id. It is evictLess reversed except for the age rule,
// which favours the oldest in both directions.
func mineLess(a, b *entry) bool {
	if c := rateCmp(a, b); c != 0 {
		return c > 0
	}
	if !a.added.Equal(b.added) {
		return a.added.Before(b.added)
	}
	return bytes.Compare(a.id[:], b.id[:]) < 0
}

// ageLess orders entries oldest first, for Expire.
func ageLess(a, b *entry) bool {
	if !a.added.Equal(b.added) {
		return a.added.Before(b.added)
	}
	return bytes.Compare(a.id[:], b.id[:]) < 0
}
