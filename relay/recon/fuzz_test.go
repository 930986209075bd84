package recon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// FuzzDecodeSymbols: decoding never panics, every failure wraps
// ErrMalformed, and whatever decodes is within the bounds and re-encodes
// to the same bytes (one accepted encoding per batch).
func FuzzDecodeSymbols(f *testing.F) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, c := range []struct{ start, n int }{{0, 1}, {5, 3}, {200, 2}, {MaxSymbols - 1, 1}} {
		syms := make([]Symbol, c.n)
		for i := range syms {
			syms[i] = Symbol{Sum: randID(r), Check: r.Uint64(), Count: r.Uint32()}
		}
		b, err := AppendSymbols(nil, c.start, syms)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 0})
	f.Add(binary.AppendUvarint([]byte{0}, MaxSymbolsPerBatch))
	f.Add([]byte{0x80, 0x00, 0x01})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		start, syms, err := DecodeSymbols(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			if syms != nil {
				t.Fatal("symbols returned with an error")
			}
			return
		}
		if len(syms) == 0 || len(syms) > MaxSymbolsPerBatch || start < 0 || start+len(syms) > MaxSymbols {
			t.Fatalf("batch of %d symbols from %d decoded", len(syms), start)
		}
		out, err := AppendSymbols(nil, start, syms)
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}

// fuzzSession is the fixed pair of sets FuzzDecoder reconciles: the
// remote's honest symbols up to the bound, and the index at which an
// honest stream decodes.
type fuzzSession struct {
	key       Key
	p         pair
	honest    []Symbol
	decodesAt int
}

func newFuzzSession(t testing.TB) *fuzzSession {
	r := rand.New(rand.NewPCG(43, 44))
	s := &fuzzSession{key: testKey(45), p: newPair(r, 30, 8, 5)}
	remote := encoderOf(s.key, s.p.common, s.p.onlyR)
	s.honest = mustSymbols(t, remote, 0, MaxSymbols)
	d := NewDecoder(encoderOf(s.key, s.p.common, s.p.onlyL))
	for !d.Decoded() {
		if err := d.Add(d.Received(), s.honest[d.Received():d.Received()+1]); err != nil {
			t.Fatal(err)
		}
	}
	s.decodesAt = d.Received()
	return s
}

// FuzzDecoder feeds a decoder a stream steered by the input: honest
// symbols, honest symbols with a forged id toggled in (the forger knows
// the key), raw symbol bytes, flipped bits, whole batches up to the bound,
// and wire batches. The decoder must never panic, never pass its bounds,
// and never report an id on the wrong side of what we hold; an honest
// stream must decode to the true difference at its usual index.
func FuzzDecoder(f *testing.F) {
	s := newFuzzSession(f)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, s.decodesAt))
	f.Add([]byte{1 | 31<<3})                       // a run of honest symbols
	f.Add([]byte{5, 5, 5, 5, 5})                   // full batches to the bound and past it
	f.Add([]byte{2, 0x00, 1, 2, 0x41, 0, 2, 0x82}) // forge common, theirs, ours
	f.Add([]byte{2, 0x03, 0, 0, 2, 0x03, 1 | 15<<3})
	f.Add(append([]byte{3}, make([]byte, SymbolSize)...))
	f.Add([]byte{0, 4, 0x10, 0x01, 1 | 20<<3})
	batch, _ := AppendSymbols([]byte{6}, 0, s.honest[:4])
	f.Add(batch)
	f.Fuzz(func(t *testing.T, data []byte) {
		local := encoderOf(s.key, s.p.common, s.p.onlyL)
		d := NewDecoder(local)
		h := newHasher(s.key)
		honest := true
		take := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		for len(data) > 0 && d.Err() == nil {
			op := take()
			i := d.Received()
			next := func(n int) []Symbol { // honest symbols from i, clipped at the bound
				return append([]Symbol(nil), s.honest[i:min(i+n, MaxSymbols)]...)
			}
			var syms []Symbol
			switch op % 8 {
			case 0:
				syms = next(1)
			case 1:
				syms = next(int(op>>3) + 1)
			case 2: // toggle a forged or real id into the next symbol
				syms = next(1)
				sel := take()
				var id ID
				switch sets := [][]ID{s.p.common, s.p.onlyR, s.p.onlyL}; sel % 4 {
				case 3:
					id = ID{sel, take(), take()}
				default:
					id = sets[sel%4][int(sel>>2)%len(sets[sel%4])]
				}
				if len(syms) > 0 {
					check, _ := h.hash(&id)
					xorID(&syms[0].Sum, &id)
					syms[0].Check ^= check
					if sel&0x80 != 0 {
						syms[0].Count--
					} else {
						syms[0].Count++
					}
					honest = false
				}
			case 3: // raw bytes
				var raw [SymbolSize]byte
				for k := range raw {
					raw[k] = take()
				}
				var sym Symbol
				copy(sym.Sum[:], raw[:32])
				sym.Check = binary.BigEndian.Uint64(raw[32:40])
				sym.Count = binary.BigEndian.Uint32(raw[40:])
				syms, honest = []Symbol{sym}, false
			case 4: // flip a bit
				syms = next(1)
				bit := int(take())<<8 | int(take())
				if len(syms) > 0 {
					honest = false
					switch bit %= SymbolSize * 8; {
					case bit < 256:
						syms[0].Sum[bit/8] ^= 1 << (bit % 8)
					case bit < 320:
						syms[0].Check ^= 1 << (bit - 256)
					default:
						syms[0].Count ^= 1 << (bit - 320)
					}
				}
			case 5: // a full batch, or one past the bound
				syms = next(MaxSymbolsPerBatch)
				if len(syms) == 0 {
					syms = []Symbol{{}}
				}
			case 6: // the rest of the input is a wire batch
				start, got, err := DecodeSymbols(data)
				data = nil
				if err != nil {
					continue
				}
				i, syms, honest = start, got, false
			default:
				syms = nil // an empty batch changes nothing
			}
			before := d.Received()
			err := d.Add(i, syms)
			switch {
			case err == nil && d.Received() != before+len(syms):
				t.Fatalf("took %d symbols of %d", d.Received()-before, len(syms))
			case err != nil && errors.Is(err, ErrTooManySymbols) != (i == before && before+len(syms) > MaxSymbols):
				t.Fatalf("Received %d + %d symbols: %v", before, len(syms), err)
			case err != nil && honest && !errors.Is(err, ErrTooManySymbols):
				t.Fatalf("honest stream refused: %v", err)
			case err != nil && d.Err() == nil && d.Received() != before:
				t.Fatalf("a refused batch moved Received from %d to %d", before, d.Received())
			}
		}
		if d.Received() > MaxSymbols {
			t.Fatalf("%d symbols held", d.Received())
		}
		remote, ours := d.Remote(), d.Local()
		if len(remote)+len(ours) > MaxDecodedIDs {
			t.Fatalf("%d ids decoded", len(remote)+len(ours))
		}
		seen := map[ID]bool{}
		for _, id := range append(remote, ours...) {
			if seen[id] {
				t.Fatalf("id %s reported twice", id.Short())
			}
			seen[id] = true
		}
		for _, id := range remote {
			if local.Has(id) {
				t.Fatalf("Remote reports %s, which we hold", id.Short())
			}
		}
		for _, id := range ours {
			if !local.Has(id) {
				t.Fatalf("Local reports %s, which we do not hold", id.Short())
			}
		}
		if honest && d.Received() >= s.decodesAt {
			if !d.Decoded() || !sameSet(remote, s.p.onlyR) || !sameSet(ours, s.p.onlyL) {
				t.Fatalf("honest stream of %d symbols: decoded %v, %d/%d remote, %d/%d local", d.Received(),
					d.Decoded(), len(remote), len(s.p.onlyR), len(ours), len(s.p.onlyL))
			}
		}
	})
}
