package relay

import (
	"slices"
	"sync"
	"time"
)

// RTTSamples is how many recent round trips of tip and tx requests the tx
// cut-through gate (txcut.go) is taken from.
const RTTSamples = 64

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
// The low quartile leaves out fetches that waited at a cut-through server.
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
