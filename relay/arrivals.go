package relay

import "sync"

// Why a block's getblocktxn races the pool. A compact block outruns the
// txs it lists on the far side of the network: a node that lacks one of
// them has often already heard the tx announced and is fetching it. The
// getblocktxn for the block's missing txs goes out at once, as before,
// but the block job also watches the txs the pool accepts meanwhile, and
// assembles the block as soon as the pool holds every missing tx, whichever
// comes first. So a block never waits longer than its getblocktxn round
// trip, and when the txs were on their way it waits less; that is what
// lets compact blocks prefill fewer young txs (prefill.go).

// MaxTxArrivals is how many recently accepted tx ids the arrival log keeps
// for block jobs to check their missing short ids against; a job that falls
// further behind looks its missing txs up in the pool instead.
const MaxTxArrivals = 1024

// txArrivals is a bounded log of the ids of txs the pool accepted, in
// order, with a channel closed at each new arrival.
type txArrivals struct {
	mu   sync.Mutex
	ring [MaxTxArrivals]ID
	next uint64        // sequence number of the next arrival
	wake chan struct{} // closed at the next arrival; nil until asked for
}

// add logs an accepted tx id and wakes the waiters.
func (a *txArrivals) add(id ID) {
	a.mu.Lock()
	a.ring[a.next%MaxTxArrivals] = id
	a.next++
	if a.wake != nil {
		close(a.wake)
		a.wake = nil
	}
	a.mu.Unlock()
}

// mark returns the sequence number of the next arrival: since(mark())
// reports what arrives from now on.
func (a *txArrivals) mark() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.next
}

// since calls fn for each id that arrived from sequence number seq on, and
// returns the sequence number to ask from next, whether arrivals were
// lost (they fell out of the log), and a channel closed at the next
// arrival. fn runs under the log's lock and must be quick.
func (a *txArrivals) since(seq uint64, fn func(ID)) (next uint64, lost bool, wake <-chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next-seq > MaxTxArrivals {
		lost, seq = true, a.next-MaxTxArrivals
	}
	for ; seq < a.next; seq++ {
		fn(a.ring[seq%MaxTxArrivals])
	}
	if a.wake == nil {
		a.wake = make(chan struct{})
	}
	return a.next, lost, a.wake
}
