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
// The driver drops departed peers (drop, retain), which frees their slots.
//
// Cut-through: a prefix being fetched may be announced onwards at once
// (early); a peer that then asks for it waits for the fetch (lookup's
// wait), and until we hold it it stays owed (the answer is busy, never
// not-found, which the asker would charge us for): while fetching, after a
// failed fetch (linkFailed, until a new announcement fetches it again) and
// after a rejected one.
//
// Bounds, in two rings so that what peers announce cannot push out what
// this node owes them:
//   - what we hold or owe (held, rejected, announced early): at most
//     capOwed entries, the oldest out first. Only txs our pool took and at
//     most maxEarly prefixes in flight behind early announcements enter it.
//   - prefixes heard and not (yet) held: at most capHeard, the oldest out
//     first; one whose fetch fails is dropped at once, so junk lives no
//     longer than the fetch scheduler tracks it (MaxTrackedPerPeer per
//     peer).
type linkTable struct {
	maxEarly int
	early    int // entries fetching with early set
	entries  map[uint64]*linkEntry
	owed     linkRing // held, rejected and early entries
	pending  linkRing // entries heard and not held
	slots    map[PeerID]uint
	used     uint64 // bit s set: slot s is taken
	gen      uint64 // last ring generation given out
}

// linkRing keeps prefixes in insertion order, each with the generation of
// its insertion: an entry that moved to the other ring, or was dropped and
// made again, has a newer generation, and its old place evicts nothing.
type linkRing struct {
	cap  int
	ring []ringSlot
	head int
}

type ringSlot struct {
	prefix uint64
	gen    uint64
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
	id     ID // the full id once held
	state  linkState
	heard  uint64 // slots of the peers that announced it to us
	sent   uint64 // slots of the peers we announced it to
	early  bool   // announced onwards before it was held
	pinned bool   // in the ring of what we hold or owe
	gen    uint64 // generation of its current ring place
	// done is closed when a fetch ends (linkFetching entries only), for
	// requests that wait for it.
	done chan struct{}
}

func newLinkTable(capOwed, capHeard, maxEarly int) *linkTable {
	return &linkTable{
		maxEarly: maxEarly,
		entries:  make(map[uint64]*linkEntry),
		owed:     linkRing{cap: capOwed},
		pending:  linkRing{cap: capHeard},
		slots:    make(map[PeerID]uint),
	}
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

// place puts prefix's entry at the young end of ring r, evicting r's
// oldest entry when it is full.
func (t *linkTable) place(r *linkRing, prefix uint64, e *linkEntry) {
	t.gen++
	e.gen = t.gen
	s := ringSlot{prefix, t.gen}
	if len(r.ring) < r.cap {
		r.ring = append(r.ring, s)
		return
	}
	old := r.ring[r.head]
	if o, ok := t.entries[old.prefix]; ok && o.gen == old.gen {
		t.end(o, linkHeard) // wakes its waiters
		delete(t.entries, old.prefix)
	}
	r.ring[r.head] = s
	r.head = (r.head + 1) % r.cap
}

// pin moves e to the ring of what we hold or owe, once.
func (t *linkTable) pin(prefix uint64, e *linkEntry) {
	if !e.pinned {
		e.pinned = true
		t.place(&t.owed, prefix, e)
	}
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

// slotsFull reports whether every slot is taken (the driver then drops the
// slots of peers no longer connected: retain).
func (t *linkTable) slotsFull() bool { return t.used == ^uint64(0) }

// heard records that p announced prefixes. It returns the prefixes to
// fetch from p (new here: now linkFetching), those already being fetched
// (p is one more source) and the ids of those we hold (p holds them too).
// With create false (p has no fetch slot free), prefixes new here are
// left out altogether.
func (t *linkTable) heard(p PeerID, prefixes []uint64, create bool) (fetch, sources []uint64, held []ID) {
	bit := t.slot(p)
	for _, x := range prefixes {
		e, ok := t.entries[x]
		if !ok {
			if !create {
				continue
			}
			e = &linkEntry{}
			t.entries[x] = e
			t.place(&t.pending, x, e)
		}
		e.heard |= bit
		switch e.state {
		case linkHeard, linkFailed:
			if !create {
				continue
			}
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
		t.pin(x, e)
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
		t.pin(prefix, e)
	case rejected:
		t.end(e, linkRejected)
		t.pin(prefix, e)
	case e.early:
		t.end(e, linkFailed)
	default:
		t.end(e, linkHeard)
		delete(t.entries, prefix) // its ring place evicts nothing now
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
		e, ok := t.entries[x]
		if isPrefixKey(id) {
			if !ok || !e.early || e.state != linkFetching && e.state != linkHeld {
				continue // its fetch already failed: nothing to offer
			}
		} else {
			if !ok {
				e = &linkEntry{}
				t.entries[x] = e
			}
			t.end(e, linkHeld)
			e.id = id
			t.pin(x, e)
		}
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
// announced early that is not held (its fetch is under way, failed or
// found it invalid). wait, when not nil, is closed when that fetch ends.
func (t *linkTable) lookup(prefix uint64) (id ID, held, owed bool, wait <-chan struct{}) {
	e, ok := t.entries[prefix]
	switch {
	case !ok:
		return ID{}, false, false, nil
	case e.state == linkHeld:
		return e.id, true, false, nil
	case e.early:
		if e.state == linkFetching {
			return ID{}, false, true, e.done
		}
		return ID{}, false, true, nil
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

// retain drops every slotted peer not in connected: a message read after
// its sender's disconnect was reported takes a slot no drop frees.
func (t *linkTable) retain(connected []PeerID) {
	keep := make(map[PeerID]bool, len(connected))
	for _, p := range connected {
		keep[p] = true
	}
	for p := range t.slots {
		if !keep[p] {
			t.drop(p)
		}
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
