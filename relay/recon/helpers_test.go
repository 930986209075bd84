package recon

import (
	"math/rand/v2"
	"testing"
)

func testKey(seed uint64) Key { return SessionKey(seed, seed^0x5eed) }

func randID(r *rand.Rand) ID {
	var id ID
	for i := 0; i < len(id); i += 8 {
		v := r.Uint64()
		for b := 0; b < 8; b++ {
			id[i+b] = byte(v >> (8 * b))
		}
	}
	return id
}

func randIDs(r *rand.Rand, n int) []ID {
	out := make([]ID, n)
	for i := range out {
		out[i] = randID(r)
	}
	return out
}

func encoderOf(key Key, sets ...[]ID) *Encoder {
	e := NewEncoder(key)
	for _, s := range sets {
		for _, id := range s {
			e.Add(id)
		}
	}
	return e
}

// sets builds a remote and a local set sharing common ids, with onlyR ids
// only the remote holds and onlyL only we hold.
type pair struct {
	common, onlyR, onlyL []ID
}

func newPair(r *rand.Rand, common, onlyR, onlyL int) pair {
	return pair{randIDs(r, common), randIDs(r, onlyR), randIDs(r, onlyL)}
}

// reconcile streams the remote's symbols to a decoder over local in
// batches of batch symbols until it decodes, and returns the decoder and
// the symbols sent.
func reconcile(t testing.TB, key Key, p pair, batch int) (*Decoder, int) {
	t.Helper()
	remote := encoderOf(key, p.common, p.onlyR)
	local := encoderOf(key, p.common, p.onlyL)
	d := NewDecoder(local)
	for !d.Decoded() {
		start := d.Received()
		n := min(batch, MaxSymbols-start)
		if n == 0 {
			t.Fatalf("not decoded within %d symbols", MaxSymbols)
		}
		syms, err := remote.Symbols(start, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Add(start, syms); err != nil {
			t.Fatalf("add at %d: %v", start, err)
		}
	}
	return d, d.Received()
}

func sameSet(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[ID]int, len(a))
	for _, id := range a {
		m[id]++
	}
	for _, id := range b {
		if m[id] == 0 {
			return false
		}
		m[id]--
	}
	return true
}
