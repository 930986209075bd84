package relay

import (
	"slices"
	"sync"
	"time"
)

// Which txs a compact block carries whole. With cut-through a tx crosses
// each hop in one link latency and its body trails by one request round
// trip at the far end, so the far side of the network holds a tx about one
// round trip later than the block header, which also crosses each hop in
// one latency, would reach it. Every tx the proposer first saw less than
// about a round trip before publishing is still missing somewhere when the
// header arrives, and there costs a getblocktxn round trip, the whole gap
// between the block's time to all and its floor. Those go prefilled; the
// rest as short ids.

// Bounds of the automatic prefill age.
const (
	// RTTSamples is how many recent round trips of tip and tx requests the
	// automatic prefill age and the tx cut-through gate are taken from.
	RTTSamples = 64
	// PrefillRTTFactor scales the low quartile of those round trips (the
	// quartile leaves out fetches that waited at a cut-through server).
	PrefillRTTFactor = 1.5
	// MaxPrefillAge caps the automatic prefill age, so a slow link cannot
	// turn compact blocks into push.
	MaxPrefillAge = time.Second
)

// rttSamples keeps the last RTTSamples round trips of tip and tx requests.
type rttSamples struct {
	mu   sync.Mutex
	ring [RTTSamples]time.Duration
	n    int // samples taken, for the ring position
}

func (s *rttSamples) add(d time.Duration) {
	s.mu.Lock()
	s.ring[s.n%RTTSamples] = d
	s.n++
	s.mu.Unlock()
}

// lowQuartile returns the 25th percentile of the samples, 0 without any.
func (s *rttSamples) lowQuartile() time.Duration {
	s.mu.Lock()
	k := min(s.n, RTTSamples)
	v := slices.Clone(s.ring[:k])
	s.mu.Unlock()
	if k == 0 {
		return 0
	}
	slices.Sort(v)
	return v[(k-1)/4]
}

// prefillAge is how young a tx must be here to travel whole in a compact
// block (see Config.PrefillAge).
func (r *Relay) prefillAge() time.Duration {
	switch {
	case r.cfg.PrefillAge > 0:
		return r.cfg.PrefillAge
	case r.cfg.PrefillAge < 0:
		return 0
	}
	return min(time.Duration(float64(r.rtt.lowQuartile())*PrefillRTTFactor), MaxPrefillAge)
}

// youngerThan reports whether this node first saw tx id less than age ago.
func (r *Relay) youngerThan(id ID, age time.Duration, now time.Time) bool {
	if age <= 0 {
		return false
	}
	at, ok := r.seen.get(id)
	return ok && now.Sub(at) < age
}
