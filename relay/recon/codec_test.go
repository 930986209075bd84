package recon

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, c := range []struct{ start, n int }{{0, 1}, {0, 7}, {127, 1}, {128, 300}, {MaxSymbols - MaxSymbolsPerBatch, MaxSymbolsPerBatch}, {MaxSymbols - 1, 1}} {
		syms := make([]Symbol, c.n)
		for i := range syms {
			syms[i] = Symbol{Sum: randID(r), Check: r.Uint64(), Count: r.Uint32()}
		}
		b, err := AppendSymbols([]byte("prefix"), c.start, syms)
		if err != nil {
			t.Fatal(err)
		}
		b = b[len("prefix"):]
		if len(b) != BatchSize(c.start, c.n) {
			t.Fatalf("%d bytes, BatchSize says %d", len(b), BatchSize(c.start, c.n))
		}
		start, got, err := DecodeSymbols(b)
		if err != nil || start != c.start || !slices.Equal(got, syms) {
			t.Fatalf("start %d n %d: got start %d, %d symbols, %v", c.start, c.n, start, len(got), err)
		}
	}
}

func TestAppendSymbolsRefuses(t *testing.T) {
	one := make([]Symbol, 1)
	for _, c := range []struct {
		start int
		syms  []Symbol
	}{
		{0, nil},
		{0, make([]Symbol, MaxSymbolsPerBatch+1)},
		{-1, one},
		{MaxSymbols, one},
		{MaxSymbols - 1, make([]Symbol, 2)},
	} {
		if b, err := AppendSymbols([]byte{9}, c.start, c.syms); err == nil || !bytes.Equal(b, []byte{9}) {
			t.Errorf("start %d, %d symbols: err %v, %d bytes", c.start, len(c.syms), err, len(b))
		}
	}
}

func TestDecodeSymbolsMalformed(t *testing.T) {
	valid, _ := AppendSymbols(nil, 3, make([]Symbol, 2))
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no count", []byte{0}},
		{"truncated varint", []byte{0x80}},
		{"non-minimal start", append([]byte{0x80, 0x00, 1}, make([]byte, SymbolSize)...)},
		{"non-minimal count", append([]byte{0, 0x81, 0x00}, make([]byte, SymbolSize)...)},
		{"zero symbols", []byte{0, 0}},
		{"count over the batch cap", binary.AppendUvarint([]byte{0}, MaxSymbolsPerBatch+1)},
		{"start past the bound", append(binary.AppendUvarint(nil, MaxSymbols), append([]byte{1}, make([]byte, SymbolSize)...)...)},
		{"ends past the bound", append(binary.AppendUvarint(nil, MaxSymbols-1), append([]byte{2}, make([]byte, 2*SymbolSize)...)...)},
		{"one byte short", valid[:len(valid)-1]},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"huge varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		if _, syms, err := DecodeSymbols(c.b); !errors.Is(err, ErrMalformed) || syms != nil {
			t.Errorf("%s: err %v, %d symbols", c.name, err, len(syms))
		}
	}
}

// TestDecodeSymbolsAllocatesAfterChecking: a claimed full batch with few
// bytes behind it is refused without allocating the batch (2048 symbols
// would be 96 KiB).
func TestDecodeSymbolsAllocatesAfterChecking(t *testing.T) {
	b := append(binary.AppendUvarint([]byte{0}, MaxSymbolsPerBatch), make([]byte, 3*SymbolSize)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, _, err := DecodeSymbols(b); !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 1024 {
		t.Fatalf("%d bytes allocated per refused batch", per)
	}
}
