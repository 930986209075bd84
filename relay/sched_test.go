package relay

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"
)

func testSchedConfig() schedConfig {
	return schedConfig{
		maxTracked:  10,
		maxItems:    100,
		maxSources:  3,
		maxRequests: 2,
		maxBatch:    4,
		timeout: func(k fetchKind) time.Duration {
			if k == kindBlock {
				return 5 * time.Second
			}
			return time.Second
		},
	}
}

func sid(i int) ID {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func sids(from, n int) []ID {
	out := make([]ID, n)
	for i := range out {
		out[i] = sid(from + i)
	}
	return out
}

var t0 = time.Unix(1_700_000_000, 0)

const (
	pA = PeerID("A")
	pB = PeerID("B")
	pC = PeerID("C")
)

func okResults(r *fetchReq) []itemResult {
	out := make([]itemResult, len(r.keys))
	for i, k := range r.keys {
		out[i] = itemResult{key: k, status: stOK, verdict: Accepted}
	}
	return out
}

func statusResults(r *fetchReq, st status) []itemResult {
	out := make([]itemResult, len(r.keys))
	for i, k := range r.keys {
		out[i] = itemResult{key: k, status: st}
	}
	return out
}

func TestSchedBatchesBySourceAndLimitsRequests(t *testing.T) {
	s := newSched(testSchedConfig())
	done, offs := s.want(1, pA, kindTx, sids(0, 10), nil, wantAnnounced)
	if len(done) != 0 || len(offs) != 0 {
		t.Fatalf("want: done %v offs %v", done, offs)
	}
	reqs := s.schedule(t0)
	// 10 ids, batch 4, 2 requests per peer: two requests of 4; 2 ids wait.
	if len(reqs) != 2 || len(reqs[0].keys) != 4 || len(reqs[1].keys) != 4 {
		t.Fatalf("requests: %d", len(reqs))
	}
	if more := s.schedule(t0); len(more) != 0 {
		t.Fatalf("scheduled past the per-peer limit: %d", len(more))
	}
	done, _ = s.complete(reqs[0].id, okResults(reqs[0]), t0)
	if len(done) != 0 {
		t.Fatal("waiter done early")
	}
	third := s.schedule(t0)
	if len(third) != 1 || len(third[0].keys) != 2 {
		t.Fatalf("third request: %+v", third)
	}
	s.complete(reqs[1].id, okResults(reqs[1]), t0)
	done, _ = s.complete(third[0].id, okResults(third[0]), t0)
	if len(done) != 1 || done[0].id != 1 || len(done[0].results) != 10 {
		t.Fatalf("done: %+v", done)
	}
	for i, r := range done[0].results {
		if r.status != stOK || r.key.id != sid(i) || r.from != pA {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if items, reqs := s.size(); items != 0 || reqs != 0 || len(s.peers) != 0 {
		t.Fatalf("leftover state: %d items %d reqs %d peers", items, reqs, len(s.peers))
	}
}

// A withholding first announcer delays the item by exactly one timeout: the
// alternative learned from a duplicate delivery is asked when it expires.
func TestSchedFallbackOnTimeout(t *testing.T) {
	s := newSched(testSchedConfig())
	id := sid(1)
	s.want(1, pA, kindTx, []ID{id}, nil, wantAnnounced)
	r1 := s.schedule(t0)
	if len(r1) != 1 || r1[0].peer != pA {
		t.Fatalf("first request: %+v", r1)
	}
	s.addSources(pB, kindTx, []ID{id, sid(99)}) // sid(99) unknown: not created
	if _, ok := s.items[fetchKey{kindTx, sid(99)}]; ok {
		t.Fatal("duplicate delivery created an item")
	}
	if d, _ := s.nextDeadline(); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("deadline %v", d)
	}
	done, offs := s.expire(t0.Add(999 * time.Millisecond))
	if len(done)+len(offs) != 0 {
		t.Fatal("expired early")
	}
	done, offs = s.expire(t0.Add(time.Second))
	if len(done) != 0 || len(offs) != 1 || offs[0] != (offense{pA, OffenseTimeout}) {
		t.Fatalf("expire: done %v offs %v", done, offs)
	}
	r2 := s.schedule(t0.Add(time.Second))
	if len(r2) != 1 || r2[0].peer != pB {
		t.Fatalf("fallback request: %+v", r2)
	}
	// The late answer of A is ignored (it failed), B's completes the item.
	if d, _ := s.complete(r1[0].id, statusResults(r1[0], stNotFound), t0); len(d) != 0 {
		t.Fatal("late failure completed the item")
	}
	done, offs = s.complete(r2[0].id, okResults(r2[0]), t0)
	if len(offs) != 0 || len(done) != 1 || done[0].results[0].from != pB {
		t.Fatalf("done %+v offs %v", done, offs)
	}
}

func TestSchedFailuresWalkSourcesThenGiveUp(t *testing.T) {
	s := newSched(testSchedConfig())
	id := sid(7)
	s.want(1, pA, kindTx, []ID{id}, nil, wantAnnounced)
	s.want(2, pB, kindTx, []ID{id}, nil, wantAnnounced) // second announcement: B is a source, waiter 2 shares the item
	s.addSources(pC, kindTx, []ID{id})
	s.addSources(PeerID("D"), kindTx, []ID{id}) // over maxSources (3): ignored
	want := []struct {
		p   PeerID
		st  status
		off Offense
	}{{pA, stMismatch, OffenseBodyMismatch}, {pB, stNotFound, OffenseNotFound}, {pC, stMalformed, OffenseMalformed}}
	var done []waiterDone
	for i, w := range want {
		r := s.schedule(t0)
		if len(r) != 1 || r[0].peer != w.p {
			t.Fatalf("step %d: request %+v", i, r)
		}
		var offs []offense
		done, offs = s.complete(r[0].id, statusResults(r[0], w.st), t0)
		if len(offs) != 1 || offs[0] != (offense{w.p, w.off}) {
			t.Fatalf("step %d offenses %v", i, offs)
		}
	}
	if len(done) != 2 {
		t.Fatalf("both waiters should finish, got %d", len(done))
	}
	for _, d := range done {
		if d.results[0].status != stGaveUp {
			t.Fatalf("waiter %d: %v", d.id, d.results[0].status)
		}
	}
	if len(s.peers) != 0 || len(s.items) != 0 {
		t.Fatal("state left after give-up")
	}
}

func TestSchedTruncatedAsksSamePeerAgain(t *testing.T) {
	s := newSched(testSchedConfig())
	s.want(1, pA, kindTx, sids(0, 3), nil, wantAnnounced)
	r := s.schedule(t0)[0]
	res := okResults(r)
	res[1].status, res[2].status = stTruncated, stTruncated
	done, offs := s.complete(r.id, res, t0)
	if len(done)+len(offs) != 0 {
		t.Fatalf("truncation: done %v offs %v", done, offs)
	}
	r2 := s.schedule(t0)
	if len(r2) != 1 || r2[0].peer != pA || len(r2[0].keys) != 2 {
		t.Fatalf("re-request: %+v", r2)
	}
	done, _ = s.complete(r2[0].id, okResults(r2[0]), t0)
	if len(done) != 1 {
		t.Fatal("not done")
	}
}

// The per-peer tracking cap holds exactly at cap-1, cap and cap+1, keeping
// the earliest announcements (geth #32210 kept the overflow instead).
func TestSchedPerPeerCapBoundary(t *testing.T) {
	cfg := testSchedConfig()
	capN := cfg.maxTracked
	for _, n := range []int{capN - 1, capN, capN + 1} {
		s := newSched(cfg)
		done, offs := s.want(1, pA, kindTx, sids(0, n), nil, wantAnnounced)
		if got := s.tracked(pA); got != min(n, capN) {
			t.Fatalf("n=%d: tracked %d", n, got)
		}
		for i := range n {
			_, ok := s.items[fetchKey{kindTx, sid(i)}]
			if ok != (i < capN) {
				t.Fatalf("n=%d: item %d tracked=%v", n, i, ok)
			}
		}
		flood := len(offs) == 1 && offs[0] == (offense{pA, OffenseAnnounceFlood})
		if flood != (n > capN) || len(done) != 0 {
			t.Fatalf("n=%d: offs %v done %v", n, offs, done)
		}
		// Another peer is unaffected by A's cap.
		s.want(2, pB, kindTx, sids(1000, 2), nil, wantAnnounced)
		if s.tracked(pB) != 2 {
			t.Fatal("cap leaked across peers")
		}
	}
	// Finishing items frees the cap.
	s := newSched(cfg)
	s.want(1, pA, kindTx, sids(0, capN), nil, wantAnnounced)
	for _, r := range s.schedule(t0) {
		s.complete(r.id, okResults(r), t0)
	}
	for _, r := range s.schedule(t0) {
		s.complete(r.id, okResults(r), t0)
	}
	for _, r := range s.schedule(t0) {
		s.complete(r.id, okResults(r), t0)
	}
	if s.tracked(pA) != 0 {
		t.Fatalf("tracked %d after completion", s.tracked(pA))
	}
	if _, offs := s.want(2, pA, kindTx, sids(500, capN), nil, wantAnnounced); len(offs) != 0 {
		t.Fatal("cap not freed")
	}
}

// TestSchedSolicitedPastCap: ids this node pulls from a peer on its own
// (reconciliation) are tracked even when that peer is at its announcement
// cap, and cost it no flood offense: the request was ours. Its
// announcements past the cap still do.
func TestSchedSolicitedPastCap(t *testing.T) {
	cfg := testSchedConfig()
	s := newSched(cfg)
	if _, offs := s.want(1, pA, kindTx, sids(0, cfg.maxTracked), nil, wantAnnounced); len(offs) != 0 {
		t.Fatalf("announcements up to the cap: %v", offs)
	}
	done, offs := s.want(2, pA, kindTx, sids(100, 3), nil, wantSolicited)
	if len(offs) != 0 || len(done) != 0 {
		t.Fatalf("a solicited pull at the cap: offs %v, done %v", offs, done)
	}
	for i := range 3 {
		if _, ok := s.items[fetchKey{kindTx, sid(100 + i)}]; !ok {
			t.Fatalf("solicited item %d not tracked", i)
		}
	}
	if got := s.tracked(pA); got != cfg.maxTracked {
		t.Fatalf("tracked %d, want %d (pulls are not counted)", got, cfg.maxTracked)
	}
	if _, offs := s.want(3, pA, kindTx, sids(200, 1), nil, wantAnnounced); len(offs) != 1 || offs[0] != (offense{pA, OffenseAnnounceFlood}) {
		t.Fatalf("an announcement past the cap: offs %v", offs)
	}
	// Below the cap, our pulls leave A room for all of its announcements:
	// cap-1 announced, 3 pulled, one more announced is exactly the cap.
	s = newSched(cfg)
	s.want(1, pA, kindTx, sids(0, cfg.maxTracked-1), nil, wantAnnounced)
	s.want(2, pA, kindTx, sids(100, 3), nil, wantSolicited)
	if _, offs := s.want(3, pA, kindTx, sids(200, 1), nil, wantAnnounced); len(offs) != 0 {
		t.Fatalf("the cap-th announcement after our pulls: offs %v", offs)
	}
	// Finishing every item leaves A with nothing tracked.
	for range 10 {
		for _, r := range s.schedule(t0) {
			s.complete(r.id, okResults(r), t0)
		}
	}
	if got := s.tracked(pA); got != 0 || len(s.items) != 0 {
		t.Fatalf("after completion: tracked %d, %d items", got, len(s.items))
	}
}

// TestSchedLinkedPastCap: ids a peer named in link-mode inventory past its
// cap are dropped like announced ones, but cost it no offense (its fetch
// slots bound it, and an honest peer crosses the cap when we fall behind).
func TestSchedLinkedPastCap(t *testing.T) {
	cfg := testSchedConfig()
	s := newSched(cfg)
	done, offs := s.want(1, pA, kindTxShort, sids(0, cfg.maxTracked+2), nil, wantLinked)
	if len(offs) != 0 || len(done) != 0 {
		t.Fatalf("linked ids past the cap: offs %v, done %v", offs, done)
	}
	if got := s.tracked(pA); got != cfg.maxTracked {
		t.Fatalf("tracked %d, want the cap %d", got, cfg.maxTracked)
	}
	if _, ok := s.items[fetchKey{kindTxShort, sid(cfg.maxTracked)}]; ok {
		t.Fatal("an id past the cap was tracked")
	}
}

func TestSchedDroppedWhenFullAndCancel(t *testing.T) {
	cfg := testSchedConfig()
	cfg.maxItems = 2
	s := newSched(cfg)
	done, _ := s.want(1, pA, kindTx, sids(0, 3), nil, wantAnnounced)
	if len(done) != 0 {
		t.Fatal("waiter done with 2 items pending")
	}
	done, _ = s.want(2, pB, kindTx, sids(10, 1), nil, wantAnnounced)
	if len(done) != 1 || done[0].results[0].status != stDropped {
		t.Fatalf("want over maxItems: %+v", done)
	}
	s.cancel(1)
	r := s.schedule(t0)
	done, _ = s.complete(r[0].id, okResults(r[0]), t0)
	if len(done) != 0 {
		t.Fatal("cancelled waiter delivered")
	}
	if len(s.items) != 0 {
		t.Fatal("items not finished after cancel")
	}
}

func TestSchedBlockKindsAreSingleAndCarryArg(t *testing.T) {
	s := newSched(testSchedConfig())
	arg := &txnArg{indexes: []uint32{1, 2}}
	s.want(1, pA, kindBlockTxn, []ID{sid(1)}, arg, wantAnnounced)
	s.want(2, pA, kindBlock, []ID{sid(2), sid(3)}, nil, wantAnnounced)
	reqs := s.schedule(t0)
	if len(reqs) != 2 {
		t.Fatalf("%d requests (limit 2 per peer)", len(reqs))
	}
	if reqs[0].kind != kindBlockTxn || reqs[0].arg != arg || !reqs[0].deadline.Equal(t0.Add(time.Second)) {
		t.Fatalf("blocktxn request %+v", reqs[0])
	}
	if reqs[1].kind != kindBlock || len(reqs[1].keys) != 1 || !reqs[1].deadline.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("block request %+v", reqs[1])
	}
	// A duplicated id within one want shares the result.
	s2 := newSched(testSchedConfig())
	s2.want(1, pA, kindTx, []ID{sid(5), sid(5)}, nil, wantAnnounced)
	r := s2.schedule(t0)
	if len(r) != 1 || len(r[0].keys) != 1 {
		t.Fatalf("dup id: %+v", r)
	}
	done, _ := s2.complete(r[0].id, okResults(r[0]), t0)
	if len(done) != 1 || done[0].results[1].status != stOK {
		t.Fatalf("dup id results: %+v", done)
	}
}

// A source that fails fast may fail before the duplicate naming another
// source arrives: the item waits one grace period for it.
func TestSchedParksItemForLateSource(t *testing.T) {
	cfg := testSchedConfig()
	cfg.grace = time.Second
	s := newSched(cfg)
	id := sid(3)
	s.want(1, pA, kindTx, []ID{id}, nil, wantAnnounced)
	r := s.schedule(t0)[0]
	at := t0.Add(10 * time.Millisecond)
	done, _ := s.complete(r.id, statusResults(r, stMismatch), at)
	if len(done) != 0 {
		t.Fatal("gave up instead of parking")
	}
	if d, ok := s.nextDeadline(); !ok || !d.Equal(at.Add(time.Second)) {
		t.Fatalf("grace deadline %v %v", d, ok)
	}
	s.addSources(pB, kindTx, []ID{id})
	r2 := s.schedule(at)
	if len(r2) != 1 || r2[0].peer != pB {
		t.Fatalf("late source not asked: %+v", r2)
	}
	done, _ = s.complete(r2[0].id, okResults(r2[0]), at)
	if len(done) != 1 || done[0].results[0].status != stOK {
		t.Fatalf("done %+v", done)
	}

	// Without a new source, the grace period ends in a give-up.
	s.want(2, pA, kindTx, []ID{id}, nil, wantAnnounced)
	r = s.schedule(t0)[0]
	s.complete(r.id, statusResults(r, stNotFound), t0)
	if done, _ := s.expire(t0.Add(999 * time.Millisecond)); len(done) != 0 {
		t.Fatal("gave up early")
	}
	done, _ = s.expire(t0.Add(time.Second))
	if len(done) != 1 || done[0].results[0].status != stGaveUp {
		t.Fatalf("grace expiry: %+v", done)
	}
	if len(s.items) != 0 || len(s.parked) != 0 || len(s.peers) != 0 {
		t.Fatal("state left after grace expiry")
	}

	// Nobody waiting: no parking.
	s.want(3, pA, kindTx, []ID{id}, nil, wantAnnounced)
	s.cancel(3)
	r = s.schedule(t0)[0]
	s.complete(r.id, statusResults(r, stNotFound), t0)
	if len(s.items) != 0 {
		t.Fatal("item parked with no waiter")
	}
}
