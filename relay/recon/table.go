package recon

// entry is an id whose future symbols are still to be produced (encoder) or
// subtracted (decoder), with where its index sequence stands.
type entry struct {
	id    ID
	check uint64
	m     mapping // m.idx: the next index not yet applied; >= MaxSymbols: none
	prev  int32   // neighbours in the bucket of m.idx, -1 at either end
	succ  int32
	sign  int8 // decoder: +1 remote holds it, -1 we hold it; encoder: +1
}

// table holds entries in buckets by the next index each maps to: a
// calendar queue. Symbols are produced (and subtracted) in index order and
// every index is a small integer below MaxSymbols, so a bucket per index
// gives O(1) insertion, removal and "all entries due at index i", where the
// paper's min-heap costs O(log n) per mapping. Entries whose sequence has
// passed MaxSymbols are in no bucket.
type table struct {
	es    []entry
	heads []int32 // heads[i]: first entry due at index i, or -1; grown on demand up to MaxSymbols
}

func newTable() table { return table{} }

// grow makes heads cover index i, doubling so that growth costs O(1) per
// index, and never past MaxSymbols. Small sets and short sessions then
// never pay for the whole bound.
func (t *table) grow(i int) {
	n := min(max(64, 2*len(t.heads), i+1), MaxSymbols)
	for len(t.heads) < n {
		t.heads = append(t.heads, -1)
	}
}

// link puts entry k into the bucket of its next index, if below the bound.
func (t *table) link(k int32) {
	e := &t.es[k]
	if e.m.idx >= MaxSymbols {
		e.prev, e.succ = -1, -1
		return
	}
	if e.m.idx >= uint64(len(t.heads)) {
		t.grow(int(e.m.idx))
	}
	h := &t.heads[e.m.idx]
	e.prev, e.succ = -1, *h
	if *h >= 0 {
		t.es[*h].prev = k
	}
	*h = k
}

// unlink takes entry k out of its bucket.
func (t *table) unlink(k int32) {
	e := &t.es[k]
	if e.m.idx >= MaxSymbols {
		return
	}
	if e.prev >= 0 {
		t.es[e.prev].succ = e.succ
	} else {
		t.heads[e.m.idx] = e.succ
	}
	if e.succ >= 0 {
		t.es[e.succ].prev = e.prev
	}
	e.prev, e.succ = -1, -1
}

// move makes entry from take slot to (which must be free), fixing the
// links that point at it. The caller updates its own index of slots.
func (t *table) move(from, to int32) {
	t.es[to] = t.es[from]
	e := &t.es[to]
	if e.m.idx >= MaxSymbols {
		return
	}
	if e.prev >= 0 {
		t.es[e.prev].succ = to
	} else {
		t.heads[e.m.idx] = to
	}
	if e.succ >= 0 {
		t.es[e.succ].prev = to
	}
}

// due calls f on every entry whose next index is i, then advances each
// to its following index and re-buckets it. Every following index is
// greater than i, so the walk never meets an entry it re-bucketed.
func (t *table) due(i int, f func(e *entry)) {
	if i >= len(t.heads) {
		return // no entry was ever due this far
	}
	k := t.heads[i]
	t.heads[i] = -1
	for k >= 0 {
		e := &t.es[k]
		succ := e.succ
		f(e)
		e.m.next()
		t.link(k)
		k = succ
	}
}
