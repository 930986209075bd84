package relay

import "time"

// Which txs a compact block carries whole. Always those still in the
// proposer's own announcement batch: nobody else can hold them. Any other
// tx the far side lacks when the header arrives is, nearly always, one it
// is fetching at that moment (it was announced a hop or two ahead of the
// block), and the block waits for that fetch rather than for a getblocktxn
// round trip: the getblocktxn races the pool (arrivals.go). So by default
// nothing else is prefilled; measured in BENCHMARKS.md ("Compact blocks
// race the pool"), prefilling every tx younger than a round and a half
// doubled block bytes and made no block faster. Config.PrefillAge still
// prefills txs first seen less than that ago, for networks whose txs
// trail their blocks by more than a round trip.

// prefillAge is how young a tx must be here to travel whole in a compact
// block (Config.PrefillAge); zero or negative prefills none by age.
func (r *Relay) prefillAge() time.Duration {
	return max(r.cfg.PrefillAge, 0)
}

// youngerThan reports whether this node first saw tx id less than age ago.
func (r *Relay) youngerThan(id ID, age time.Duration, now time.Time) bool {
	if age <= 0 {
		return false
	}
	at, ok := r.seen.get(id)
	return ok && now.Sub(at) < age
}
