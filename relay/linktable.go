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
// Bounds: at most MaxLinkIDs entries; past that the oldest makes room. An
// entry a peer made by announcing a prefix we did not hold is dropped
// again when its fetch fails, so junk prefixes live no longer than the
// fetch scheduler tracks them (MaxTrackedPerPeer per peer).
type linkTable struct {
	cap     int
	entries map[uint64]*linkEntry
	ring    []uint64 // prefixes in insertion order, for eviction
	head    int
	slots   map[PeerID]uint
	used    uint64 // bit s set: slot s is taken
}

// linkState is what this node knows of a prefix.
type linkState uint8

const (
	linkHeard    linkState = iota // announced to us; not held, not fetching
	linkFetching                  // a fetch by prefix is under way
	linkHeld                      // in the pool (or was): id is known, we serve it
	linkRejected                  // fetched and found invalid: never fetched again
)

// linkEntry is one prefix's record.
type linkEntry struct {
	id    ID // the full id once held
	state linkState
	heard uint64 // slots of the peers that announced it to us
	sent  uint64 // slots of the peers we announced it to
}

func newLinkTable(capacity int) *linkTable {
	return &linkTable{cap: capacity, entries: make(map[uint64]*linkEntry), slots: make(map[PeerID]uint)}
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
		case linkHeard:
			e.state = linkFetching
			fetch = append(fetch, x)
		case linkFetching:
			sources = append(sources, x)
		case linkHeld:
			held = append(held, e.id)
		}
	}
	return fetch, sources, held
}

// fetched records the outcome of fetching prefix: the pool holds id (ok),
// the body was invalid (rejected), or nothing usable came (neither: the
// entry goes unless another path made it held meanwhile).
func (t *linkTable) fetched(prefix uint64, id ID, ok, rejected bool) {
	e, found := t.entries[prefix]
	if !found || e.state == linkHeld {
		return
	}
	switch {
	case ok:
		e.state, e.id = linkHeld, id
	case rejected:
		e.state = linkRejected
	default:
		delete(t.entries, prefix) // its ring slot is reclaimed when evicted
	}
}

// outgoing records that this node holds ids and returns, per peer of mesh,
// the prefixes to announce to it: those it neither announced to us nor
// was sent before.
func (t *linkTable) outgoing(ids []ID, mesh []PeerID) map[PeerID][]uint64 {
	bits := make([]uint64, len(mesh))
	for i, p := range mesh {
		bits[i] = t.slot(p)
	}
	var out map[PeerID][]uint64
	for _, id := range ids {
		x := wire.TxPrefix(id)
		e := t.entry(x)
		e.state, e.id = linkHeld, id
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

// lookup returns the id of a held tx by its prefix.
func (t *linkTable) lookup(prefix uint64) (ID, bool) {
	e, ok := t.entries[prefix]
	if !ok || e.state != linkHeld {
		return ID{}, false
	}
	return e.id, true
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

// size returns the number of entries.
func (t *linkTable) size() int { return len(t.entries) }
