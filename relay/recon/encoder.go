package recon

import "fmt"

// Encoder holds a set of ids and produces its coded symbols for one key.
//
// It keeps the symbols produced so far and, per id, where the id's index
// sequence stands, as the paper's encoder does: producing symbols
// [0, m) costs O(ids mapped to them), about n*(1 + 2 ln(1+m/2)) for n ids,
// and asking again for symbols already produced costs a copy. Add and
// Remove update the produced symbols in place (an id is in ~2 ln m of them),
// so one encoder can follow a mempool across sessions that share its key.
// Memory: ~100 bytes per id and 48 per symbol produced.
//
// An Encoder is not safe for concurrent use. A Decoder reads (and extends)
// the encoder it was given, so the two share one owner.
type Encoder struct {
	h       hasher
	t       table
	slot    map[ID]int32 // id -> its entry in t.es
	syms    []Symbol     // symbols [0, len(syms)) produced so far
	version uint64       // counts Add and Remove, so a Decoder sees changes
}

// NewEncoder returns an empty encoder whose ids are hashed with key.
func NewEncoder(key Key) *Encoder {
	return &Encoder{h: newHasher(key), t: newTable(), slot: make(map[ID]int32)}
}

// Len returns the number of ids held.
func (e *Encoder) Len() int { return len(e.slot) }

// Has reports whether id is held.
func (e *Encoder) Has(id ID) bool {
	_, ok := e.slot[id]
	return ok
}

// Add adds id to the set and to every symbol already produced that it
// maps to. It reports false, changing nothing, when id is already held.
func (e *Encoder) Add(id ID) bool {
	if _, ok := e.slot[id]; ok {
		return false
	}
	check, seed := e.h.hash(&id)
	m := newMapping(seed)
	for m.idx < uint64(len(e.syms)) {
		addSym(&e.syms[m.idx], &id, check)
		m.next()
	}
	k := int32(len(e.t.es))
	e.t.es = append(e.t.es, entry{id: id, check: check, m: m, sign: 1})
	e.t.link(k)
	e.slot[id] = k
	e.version++
	return true
}

// Remove takes id out of the set and out of every symbol already produced.
// It reports false, changing nothing, when id is not held.
func (e *Encoder) Remove(id ID) bool {
	k, ok := e.slot[id]
	if !ok {
		return false
	}
	check := e.t.es[k].check
	_, seed := e.h.hash(&id)
	for m := newMapping(seed); m.idx < uint64(len(e.syms)); m.next() {
		subSym(&e.syms[m.idx], &id, check)
	}
	e.t.unlink(k)
	delete(e.slot, id)
	if last := int32(len(e.t.es) - 1); k != last {
		e.t.move(last, k)
		e.slot[e.t.es[k].id] = k
	}
	e.t.es = e.t.es[:len(e.t.es)-1]
	e.version++
	return true
}

// Symbols returns coded symbols [start, start+n) of the set, producing
// those not produced yet. It fails with ErrTooManySymbols past MaxSymbols.
func (e *Encoder) Symbols(start, n int) ([]Symbol, error) {
	if err := e.extend(start, n); err != nil {
		return nil, err
	}
	return append([]Symbol(nil), e.syms[start:start+n]...), nil
}

// extend produces symbols up to start+n after checking the range.
func (e *Encoder) extend(start, n int) error {
	if start < 0 || n < 0 || start > MaxSymbols-n {
		return fmt.Errorf("%w: symbols [%d, %d+%d) past the bound %d", ErrTooManySymbols, start, start, n, MaxSymbols)
	}
	for i := len(e.syms); i < start+n; i++ {
		e.syms = append(e.syms, Symbol{})
		s := &e.syms[i]
		e.t.due(i, func(en *entry) { addSym(s, &en.id, en.check) })
	}
	return nil
}

func addSym(s *Symbol, id *ID, check uint64) {
	xorID(&s.Sum, id)
	s.Check ^= check
	s.Count++
}

func subSym(s *Symbol, id *ID, check uint64) {
	xorID(&s.Sum, id)
	s.Check ^= check
	s.Count--
}
