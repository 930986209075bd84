package relay

import (
	"slices"
	"testing"

	"github.com/rumor-relay/rumor/relay/wire"
)

func linkID(b byte) ID { return ID{b, b, b, b, b, b, b, b, 0xee} }

// TestLinkTableSuppression: a prefix goes to each mesh peer once, never to
// one that announced it to us, and a second announcement of a prefix
// being fetched adds a source instead of a second fetch.
func TestLinkTableSuppression(t *testing.T) {
	tb := newLinkTable(16, 16, 4)
	a, b := linkID(1), linkID(2)
	xa, xb := wire.TxPrefix(a), wire.TxPrefix(b)

	fetch, sources, held := tb.heard("P", []uint64{xa}, true)
	if !slices.Equal(fetch, []uint64{xa}) || sources != nil || held != nil {
		t.Fatalf("first announcement: fetch %v sources %v held %v", fetch, sources, held)
	}
	if fetch, sources, _ = tb.heard("Q", []uint64{xa}, true); fetch != nil || !slices.Equal(sources, []uint64{xa}) {
		t.Fatalf("second announcer: fetch %v sources %v, want it as a source only", fetch, sources)
	}
	if _, held, owed, _ := tb.lookup(xa); held || owed {
		t.Fatal("a prefix being fetched, not announced onwards, resolves or is owed")
	}
	tb.fetched(xa, a, true, false)
	if id, held, _, _ := tb.lookup(xa); !held || id != a {
		t.Fatalf("lookup after fetch: %v %v", id, held)
	}

	out := tb.outgoing([]ID{a, b}, []PeerID{"P", "Q", "R"})
	want := map[PeerID][]uint64{"R": {xa, xb}, "P": {xb}, "Q": {xb}}
	for p, xs := range want {
		if !slices.Equal(out[p], xs) {
			t.Fatalf("to %s: %v, want %v (all: %v)", p, out[p], xs, out)
		}
	}
	if again := tb.outgoing([]ID{a, b}, []PeerID{"P", "Q", "R"}); len(again) != 0 {
		t.Fatalf("announced twice: %v", again)
	}
	if _, _, held := tb.heard("R", []uint64{xb}, true); !slices.Equal(held, []ID{b}) {
		t.Fatalf("an announcement of a held tx: held %v, want its id (the peer holds it)", held)
	}
}

// TestLinkTableFailuresAndDepartures: a failed fetch forgets a prefix (a
// later announcement fetches again), an invalid one is never fetched
// again, and a departed peer's slot comes back clean.
func TestLinkTableFailuresAndDepartures(t *testing.T) {
	tb := newLinkTable(16, 16, 4)
	x, y := wire.TxPrefix(linkID(3)), wire.TxPrefix(linkID(4))
	tb.heard("P", []uint64{x, y}, true)
	tb.fetched(x, ID{}, false, false)
	tb.fetched(y, ID{}, false, true)
	if tb.size() != 1 {
		t.Fatalf("%d entries after a failure and a rejection, want 1 (the rejected)", tb.size())
	}
	if fetch, _, _ := tb.heard("Q", []uint64{x, y}, true); !slices.Equal(fetch, []uint64{x}) {
		t.Fatalf("after failures: fetch %v, want only the failed one again", fetch)
	}

	id := linkID(5)
	tb.heard("P", []uint64{wire.TxPrefix(id)}, true)
	tb.drop("P")
	// A newcomer may take P's slot: it must be told.
	if out := tb.outgoing([]ID{id}, []PeerID{"N"}); len(out["N"]) != 1 {
		t.Fatalf("a newcomer in a departed peer's slot was not told: %v", out)
	}
}

// TestLinkTableBounds: the table keeps at most its cap of prefixes (oldest
// first out) and at most MaxLinkPeers peer slots; peers past that are
// still announced to.
func TestLinkTableBounds(t *testing.T) {
	tb := newLinkTable(4, 16, 4)
	var ids []ID
	for i := range 6 {
		ids = append(ids, linkID(byte(10+i)))
	}
	tb.outgoing(ids, nil)
	if tb.size() != 4 {
		t.Fatalf("%d entries, cap 4", tb.size())
	}
	if _, held, _, _ := tb.lookup(wire.TxPrefix(ids[0])); held {
		t.Fatal("the oldest entry survived past the cap")
	}
	if _, held, _, _ := tb.lookup(wire.TxPrefix(ids[5])); !held {
		t.Fatal("the newest entry is missing")
	}

	var mesh []PeerID
	for i := range MaxLinkPeers + 3 {
		mesh = append(mesh, PeerID(rune('A'+i%26))+PeerID(rune('a'+i/26)))
	}
	out := tb.outgoing([]ID{linkID(99)}, mesh)
	if len(out) != len(mesh) {
		t.Fatalf("announced to %d of %d mesh peers", len(out), len(mesh))
	}
	if len(tb.slots) != MaxLinkPeers {
		t.Fatalf("%d slots taken, cap %d", len(tb.slots), MaxLinkPeers)
	}
}

// TestLinkTableCutThrough: a prefix announced onwards while it is fetched
// is owed to whoever asks (they wait for the fetch, then get the body or
// a busy answer, never not-found), stays owed after a failed fetch until a
// new announcement fetches it again, and at most maxEarly are in flight.
func TestLinkTableCutThrough(t *testing.T) {
	tb := newLinkTable(16, 16, 2)
	a, b, c := linkID(1), linkID(2), linkID(3)
	xa, xb, xc := wire.TxPrefix(a), wire.TxPrefix(b), wire.TxPrefix(c)
	fetch, _, _ := tb.heard("P", []uint64{xa, xb, xc}, true)
	if early := tb.forwardEarly(fetch); !slices.Equal(early, []uint64{xa, xb}) {
		t.Fatalf("forwarded early %v, want the first two (cap 2)", early)
	}
	// The bare prefixes go out to the mesh, and the fetch is still on.
	out := tb.outgoing([]ID{prefixKey(xa), prefixKey(xb)}, []PeerID{"Q"})
	if !slices.Equal(out["Q"], []uint64{xa, xb}) {
		t.Fatalf("early announcement to Q: %v", out)
	}
	_, held, owed, wait := tb.lookup(xa)
	if held || !owed || wait == nil {
		t.Fatalf("early prefix: held %v owed %v wait %v, want owed with a wait", held, owed, wait)
	}
	tb.fetched(xa, a, true, false)
	select {
	case <-wait:
	default:
		t.Fatal("the waiters of a finished fetch were not woken")
	}
	if id, held, owed, _ := tb.lookup(xa); !held || owed || id != a {
		t.Fatalf("after the fetch: id %v held %v owed %v", id, held, owed)
	}
	tb.fetched(xb, ID{}, false, false)
	if _, held, owed, _ := tb.lookup(xb); held || !owed {
		t.Fatal("an early prefix whose fetch failed is no longer owed: the asker would charge us")
	}
	if fetch, _, _ := tb.heard("R", []uint64{xb}, true); !slices.Equal(fetch, []uint64{xb}) {
		t.Fatalf("a failed early prefix announced again: fetch %v, want it fetched again", fetch)
	}
	// The refetched one counts against the cap again: one more fits.
	if early := tb.forwardEarly([]uint64{xc}); !slices.Equal(early, []uint64{xc}) {
		t.Fatalf("forwarded %v, want %d", early, xc)
	}
	xd := wire.TxPrefix(linkID(4))
	fetch, _, _ = tb.heard("P", []uint64{xd}, true)
	if early := tb.forwardEarly(fetch); len(early) != 0 {
		t.Fatalf("forwarded %v past the cap", early)
	}
	// A bare prefix whose fetch is over and failed is not announced.
	tb.fetched(xc, ID{}, false, false)
	if out := tb.outgoing([]ID{prefixKey(xc)}, []PeerID{"S"}); len(out) != 0 {
		t.Fatalf("announced a prefix we failed to get: %v", out)
	}
}

// TestLinkTableOwedSurvivesJunk: what a peer announces cannot push out
// what this node holds or owes (they live in separate rings), a prefix
// dropped and made again is not evicted by its old ring place, a rejected
// early prefix stays owed, a peer with no fetch slot makes no entries, and
// retain frees the slots of peers gone without a drop.
func TestLinkTableOwedSurvivesJunk(t *testing.T) {
	tb := newLinkTable(4, 4, 4)
	held := linkID(1)
	tb.outgoing([]ID{held}, nil)
	x := wire.TxPrefix(linkID(2))
	fetch, _, _ := tb.heard("P", []uint64{x}, true)
	tb.fetched(x, ID{}, false, false) // dropped
	fetch, _, _ = tb.heard("P", []uint64{x}, true)
	if early := tb.forwardEarly(fetch); len(early) != 1 {
		t.Fatalf("forwarded early %v", early)
	}
	tb.fetched(x, ID{}, false, true) // rejected after going on early
	var junk []uint64
	for i := range 50 {
		junk = append(junk, 1000+uint64(i))
	}
	tb.heard("M", junk, true)
	if _, ok, _, _ := tb.lookup(wire.TxPrefix(held)); !ok {
		t.Fatal("junk announcements evicted a tx we hold")
	}
	if _, _, owed, _ := tb.lookup(x); !owed {
		t.Fatal("a rejected prefix that went on early is not owed (the askers would charge us not-found)")
	}
	if tb.size() > 4+4 {
		t.Fatalf("%d entries, rings of 4 and 4", tb.size())
	}
	before := tb.size()
	if fetch, _, _ := tb.heard("M", []uint64{5000, 5001}, false); fetch != nil || tb.size() != before {
		t.Fatalf("a peer without fetch slots made entries: fetch %v, %d entries from %d", fetch, tb.size(), before)
	}
	tb.retain([]PeerID{"P"})
	if _, ok := tb.slots["M"]; ok {
		t.Fatal("retain kept the slot of a peer not connected")
	}
	if _, ok := tb.slots["P"]; !ok {
		t.Fatal("retain dropped a connected peer")
	}
}
