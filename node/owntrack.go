package node

import (
	"container/heap"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
)

// DeliveryConfirmPeers is how many distinct peers must be known to hold a
// transaction this node accepted over RPC before its delivery counts as
// confirmed (tx_get's "confirmed") and the node stops re-announcing it.
//
// One peer is a single point of failure: it may drop the tx (its pool is
// full, it restarts without a journal, it disconnects before passing it
// on) or claim to hold it without doing so (an announcement is a claim;
// nothing proves the body behind it). Two distinct peers mean the tx left
// this node on two paths and survives either failing or lying; with
// GossipSub's mesh degree (8) two holders reach the rest of the network
// within a round trip or two. More would make confirmation wait for peers
// that get the tx from other peers, whose announcements this node hears
// only if it is in their mesh, and a node with fewer peers than k could
// never confirm. A node with a single peer therefore confirms its txs
// only by their inclusion in a block.
const DeliveryConfirmPeers = 2

// Own-tx re-announcement backoff: an own tx still unconfirmed is announced
// again ownTxReannounceFirst after it was submitted (or replayed), then
// after twice the previous delay each time, at most ownTxReannounceMax
// apart, until it is confirmed or leaves the pool.
const (
	// ownTxReannounceFirst is the relay's reconciliation interval and
	// about a hundred announce-and-fetch rounds (a 20 ms batch window plus
	// a round trip): a tx two peers do not hold after 2 s missed its
	// announcement (no peers yet, a lost message, peers' pools full),
	// and waiting longer only delays its repair.
	ownTxReannounceFirst = 2 * time.Second
	// ownTxReannounceMax caps the delay: an own tx on a node with one peer
	// or none costs one 32-byte id in an announcement per minute. A peer
	// that connects pulls the pool by mempool sync anyway, so the cap only
	// bounds how long a silently lost announcement waits for its repair.
	ownTxReannounceMax = 60 * time.Second
)

// reannounceDelay is the wait before re-announcement number attempt+1 (0:
// the first after submission): ownTxReannounceFirst doubled attempt
// times, capped at ownTxReannounceMax.
func reannounceDelay(attempt int) time.Duration {
	d := ownTxReannounceFirst
	for i := 0; i < attempt && d < ownTxReannounceMax; i++ {
		d *= 2
	}
	return min(d, ownTxReannounceMax)
}

// ownTxStatus is the delivery state of one own transaction.
type ownTxStatus struct {
	// Submitted is when tx_send first accepted it (the journal keeps it
	// across restarts).
	Submitted time.Time
	// SeenBy counts the distinct peers known to hold it, up to k.
	SeenBy int
	// Confirmed: at least k peers hold it.
	Confirmed bool
	// Reannounced counts the re-announcement rounds it was due for since
	// tracking began (since the last restart).
	Reannounced int
	// Next is when it is due again; zero once confirmed.
	Next time.Time
}

// ownEntry is one tracked own transaction.
type ownEntry struct {
	id        chain.Hash
	submitted time.Time
	peers     []relay.PeerID // distinct, at most k
	attempts  int            // re-announcement rounds it was due for
	next      time.Time      // due for re-announcement; meaningful while unconfirmed
	confirmed bool
	index     int // in the due heap while unconfirmed; -1 once confirmed
}

// ownTracker is the delivery state of the node's own transactions: which
// peers are known to hold each, whether enough do, and when each
// unconfirmed one is due for re-announcement. It does no I/O and reads no
// clock: every call that depends on time is given now, so it is tested in
// virtual time. It is not safe for concurrent use: ownTxs's loop owns it.
type ownTracker struct {
	k     int // peers that confirm delivery
	limit int // tracked txs at most
	txs   map[chain.Hash]*ownEntry
	due   dueHeap // the unconfirmed entries, soonest due first
}

// newOwnTracker returns a tracker that confirms delivery at k peers and
// tracks at most limit txs.
func newOwnTracker(k, limit int) *ownTracker {
	return &ownTracker{k: max(k, 1), limit: max(limit, 1), txs: make(map[chain.Hash]*ownEntry)}
}

// trackResult is what track did.
type trackResult int

const (
	// trackAdded: id is tracked from now on, unconfirmed.
	trackAdded trackResult = iota
	// trackKnown: id was already tracked; its state is kept.
	trackKnown
	// trackFull: the tracker holds its limit of txs; id is not tracked.
	trackFull
)

// track starts tracking id, submitted at submitted, unconfirmed and due
// for its first re-announcement ownTxReannounceFirst after now.
func (t *ownTracker) track(id chain.Hash, submitted, now time.Time) trackResult {
	if _, ok := t.txs[id]; ok {
		return trackKnown
	}
	if len(t.txs) >= t.limit {
		return trackFull
	}
	e := &ownEntry{id: id, submitted: submitted, next: now.Add(reannounceDelay(0))}
	t.txs[id] = e
	heap.Push(&t.due, e)
	return trackAdded
}

// held records that peer from holds id. It returns true when that makes
// id's delivery confirmed (it was not before); peers past the k-th are not
// counted.
func (t *ownTracker) held(id chain.Hash, from relay.PeerID) bool {
	e, ok := t.txs[id]
	if !ok || e.confirmed || from == "" || slices.Contains(e.peers, from) {
		return false
	}
	e.peers = append(e.peers, from)
	if len(e.peers) < t.k {
		return false
	}
	e.confirmed = true
	heap.Remove(&t.due, e.index)
	e.next = time.Time{}
	return true
}

// forget stops tracking id; it reports whether id was tracked unconfirmed.
func (t *ownTracker) forget(id chain.Hash) (wasUnconfirmed, ok bool) {
	e, ok := t.txs[id]
	if !ok {
		return false, false
	}
	delete(t.txs, id)
	if !e.confirmed {
		heap.Remove(&t.due, e.index)
	}
	return !e.confirmed, true
}

// retain stops tracking every tx keep refuses, and returns them.
func (t *ownTracker) retain(keep func(id chain.Hash) bool) []chain.Hash {
	var gone []chain.Hash
	for id := range t.txs {
		if !keep(id) {
			gone = append(gone, id)
		}
	}
	for _, id := range gone {
		t.forget(id)
	}
	return gone
}

// nextDue returns when the soonest unconfirmed tx is due for
// re-announcement; false when none is unconfirmed.
func (t *ownTracker) nextDue() (time.Time, bool) {
	if len(t.due) == 0 {
		return time.Time{}, false
	}
	return t.due[0].next, true
}

// popDue returns the unconfirmed txs due at now, soonest first, and
// schedules each one's next re-announcement from now (not from when it
// was due, so a loop that ran late does not fire a burst of catch-ups).
func (t *ownTracker) popDue(now time.Time) []chain.Hash {
	var ids []chain.Hash
	for len(t.due) > 0 && !t.due[0].next.After(now) {
		e := t.due[0]
		ids = append(ids, e.id)
		e.attempts++
		e.next = now.Add(reannounceDelay(e.attempts))
		heap.Fix(&t.due, 0)
	}
	return ids
}

// status returns id's delivery state; false when id is not tracked.
func (t *ownTracker) status(id chain.Hash) (ownTxStatus, bool) {
	e, ok := t.txs[id]
	if !ok {
		return ownTxStatus{}, false
	}
	return ownTxStatus{Submitted: e.submitted, SeenBy: len(e.peers), Confirmed: e.confirmed,
		Reannounced: e.attempts, Next: e.next}, true
}

// len returns how many txs are tracked.
func (t *ownTracker) len() int { return len(t.txs) }

// unconfirmed returns how many tracked txs are not confirmed.
func (t *ownTracker) unconfirmed() int { return len(t.due) }

// dueHeap orders unconfirmed entries by when they are due (container/heap).
type dueHeap []*ownEntry

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *dueHeap) Push(x any) {
	e := x.(*ownEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
