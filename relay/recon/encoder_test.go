package recon

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// naiveSymbols is the reference model: symbol i is computed by walking every
// id's index sequence from the start, with no state kept between calls.
func naiveSymbols(key Key, ids []ID, m int) []Symbol {
	h := newHasher(key)
	out := make([]Symbol, m)
	for _, id := range ids {
		check, seed := h.hash(&id)
		for mp := newMapping(seed); mp.idx < uint64(m); mp.next() {
			addSym(&out[mp.idx], &id, check)
		}
	}
	return out
}

func mustSymbols(t testing.TB, e *Encoder, start, n int) []Symbol {
	t.Helper()
	s, err := e.Symbols(start, n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMappingGolden pins the index sequence: both peers must compute the
// same one, so a change here is a protocol change.
func TestMappingGolden(t *testing.T) {
	h := newHasher(SessionKey(1, 2))
	id := ID{1, 2, 3}
	_, seed := h.hash(&id)
	var got []uint64
	for m := newMapping(seed); m.idx < MaxSymbols; m.next() {
		got = append(got, m.idx)
	}
	want := []uint64{0, 1, 4, 5, 6, 8, 9, 10, 15, 43, 49, 190, 276, 550, 1439, 2872, 6208}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("index sequence changed:\n got %v\nwant %v", got, want)
	}
}

// TestMappingDensity checks that an id maps to index i with probability
// close to the paper's rho(i) = 1/(1+i/2). The gap sampling approximates
// prod i/(i+2) by a square, which is a few percent off at the smallest
// indexes (index 1: 0.64 instead of 2/3) and exact in the limit.
func TestMappingDensity(t *testing.T) {
	const n = 100000
	idxs := []uint64{0, 1, 2, 3, 5, 10, 30, 100, 300, 1000}
	hits := make([]int, len(idxs))
	r := rand.New(rand.NewPCG(3, 4))
	for range n {
		m := newMapping(r.Uint64())
		for k, want := range idxs {
			for m.idx < want {
				m.next()
			}
			if m.idx == want {
				hits[k]++
			}
		}
	}
	for k, i := range idxs {
		p := 1 / (1 + float64(i)/2)
		got := float64(hits[k]) / n
		tol := 0.05*p + 5*math.Sqrt(p*(1-p)/n)
		t.Logf("index %4d: %.4f (rho %.4f)", i, got, p)
		if math.Abs(got-p) > tol {
			t.Errorf("index %d: mapped with frequency %.4f, want %.4f ± %.4f", i, got, p, tol)
		}
	}
}

func TestNextIndexEdges(t *testing.T) {
	for _, j := range []uint64{0, 1, 100, MaxSymbols - 1} {
		for _, r := range []uint64{0, 1, 1 << 11, math.MaxUint64 >> 1, math.MaxUint64 - 1<<11, math.MaxUint64} {
			n := nextIndex(j, r)
			if n <= j || n > MaxSymbols {
				t.Errorf("nextIndex(%d, %#x) = %d", j, r, n)
			}
		}
	}
}

func TestEncoderMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	key := testKey(7)
	e := NewEncoder(key)
	var held []ID
	pos := map[ID]int{}
	produced := 0
	for step := 0; step < 3000; step++ {
		switch op := r.IntN(10); {
		case op < 5 || len(held) == 0: // add a new id (or a held one: no-op)
			id := randID(r)
			if len(held) > 0 && r.IntN(8) == 0 {
				id = held[r.IntN(len(held))]
				if e.Add(id) {
					t.Fatal("Add of a held id reported true")
				}
				continue
			}
			if !e.Add(id) {
				t.Fatal("Add of a new id reported false")
			}
			pos[id] = len(held)
			held = append(held, id)
		case op < 8: // remove a held id (or an absent one: no-op)
			if r.IntN(8) == 0 {
				if e.Remove(randID(r)) {
					t.Fatal("Remove of an absent id reported true")
				}
				continue
			}
			k := r.IntN(len(held))
			id := held[k]
			if !e.Remove(id) {
				t.Fatal("Remove of a held id reported false")
			}
			last := held[len(held)-1]
			held[k], pos[last] = last, k
			held = held[:len(held)-1]
			delete(pos, id)
		default: // read a range, sometimes past what was produced
			start := r.IntN(produced + 20)
			n := r.IntN(40)
			got := mustSymbols(t, e, start, n)
			produced = max(produced, start+n)
			want := naiveSymbols(key, held, start+n)[start:]
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: symbols [%d,%d) differ from the model", step, start, start+n)
			}
		}
		if e.Len() != len(held) {
			t.Fatalf("Len %d, want %d", e.Len(), len(held))
		}
	}
	// Everything produced still matches after the churn.
	if got, want := mustSymbols(t, e, 0, produced), naiveSymbols(key, held, produced); !reflect.DeepEqual(got, want) {
		t.Fatal("final symbols differ from the model")
	}
}

// TestRemoveSymmetry: adding ids and removing them again, before or after
// symbols were produced, leaves the symbols of the set without them.
func TestRemoveSymmetry(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	key := testKey(10)
	base, extra := randIDs(r, 2000), randIDs(r, 300)
	want := mustSymbols(t, encoderOf(key, base), 0, 600)

	e := encoderOf(key, base, extra)
	mustSymbols(t, e, 0, 200) // produced with extra in
	for _, id := range extra {
		if !e.Remove(id) {
			t.Fatal("Remove reported false")
		}
	}
	if got := mustSymbols(t, e, 0, 600); !reflect.DeepEqual(got, want) {
		t.Fatal("add then remove: symbols differ from the base set's")
	}
	for _, id := range extra {
		e.Add(id)
	}
	if got, want2 := mustSymbols(t, e, 0, 800), mustSymbols(t, encoderOf(key, extra, base), 0, 800); !reflect.DeepEqual(got, want2) {
		t.Fatal("re-add after producing: symbols differ from a fresh encoder's (order of adds must not matter)")
	}
	for _, id := range base {
		e.Remove(id)
	}
	for _, id := range extra {
		e.Remove(id)
	}
	if e.Len() != 0 {
		t.Fatalf("Len %d after removing everything", e.Len())
	}
	for i, s := range mustSymbols(t, e, 0, 1000) {
		if s != (Symbol{}) {
			t.Fatalf("symbol %d of the emptied encoder is %+v", i, s)
		}
	}
}

func TestEncoderBounds(t *testing.T) {
	e := encoderOf(testKey(1), randIDs(rand.New(rand.NewPCG(1, 1)), 10))
	for _, c := range []struct{ start, n int }{{-1, 1}, {0, -1}, {0, MaxSymbols + 1}, {MaxSymbols, 1}, {MaxSymbols - 1, 2}, {math.MaxInt, math.MaxInt}} {
		if _, err := e.Symbols(c.start, c.n); !errors.Is(err, ErrTooManySymbols) {
			t.Errorf("Symbols(%d, %d): %v, want ErrTooManySymbols", c.start, c.n, err)
		}
	}
	s := mustSymbols(t, e, MaxSymbols-1, 1)
	if len(s) != 1 {
		t.Fatal("the last symbol was refused")
	}
	if s := mustSymbols(t, e, 5, 0); len(s) != 0 {
		t.Fatal("empty range not empty")
	}
	if got := mustSymbols(t, e, 0, 1)[0].Count; got != 10 {
		t.Fatal("symbol 0 does not count every id")
	}
}

func TestSessionKey(t *testing.T) {
	if SessionKey(1, 2) == SessionKey(2, 1) {
		t.Fatal("session key ignores the roles")
	}
	if SessionKey(1, 2) != SessionKey(1, 2) {
		t.Fatal("session key not deterministic")
	}
	// Another key gives other checksums and other sequences.
	id := ID{9}
	c1, s1 := newHasher(SessionKey(1, 2)).hash(&id)
	c2, s2 := newHasher(SessionKey(1, 3)).hash(&id)
	if c1 == c2 || s1 == s2 {
		t.Fatal("keys do not change the hash")
	}
}
