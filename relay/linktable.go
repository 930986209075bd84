package relay

import "github.com/rumor-relay/rumor/relay/wire"

// linkTable is the I/O-free core of link-mode tx relay (txlink.go): which
// tx prefixes this node has heard of, holds or is fetching, and which
// peers each was announced by or to. It reads no clock and does no I/O;
// its owner (Relay.links) guards it with one mutex and carries out what it
// returns.
//
// Peers are given a slot (a bit of a word) when they announce to us or we
// to them, at most MaxLinkPeers at once; a peer without a slot is still
// heard and sent to, only its announcements do not suppress ours to it.
//
// Cut-through: a prefix being fetched may be announced onwards at once
// (early); a peer that then asks for it waits for the fetch (wait), and
// one whose fetch failed stays owed (linkFailed: the answer is busy, no
// fault) until a new announcement fetches it again or it is evicted.
//
// Bounds: at most MaxLinkIDs entries; past that the oldest makes room. An
// entry a peer made by announcing a prefix we did not hold and did not
// forward is dropped again when its fetch fails, so such junk lives no
// longer than the fetch scheduler tracks it (MaxTrackedPerPeer per peer);
// at most maxEarly prefixes are in flight behind early announcements.
type linkTable struct {
	cap      int
	maxEarly int
	early    int // entries fetching with early set
	entries  map[uint64]*linkEntry
	ring     []uint64 // prefixes in insertion order, for eviction
	head     int
	slots    map[PeerID]uint
	used     uint64 // bit s set: slot s is taken
}

// linkState is what this node knows of a prefix.
type linkState uint8

const (
	linkHeard    linkState = iota // announced to us; not held, not fetching
	linkFetching                  // a fetch by prefix is under way
	linkHeld                      // in the pool (or was): id is known, we serve it
	linkRejected                  // fetched and found invalid: never fetched again
	linkFailed                    // announced early, then not fetched: owed (busy) until fetched again
)

// linkEntry is one prefix's record.
type linkEntry struct {
	id    ID // the full id once held
	state linkState
	heard uint64 // slots of the peers that announced it to us
	sent  uint64 // slots of the peers we announced it to
	early bool   // announced onwards before it was held
	// done is closed when a fetch ends (linkFetching entries only), for
	// requests that wait for it.
	done chan struct{}
}

// end moves e out of linkFetching into state.
func (t *linkTable) end(e *linkEntry, state linkState) {
	if e.state == linkFetching {
		if e.done != nil {
			close(e.done)
			e.done = nil
		}
		if e.early {
			t.early--
		}
	}
	e.state = state
}

func newLinkTable(capacity, maxEarly int) *linkTable {
	return &linkTable{cap: capacity, maxEarly: maxEarly, entries: make(map[uint64]*linkEntry), slots: make(map[PeerID]uint)}
}

// slot returns p's bit, taking a free slot if p has none; 0 when all are
// taken.
func (t *linkTable) slot(p PeerID) uint64 {
	if s, ok := t.slots[p]; ok {
		return 1 << s
	}
	if t.used == ^uint64(0) {
		return 0
	}
	for s := uint(0); s < MaxLinkPeers; s++ {
		if t.used&(1<<s) == 0 {
			t.used |= 1 << s
			t.slots[p] = s
			return 1 << s
		}
	}
	return 0
}

// entry returns prefix's entry, creating it (state linkHeard) if new.
func (t *linkTable) entry(prefix uint64) *linkEntry {
	if e, ok := t.entries[prefix]; ok {
		return e
	}
	e := &linkEntry{}
	if len(t.ring) < t.cap {
		t.ring = append(t.ring, prefix)
	} else {
		if old, ok := t.entries[t.ring[t.head]]; ok {
			t.end(old, linkHeard) // wakes its waiters
		}
		delete(t.entries, t.ring[t.head])
		t.ring[t.head] = prefix
		t.head = (t.head + 1) % t.cap
	}
	t.entries[prefix] = e
	return e
}

// heard records that p announced prefixes. It returns the prefixes to
// fetch from p (new here: now linkFetching), those already being fetched
// (p is one more source) and the ids of those we hold (p holds them too).
func (t *linkTable) heard(p PeerID, prefixes []uint64) (fetch, sources []uint64, held []ID) {
	bit := t.slot(p)
	for _, x := range prefixes {
		e := t.entry(x)
		e.heard |= bit
		switch e.state {
		case linkHeard, linkFailed:
			if e.state == linkFailed {
				t.early++ // still owed to the peers told early
			}
			e.state, e.done = linkFetching, make(chan struct{})
			fetch = append(fetch, x)
		case linkFetching:
			sources = append(sources, x)
		case linkHeld:
			held = append(held, e.id)
		}
	}
	return fetch, sources, held
}

// forwardEarly marks those of xs still being fetched as announced onwards
// before they are held, as far as the cap on such prefixes allows, and
// returns them.
func (t *linkTable) forwardEarly(xs []uint64) []uint64 {
	var out []uint64
	for _, x := range xs {
		e, ok := t.entries[x]
		if !ok || e.state != linkFetching || e.early {
			continue
		}
		if t.early >= t.maxEarly {
			break
		}
		e.early = true
		t.early++
		out = append(out, x)
	}
	return out
}

// fetched records the outcome of fetching prefix: the pool holds id (ok),
// the body was invalid (rejected), or nothing usable came (neither: the
// entry goes, unless another path made it held meanwhile or it was
// announced onwards, when it stays owed).
func (t *linkTable) fetched(prefix uint64, id ID, ok, rejected bool) {
	e, found := t.entries[prefix]
	if !found || e.state == linkHeld {
		return
	}
	switch {
	case ok:
		t.end(e, linkHeld)
		e.id = id
	case rejected:
		t.end(e, linkRejected)
	case e.early:
		t.end(e, linkFailed)
	default:
		t.end(e, linkHeard)
		delete(t.entries, prefix) // its ring slot is reclaimed when evicted
	}
}

// outgoing records that this node holds ids and returns, per peer of mesh,
// the prefixes to announce to it: those it neither announced to us nor
// was sent before. An id that is a bare prefix (prefixKey) names a prefix
// being fetched and announced early: it is announced while its fetch is
// under way, and not marked held.
func (t *linkTable) outgoing(ids []ID, mesh []PeerID) map[PeerID][]uint64 {
	bits := make([]uint64, len(mesh))
	for i, p := range mesh {
		bits[i] = t.slot(p)
	}
	var out map[PeerID][]uint64
	for _, id := range ids {
		x := wire.TxPrefix(id)
		if isPrefixKey(id) {
			e, ok := t.entries[x]
			if !ok || e.state != linkFetching && e.state != linkHeld {
				continue // its fetch already failed: nothing to offer
			}
		} else {
			e := t.entry(x)
			t.end(e, linkHeld)
			e.id = id
		}
		e := t.entries[x]
		for i, p := range mesh {
			b := bits[i]
			if b != 0 && (e.heard|e.sent)&b != 0 {
				continue
			}
			e.sent |= b
			if out == nil {
				out = make(map[PeerID][]uint64, len(mesh))
			}
			out[p] = append(out[p], x)
		}
	}
	return out
}

// lookup returns the id of a held tx by its prefix; owed reports one
// announced early that is not held (its fetch is under way, or failed).
// wait, when not nil, is closed when that fetch ends.
func (t *linkTable) lookup(prefix uint64) (id ID, held, owed bool, wait <-chan struct{}) {
	e, ok := t.entries[prefix]
	switch {
	case !ok:
		return ID{}, false, false, nil
	case e.state == linkHeld:
		return e.id, true, false, nil
	case e.state == linkFailed:
		return ID{}, false, true, nil
	case e.state == linkFetching && e.early:
		return ID{}, false, true, e.done
	}
	return ID{}, false, false, nil
}

// drop frees p's slot and clears its bit everywhere, so the peer that
// takes the slot next starts with nothing known.
func (t *linkTable) drop(p PeerID) {
	s, ok := t.slots[p]
	if !ok {
		return
	}
	delete(t.slots, p)
	t.used &^= 1 << s
	mask := ^uint64(1 << s)
	for _, e := range t.entries {
		e.heard &= mask
		e.sent &= mask
	}
}

// isPrefixKey reports whether id is a bare prefix (prefixKey): its bytes
// past the prefix are zero, which a real tx id is with odds of 2^-192.
func isPrefixKey(id ID) bool {
	for _, b := range id[wire.TxPrefixSize:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// size returns the number of entries.
func (t *linkTable) size() int { return len(t.entries) }
