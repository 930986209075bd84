package recon

import (
	"math/rand/v2"
	"testing"
)

// The figures the relay needs to size its reconciliation period: what one
// session costs a 5,000-id pool (the syncer's MaxPoolIDsPerResponse) whose
// peer differs in 50 ids.
const (
	benchPool = 5000
	benchDiff = 50
)

func benchPair() (Key, pair) {
	r := rand.New(rand.NewPCG(51, 52))
	return testKey(53), newPair(r, benchPool-benchDiff/2, benchDiff/2, benchDiff/2)
}

// symbolsToDecode streams one symbol at a time to find how many the
// benchmark's difference takes.
func symbolsToDecode(b *testing.B, key Key, p pair) int {
	_, n := reconcile(b, key, p, 1)
	return n
}

func BenchmarkEncode(b *testing.B) {
	key, p := benchPair()
	n := symbolsToDecode(b, key, p)
	ids := append(append([]ID(nil), p.common...), p.onlyR...)
	// A session with a fresh key: hash and bucket every id, then produce
	// the symbols the difference needs.
	b.Run("fresh-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := NewEncoder(key)
			for _, id := range ids {
				e.Add(id)
			}
			if _, err := e.Symbols(0, n); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n), "symbols/op")
		b.ReportMetric(float64(BatchSize(0, n)), "wire-bytes/op")
	})
	// A session on an encoder kept across sessions (a key shared for a
	// while): the symbols exist; a session copies and encodes them.
	b.Run("kept", func(b *testing.B) {
		e := encoderOf(key, ids)
		mustSymbols(b, e, 0, n)
		b.ReportAllocs()
		for b.Loop() {
			syms, _ := e.Symbols(0, n)
			if _, err := AppendSymbols(nil, 0, syms); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What a mempool change costs a kept encoder with 256 symbols produced.
	b.Run("add+remove", func(b *testing.B) {
		e := encoderOf(key, ids)
		mustSymbols(b, e, 0, 256)
		extra := randIDs(rand.New(rand.NewPCG(54, 55)), 1024)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			id := extra[i%len(extra)]
			i++
			e.Add(id)
			e.Remove(id)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	key, p := benchPair()
	n := symbolsToDecode(b, key, p)
	remote := mustSymbols(b, encoderOf(key, p.common, p.onlyR), 0, MaxSymbols)
	msgs := [][]byte{}
	for start := 0; start < n; start += 16 {
		m, _ := AppendSymbols(nil, start, remote[start:min(start+16, n)])
		msgs = append(msgs, m)
	}
	decode := func(b *testing.B, local *Encoder) {
		d := NewDecoder(local)
		for _, m := range msgs {
			start, syms, err := DecodeSymbols(m)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Add(start, syms); err != nil {
				b.Fatal(err)
			}
		}
		if !d.Decoded() || len(d.Remote())+len(d.Local()) != benchDiff {
			b.Fatal("not decoded")
		}
	}
	// Everything the receiving side does in a session with a fresh key:
	// encode its own pool, decode the wire batches (16 symbols each), peel.
	b.Run("fresh-key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decode(b, encoderOf(key, p.common, p.onlyL))
		}
		b.ReportMetric(float64(n), "symbols/op")
	})
	// Decoding alone, against a kept local encoder.
	b.Run("kept", func(b *testing.B) {
		local := encoderOf(key, p.common, p.onlyL)
		mustSymbols(b, local, 0, n)
		b.ReportAllocs()
		for b.Loop() {
			decode(b, local)
		}
	})
}
