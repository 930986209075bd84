package relay

import (
	"sync"
	"time"
)

// firstSeen remembers when each tx or block was first held here, for the
// measurement RPC and the testnet report. It keeps the newest cap entries:
// a ring of ids in insertion order evicts the oldest when full. The ring
// grows with use, so a small node never pays for the full cap.
//
// A tightly scoped mutex guards it; no call blocks or calls out while
// holding it.
type firstSeen struct {
	mu sync.Mutex
	at idRing[seenEntry]
}

// seenEntry is when an item was first held here, and whether this node has
// since announced it (published or forwarded an announcement naming it).
type seenEntry struct {
	ns        int64 // unix nanoseconds
	announced bool
}

func newFirstSeen(capacity int) *firstSeen {
	return &firstSeen{at: idRing[seenEntry]{cap: capacity}}
}

// record stores t for id unless id is already known; it reports whether it
// stored.
func (f *firstSeen) record(id ID, t time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.at.get(id); ok {
		return false
	}
	f.at.add(id, seenEntry{ns: t.UnixNano()})
	return true
}

// markAnnounced records that an announcement naming ids went out from
// here; it reports whether any of them (known to the table) had not been
// announced before.
func (f *firstSeen) markAnnounced(ids []ID) (news bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		e, ok := f.at.get(id)
		if !ok || e.announced {
			continue
		}
		e.announced = true
		f.at.m[id] = e // present: no eviction, no second lookup
		news = true
	}
	return news
}

// get returns when id was first seen.
func (f *firstSeen) get(id ID) (time.Time, bool) {
	f.mu.Lock()
	e, ok := f.at.get(id)
	f.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, e.ns), true
}

// len returns the number of entries held.
func (f *firstSeen) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.at.m)
}
