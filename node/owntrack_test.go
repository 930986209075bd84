package node

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
)

// t0 is the tracker tests' virtual clock origin.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func hashN(i int) chain.Hash { return chain.Hash{byte(i), byte(i >> 8), 0xaa} }

// TestOwnTxTrackerConfirmAtK: a tx is confirmed when the k-th distinct
// peer holds it, not before; repeats of one peer do not count; peers past
// k are not counted; a confirmed tx is no longer due.
func TestOwnTxTrackerConfirmAtK(t *testing.T) {
	for _, tc := range []struct {
		name    string
		k       int
		holders []relay.PeerID
		seenBy  []int // after each holder
		confAt  int   // index of the holder that confirms; -1: none
	}{
		{"k=2 two peers", 2, []relay.PeerID{"a", "b"}, []int{1, 2}, 1},
		{"k=2 one peer twice", 2, []relay.PeerID{"a", "a", "a"}, []int{1, 1, 1}, -1},
		{"k=2 repeat then second", 2, []relay.PeerID{"a", "a", "b"}, []int{1, 1, 2}, 2},
		{"k=2 stops counting at k", 2, []relay.PeerID{"a", "b", "c", "d"}, []int{1, 2, 2, 2}, 1},
		{"k=1 first peer", 1, []relay.PeerID{"a", "b"}, []int{1, 1}, 0},
		{"k=3", 3, []relay.PeerID{"a", "b", "a", "c"}, []int{1, 2, 2, 3}, 3},
		{"empty peer id ignored", 2, []relay.PeerID{"", "a", ""}, []int{0, 1, 1}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newOwnTracker(tc.k, 10)
			id := hashN(1)
			if tr.track(id, t0, t0) != trackAdded || tr.unconfirmed() != 1 {
				t.Fatal("not tracked")
			}
			for i, p := range tc.holders {
				if got := tr.held(id, p); got != (i == tc.confAt) {
					t.Fatalf("holder %d (%q): confirmed-now %v", i, p, got)
				}
				st, ok := tr.status(id)
				if !ok || st.SeenBy != tc.seenBy[i] || st.Confirmed != (tc.confAt >= 0 && i >= tc.confAt) {
					t.Fatalf("after holder %d: %+v", i, st)
				}
			}
			confirmed := tc.confAt >= 0
			if _, due := tr.nextDue(); due == confirmed {
				t.Fatalf("due %v with confirmed %v", due, confirmed)
			}
			if got := tr.popDue(t0.Add(time.Hour)); (len(got) == 0) != confirmed {
				t.Fatalf("due an hour later: %v (confirmed %v)", got, confirmed)
			}
			if tr.held(hashN(2), "a") {
				t.Fatal("an untracked tx was confirmed")
			}
		})
	}
}

// TestOwnTxTrackerBackoff: re-announcements fall due 2 s after tracking,
// then 4, 8, 16, 32 s apart, then every 60 s, on a virtual clock stepped
// by 100 ms; never earlier.
func TestOwnTxTrackerBackoff(t *testing.T) {
	for i, want := range []time.Duration{2, 4, 8, 16, 32, 60, 60, 60} {
		if got := reannounceDelay(i); got != want*time.Second {
			t.Fatalf("reannounceDelay(%d) = %v, want %v", i, got, want*time.Second)
		}
	}
	if reannounceDelay(1000) != ownTxReannounceMax {
		t.Fatal("no cap for a large attempt")
	}

	tr := newOwnTracker(DeliveryConfirmPeers, 10)
	id := hashN(1)
	tr.track(id, t0.Add(-time.Hour), t0) // submitted before a restart
	var fired []time.Duration
	for now := t0; now.Before(t0.Add(5 * time.Minute)); now = now.Add(100 * time.Millisecond) {
		if next, ok := tr.nextDue(); !ok || next.Before(now.Add(-100*time.Millisecond)) {
			t.Fatalf("at %v: next due %v, %v", now.Sub(t0), next, ok)
		}
		for _, got := range tr.popDue(now) {
			if got != id {
				t.Fatalf("popped %v", got)
			}
			fired = append(fired, now.Sub(t0))
		}
	}
	want := []time.Duration{2, 6, 14, 30, 62, 122, 182, 242}
	if len(fired) != len(want) {
		t.Fatalf("fired at %v, want %v s", fired, want)
	}
	for i := range want {
		if fired[i] != want[i]*time.Second {
			t.Fatalf("fired at %v, want %v s", fired, want)
		}
	}
	st, _ := tr.status(id)
	if st.Reannounced != len(want) || !st.Submitted.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("status %+v", st)
	}
	// A loop that ran late fires once and schedules from when it ran.
	late := t0.Add(time.Hour)
	if got := tr.popDue(late); len(got) != 1 {
		t.Fatalf("late pop: %v", got)
	}
	if next, _ := tr.nextDue(); !next.Equal(late.Add(ownTxReannounceMax)) {
		t.Fatalf("after a late pop next is %v", next.Sub(late))
	}
	// Confirmed: never due again.
	tr.held(id, "a")
	tr.held(id, "b")
	if got := tr.popDue(late.Add(24 * time.Hour)); len(got) != 0 {
		t.Fatalf("confirmed tx due: %v", got)
	}
}

// TestOwnTxTrackerBound: the tracker holds at most its limit; a known tx
// keeps its state; retain frees room; forget of a confirmed or unconfirmed
// tx leaves the due heap consistent.
func TestOwnTxTrackerBound(t *testing.T) {
	tr := newOwnTracker(2, 3)
	for i := range 3 {
		if tr.track(hashN(i), t0, t0) != trackAdded {
			t.Fatalf("tx %d not tracked", i)
		}
	}
	if tr.track(hashN(3), t0, t0) != trackFull || tr.len() != 3 {
		t.Fatal("tracked past the limit")
	}
	tr.held(hashN(0), "a")
	if tr.track(hashN(0), t0.Add(time.Minute), t0.Add(time.Minute)) != trackKnown {
		t.Fatal("known tx re-added")
	}
	if st, _ := tr.status(hashN(0)); st.SeenBy != 1 || !st.Submitted.Equal(t0) {
		t.Fatalf("known tx lost its state: %+v", st)
	}
	tr.held(hashN(1), "a")
	tr.held(hashN(1), "b") // confirmed
	gone := tr.retain(func(id chain.Hash) bool { return id != hashN(1) && id != hashN(2) })
	slices.SortFunc(gone, func(a, b chain.Hash) int { return int(a[0]) - int(b[0]) })
	if len(gone) != 2 || gone[0] != hashN(1) || gone[1] != hashN(2) || tr.len() != 1 || tr.unconfirmed() != 1 {
		t.Fatalf("retain removed %v; %d left, %d unconfirmed", gone, tr.len(), tr.unconfirmed())
	}
	if tr.track(hashN(3), t0, t0) != trackAdded {
		t.Fatal("no room after retain")
	}
	if was, ok := tr.forget(hashN(0)); !was || !ok {
		t.Fatal("forget of an unconfirmed tx")
	}
	if _, ok := tr.forget(hashN(0)); ok {
		t.Fatal("forgot twice")
	}
	if got := tr.popDue(t0.Add(time.Minute)); len(got) != 1 || got[0] != hashN(3) {
		t.Fatalf("due %v, want only tx 3", got)
	}
}

// TestOwnTxTrackerModel drives the tracker with random operations on a
// virtual clock and checks it against a plain model: which txs are due
// when, how many peers hold each, which are confirmed.
func TestOwnTxTrackerModel(t *testing.T) {
	type model struct {
		peers    map[relay.PeerID]bool
		next     time.Time
		attempts int
	}
	const k, limit = 2, 16
	rng := rand.New(rand.NewPCG(1, 2))
	tr := newOwnTracker(k, limit)
	m := map[chain.Hash]*model{}
	peers := []relay.PeerID{"a", "b", "c"}
	now := t0
	for step := range 20000 {
		id := hashN(rng.IntN(24))
		switch op := rng.IntN(10); {
		case op < 3:
			res := tr.track(id, now, now)
			switch {
			case m[id] != nil:
				if res != trackKnown {
					t.Fatalf("step %d: track of a known tx: %v", step, res)
				}
			case len(m) >= limit:
				if res != trackFull {
					t.Fatalf("step %d: track past the limit: %v", step, res)
				}
			default:
				if res != trackAdded {
					t.Fatalf("step %d: track: %v", step, res)
				}
				m[id] = &model{peers: map[relay.PeerID]bool{}, next: now.Add(ownTxReannounceFirst)}
			}
		case op < 6:
			p := peers[rng.IntN(len(peers))]
			got := tr.held(id, p)
			e := m[id]
			want := false
			if e != nil && len(e.peers) < k && !e.peers[p] {
				e.peers[p] = true
				want = len(e.peers) == k
			}
			if got != want {
				t.Fatalf("step %d: held confirmed-now %v, want %v", step, got, want)
			}
		case op < 7:
			_, ok := tr.forget(id)
			if ok != (m[id] != nil) {
				t.Fatalf("step %d: forget %v", step, ok)
			}
			delete(m, id)
		default:
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			var want []chain.Hash
			for id, e := range m {
				if len(e.peers) < k && !e.next.After(now) {
					want = append(want, id)
					e.attempts++
					e.next = now.Add(reannounceDelay(e.attempts))
				}
			}
			got := tr.popDue(now)
			cmpHash := func(a, b chain.Hash) int { return int(a[0]) - int(b[0]) }
			slices.SortFunc(got, cmpHash)
			slices.SortFunc(want, cmpHash)
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: due %v, want %v", step, got, want)
			}
		}
		unconf := 0
		for id, e := range m {
			st, ok := tr.status(id)
			conf := len(e.peers) >= k
			if !ok || st.SeenBy != len(e.peers) || st.Confirmed != conf || (!conf && !st.Next.Equal(e.next)) {
				t.Fatalf("step %d: status %+v, model %+v", step, st, e)
			}
			if !conf {
				unconf++
			}
		}
		if tr.len() != len(m) || tr.unconfirmed() != unconf {
			t.Fatalf("step %d: %d tracked, %d unconfirmed; model %d, %d", step, tr.len(), tr.unconfirmed(), len(m), unconf)
		}
	}
}
