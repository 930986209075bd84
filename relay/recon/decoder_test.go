package recon

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func checkResult(t *testing.T, d *Decoder, p pair) {
	t.Helper()
	if !d.Decoded() {
		t.Fatalf("not decoded (err %v)", d.Err())
	}
	if got := d.Remote(); !sameSet(got, p.onlyR) {
		t.Fatalf("Remote: %d ids, want the %d only the remote holds", len(got), len(p.onlyR))
	}
	if got := d.Local(); !sameSet(got, p.onlyL) {
		t.Fatalf("Local: %d ids, want the %d only we hold", len(got), len(p.onlyL))
	}
}

// TestRoundTrip reconciles sets of 10,000+ ids differing in 0, 1, 10 and
// 1000 ids, split at random between the two sides, in batches of several
// sizes, through the wire encoding.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, diff := range []int{0, 1, 10, 1000} {
		for _, batch := range []int{1, 13, 256, MaxSymbolsPerBatch} {
			onlyR := r.IntN(diff + 1)
			p := newPair(r, 10000+r.IntN(1000), onlyR, diff-onlyR)
			key := testKey(r.Uint64())
			remote := encoderOf(key, p.common, p.onlyR)
			local := encoderOf(key, p.common, p.onlyL)
			d := NewDecoder(local)
			for !d.Decoded() {
				syms, err := remote.Symbols(d.Received(), min(batch, MaxSymbols-d.Received()))
				if err != nil {
					t.Fatal(err)
				}
				msg, err := AppendSymbols(nil, d.Received(), syms)
				if err != nil {
					t.Fatal(err)
				}
				start, got, err := DecodeSymbols(msg)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.Add(start, got); err != nil {
					t.Fatalf("diff %d batch %d: %v", diff, batch, err)
				}
			}
			checkResult(t, d, p)
			if diff == 0 && batch == 1 && d.Received() != 1 {
				t.Fatalf("equal sets took %d symbols, want 1", d.Received())
			}
			t.Logf("diff %4d (%d theirs, %d ours) batch %4d: decoded after %d symbols", diff, len(p.onlyR), len(p.onlyL), batch, d.Received())
		}
	}
}

// TestOverhead measures the symbols needed per differing id, feeding one
// symbol at a time. The common part of the sets cancels out and does not
// change the count, so it is kept small here to run many trials. The paper
// reports ~1.35 for large differences and more for small ones.
func TestOverhead(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	cases := []struct {
		diff, trials int
		maxMean      float64
	}{
		{1, 200, 1.0}, // the first symbol holds the one id alone
		{2, 300, 2.0},
		{5, 300, 2.0},
		{10, 300, 1.9},
		{20, 200, 1.8},
		{50, 200, 1.6},
		{100, 100, 1.6},
		{300, 40, 1.5},
		{1000, 20, 1.45},
	}
	var all, allDiff int
	for _, c := range cases {
		total, worst := 0, 0
		for range c.trials {
			onlyR := r.IntN(c.diff + 1)
			p := newPair(r, 100, onlyR, c.diff-onlyR)
			d, n := reconcile(t, testKey(r.Uint64()), p, 1)
			checkResult(t, d, p)
			total += n
			worst = max(worst, n)
		}
		mean := float64(total) / float64(c.diff*c.trials)
		t.Logf("difference %4d: %.3f symbols per id on average over %d trials (worst %d symbols, %.2f per id)",
			c.diff, mean, c.trials, worst, float64(worst)/float64(c.diff))
		if mean > c.maxMean {
			t.Errorf("difference %d: %.3f symbols per id, want at most %.2f", c.diff, mean, c.maxMean)
		}
		if c.diff >= 10 {
			all += total
			allDiff += c.diff * c.trials
		}
	}
	mean := float64(all) / float64(allDiff)
	t.Logf("all differences of 10 or more: %.3f symbols per differing id", mean)
	if mean > 1.6 {
		t.Errorf("%.3f symbols per differing id, want under 1.6", mean)
	}
}

// TestOverheadLarge checks that MaxSymbols holds TargetDifference.
func TestOverheadLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	r := rand.New(rand.NewPCG(15, 16))
	const trials = 10
	total, worst := 0, 0
	for range trials {
		onlyR := r.IntN(TargetDifference + 1)
		p := newPair(r, 100, onlyR, TargetDifference-onlyR)
		d, n := reconcile(t, testKey(r.Uint64()), p, 64)
		checkResult(t, d, p)
		total += n
		worst = max(worst, n)
	}
	mean := float64(total) / float64(trials*TargetDifference)
	t.Logf("difference %d: %.3f symbols per id (batches of 64), worst %d of the %d allowed", TargetDifference, mean, worst, MaxSymbols)
	if mean > 1.45 {
		t.Errorf("%.3f symbols per id", mean)
	}
}

func TestDecoderOutOfOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	key := testKey(1)
	remote := encoderOf(key, randIDs(r, 50))
	d := NewDecoder(encoderOf(key, randIDs(r, 50)))
	if err := d.Add(1, mustSymbols(t, remote, 1, 3)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("gap: %v", err)
	}
	// The refused batch changed nothing.
	if err := d.Add(0, mustSymbols(t, remote, 0, 3)); err != nil || d.Err() != nil {
		t.Fatalf("after a refused batch: %v", err)
	}
	if err := d.Add(2, mustSymbols(t, remote, 2, 3)); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("repeat: %v", err)
	}
	if d.Received() != 3 {
		t.Fatalf("a refused batch was taken: Received %d", d.Received())
	}
}

func TestDecoderSymbolBound(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	key := testKey(2)
	local := encoderOf(key, randIDs(r, 20))
	d := NewDecoder(local)
	garbage := func(n int) []Symbol {
		s := make([]Symbol, n)
		for i := range s {
			s[i] = Symbol{Sum: randID(r), Check: r.Uint64(), Count: uint32(r.IntN(3))}
		}
		return s
	}
	if err := d.Add(0, garbage(MaxSymbols+1)); !errors.Is(err, ErrTooManySymbols) {
		t.Fatalf("one batch past the bound: %v", err)
	}
	if d.Received() != 0 || d.Err() != nil {
		t.Fatal("the refused batch was taken")
	}
	for d.Received() < MaxSymbols {
		if err := d.Add(d.Received(), garbage(min(1000, MaxSymbols-d.Received()))); err != nil {
			t.Fatalf("at %d: %v", d.Received(), err)
		}
	}
	if err := d.Add(MaxSymbols, garbage(1)); !errors.Is(err, ErrTooManySymbols) {
		t.Fatalf("symbol %d: %v", MaxSymbols, err)
	}
	if d.Decoded() || len(d.Remote())+len(d.Local()) != 0 || d.Err() != nil {
		t.Fatalf("garbage decoded: %d remote, %d local ids, err %v", len(d.Remote()), len(d.Local()), d.Err())
	}
}

func TestDecoderIDBound(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	p := newPair(r, 100, 30, 20)
	key := testKey(3)
	remote := encoderOf(key, p.common, p.onlyR)
	d := NewDecoder(encoderOf(key, p.common, p.onlyL))
	d.maxIDs = 10
	err := d.Add(0, mustSymbols(t, remote, 0, 200))
	if !errors.Is(err, ErrTooManyIDs) {
		t.Fatalf("decoding 50 ids with a bound of 10: %v", err)
	}
	if n := len(d.Remote()) + len(d.Local()); n != 10 {
		t.Fatalf("%d ids peeled, bound 10", n)
	}
	if err := d.Add(200, mustSymbols(t, remote, 200, 1)); !errors.Is(err, ErrTooManyIDs) {
		t.Fatalf("the error must stick: %v", err)
	}
}

func TestDecoderLocalChanged(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	key := testKey(4)
	remote := encoderOf(key, randIDs(r, 30))
	local := encoderOf(key, randIDs(r, 30))
	d := NewDecoder(local)
	if err := d.Add(0, mustSymbols(t, remote, 0, 5)); err != nil {
		t.Fatal(err)
	}
	local.Add(randID(r))
	if err := d.Add(5, mustSymbols(t, remote, 5, 5)); !errors.Is(err, ErrLocalChanged) {
		t.Fatalf("after local.Add: %v", err)
	}
}

// TestDecoderAfterDecoded: symbols that keep arriving after the difference
// decoded (the streamer had them in flight) are empty once the decoded ids
// are taken out, so the decoder stays decoded.
func TestDecoderAfterDecoded(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	p := newPair(r, 500, 20, 15)
	key := testKey(5)
	d, n := reconcile(t, key, p, 1)
	remote := encoderOf(key, p.common, p.onlyR)
	if err := d.Add(n, mustSymbols(t, remote, n, 500)); err != nil {
		t.Fatal(err)
	}
	checkResult(t, d, p)
}

// TestDecoderGarbage: symbols of no set decode to no id. A random symbol
// passes the purity test with probability 2^-64; counts are kept near
// +-1 so that the checksum test is what rejects them.
func TestDecoderGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	key := testKey(6)
	for trial := range 50 {
		local := encoderOf(key, randIDs(r, 40))
		ref := mustSymbols(t, local, 0, 300)
		d := NewDecoder(local)
		syms := make([]Symbol, 300)
		for i := range syms {
			syms[i] = Symbol{Sum: randID(r), Check: r.Uint64(), Count: ref[i].Count + uint32(r.IntN(3))}
		}
		if err := d.Add(0, syms); err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if d.Decoded() || len(d.Remote())+len(d.Local()) != 0 {
			t.Fatalf("trial %d: garbage decoded (%d remote, %d local ids)", trial, len(d.Remote()), len(d.Local()))
		}
	}
}

// TestDecoderCorrupted flips one bit of an honest stream. The result must
// never be a wrong difference reported as decoded, nor any id outside
// both sets: the flip is either harmless (the decoded result is right),
// detected (an error), or leaves a symbol that never empties.
func TestDecoderCorrupted(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	key := testKey(7)
	outcomes := map[string]int{}
	for trial := range 300 {
		p := newPair(r, 200, 1+r.IntN(15), r.IntN(15))
		remote := encoderOf(key, p.common, p.onlyR)
		local := encoderOf(key, p.common, p.onlyL)
		total := 4*(len(p.onlyR)+len(p.onlyL)) + 40
		syms := mustSymbols(t, remote, 0, total)
		at, bit := r.IntN(min(total, 2*(len(p.onlyR)+len(p.onlyL)))), r.IntN(SymbolSize*8)
		switch s := &syms[at]; {
		case bit < 256:
			s.Sum[bit/8] ^= 1 << (bit % 8)
		case bit < 320:
			s.Check ^= 1 << (bit - 256)
		default:
			s.Count ^= 1 << (bit - 320)
		}
		d := NewDecoder(local)
		for i := 0; i < total && !d.Decoded() && d.Err() == nil; i++ {
			d.Add(i, syms[i:i+1])
		}
		theirs := map[ID]bool{}
		for _, id := range p.onlyR {
			theirs[id] = true
		}
		for _, id := range d.Remote() {
			if !theirs[id] {
				t.Fatalf("trial %d: Remote holds %s, not an id only the remote holds (err %v)", trial, id.Short(), d.Err())
			}
		}
		for _, id := range d.Local() {
			if !local.Has(id) {
				t.Fatalf("trial %d: Local holds %s, which we do not hold", trial, id.Short())
			}
		}
		switch {
		case d.Decoded():
			checkResult(t, d, p)
			outcomes["decoded right"]++
		case d.Err() != nil:
			outcomes["error"]++
		default:
			outcomes["not decoded"]++
		}
	}
	t.Logf("one flipped bit, 300 trials: %v", outcomes)
}

// TestDecoderForgery covers a peer that knows the key and crafts symbols.
func TestDecoderForgery(t *testing.T) {
	key := testKey(8)
	h := newHasher(key)
	x, y, z := ID{1}, ID{2}, ID{3}
	hx, _ := h.hash(&x)
	hy, _ := h.hash(&y)
	hz, _ := h.hash(&z)

	t.Run("claims an id it does not hold", func(t *testing.T) {
		// Nothing in the symbols can tell: the relay learns it when the
		// peer cannot serve z.
		d := NewDecoder(encoderOf(key, []ID{x}))
		if err := d.Add(0, mustSymbols(t, encoderOf(key, []ID{x, z}), 0, 4)); err != nil {
			t.Fatal(err)
		}
		if !d.Decoded() || !sameSet(d.Remote(), []ID{z}) {
			t.Fatalf("decoded %v, remote %v", d.Decoded(), d.Remote())
		}
	})
	t.Run("claims we lack an id we hold", func(t *testing.T) {
		// local symbol 0 = (x, hx, 1); remote (0, 0, 2) leaves +x.
		d := NewDecoder(encoderOf(key, []ID{x}))
		err := d.Add(0, []Symbol{{Count: 2}})
		if !errors.Is(err, ErrInconsistent) || len(d.Remote()) != 0 {
			t.Fatalf("err %v, remote %v", err, d.Remote())
		}
	})
	t.Run("claims we hold an id we do not", func(t *testing.T) {
		// remote (x^y, hx^hy, 0) minus local (x, hx, 1) leaves -y.
		var sum ID
		xorID(&sum, &x)
		xorID(&sum, &y)
		d := NewDecoder(encoderOf(key, []ID{x}))
		err := d.Add(0, []Symbol{{Sum: sum, Check: hx ^ hy, Count: 0}})
		if !errors.Is(err, ErrInconsistent) || len(d.Local()) != 0 {
			t.Fatalf("err %v, local %v", err, d.Local())
		}
	})
	t.Run("pure symbol at an index the id does not map to", func(t *testing.T) {
		_, seed := h.hash(&z)
		mapped := map[uint64]bool{}
		for m := newMapping(seed); m.idx < 64; m.next() {
			mapped[m.idx] = true
		}
		j := 1
		for mapped[uint64(j)] {
			j++
		}
		syms := make([]Symbol, j+1)
		syms[j] = Symbol{Sum: z, Check: hz, Count: 1}
		d := NewDecoder(NewEncoder(key))
		if err := d.Add(0, syms); err != nil {
			t.Fatal(err)
		}
		if d.Decoded() || len(d.Remote()) != 0 {
			t.Fatalf("a symbol at an index z does not map to decoded z (decoded %v)", d.Decoded())
		}
	})
	t.Run("an id twice", func(t *testing.T) {
		// z alone in symbol 0 and absent from its next index: peeling z
		// there leaves -z, which is z again, with the other sign.
		_, seed := h.hash(&z)
		m := newMapping(seed)
		m.next()
		syms := make([]Symbol, m.idx+1)
		syms[0] = Symbol{Sum: z, Check: hz, Count: 1}
		d := NewDecoder(NewEncoder(key))
		if err := d.Add(0, syms); !errors.Is(err, ErrInconsistent) {
			t.Fatalf("err %v", err)
		}
	})
}
