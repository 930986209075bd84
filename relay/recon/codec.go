package recon

import (
	"encoding/binary"
	"fmt"
)

// The wire form of a batch of consecutive symbols:
//
//	Batch  = uvarint(start) uvarint(n) n×Symbol     1 <= n <= MaxSymbolsPerBatch, start+n <= MaxSymbols
//	Symbol = sum[32] check[u64] count[u32]          (SymbolSize bytes, integers big-endian)
//
// Varints are minimal and nothing may follow the last symbol, so each batch
// has exactly one encoding. The relay frames and tags the batch; the codec
// does not.

// BatchSize returns the encoded size of a batch of n symbols from start.
func BatchSize(start, n int) int {
	return uvarintLen(uint64(start)) + uvarintLen(uint64(n)) + n*SymbolSize
}

// AppendSymbols appends the batch of syms, the symbols from index start, to
// b. It fails when the batch is empty, over MaxSymbolsPerBatch, or would
// pass MaxSymbols.
func AppendSymbols(b []byte, start int, syms []Symbol) ([]byte, error) {
	if err := checkBatch(start, len(syms)); err != nil {
		return b, err
	}
	b = binary.AppendUvarint(b, uint64(start))
	b = binary.AppendUvarint(b, uint64(len(syms)))
	for i := range syms {
		b = append(b, syms[i].Sum[:]...)
		b = binary.BigEndian.AppendUint64(b, syms[i].Check)
		b = binary.BigEndian.AppendUint32(b, syms[i].Count)
	}
	return b, nil
}

func checkBatch(start, n int) error {
	if start < 0 || n < 1 || n > MaxSymbolsPerBatch || start > MaxSymbols-n {
		return fmt.Errorf("recon: batch of %d symbols from %d (want 1..%d, ending by %d)", n, start, MaxSymbolsPerBatch, MaxSymbols)
	}
	return nil
}

// DecodeSymbols decodes one batch. The claimed count is checked against
// MaxSymbolsPerBatch, MaxSymbols and the bytes actually present before the
// result is allocated. Errors wrap ErrMalformed.
func DecodeSymbols(b []byte) (start int, syms []Symbol, err error) {
	s, rest, err := uvarint(b, MaxSymbols-1, "start")
	if err != nil {
		return 0, nil, err
	}
	n, rest, err := uvarint(rest, MaxSymbolsPerBatch, "count")
	if err != nil {
		return 0, nil, err
	}
	switch {
	case n == 0:
		return 0, nil, malformed("empty batch")
	case s+n > MaxSymbols:
		return 0, nil, malformed("symbols [%d, %d) pass the bound %d", s, s+n, MaxSymbols)
	case uint64(len(rest)) != n*SymbolSize:
		return 0, nil, malformed("%d symbols need %d bytes, have %d", n, n*SymbolSize, len(rest))
	}
	syms = make([]Symbol, n)
	for i := range syms {
		p := rest[i*SymbolSize : (i+1)*SymbolSize]
		copy(syms[i].Sum[:], p[:32])
		syms[i].Check = binary.BigEndian.Uint64(p[32:40])
		syms[i].Count = binary.BigEndian.Uint32(p[40:44])
	}
	return int(s), syms, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// uvarint reads a minimal unsigned varint no larger than max.
func uvarint(b []byte, max uint64, what string) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, malformed("%s: bad varint", what)
	}
	if n != uvarintLen(v) {
		return 0, nil, malformed("%s: non-minimal varint", what)
	}
	if v > max {
		return 0, nil, malformed("%s: %d exceeds %d", what, v, max)
	}
	return v, b[n:], nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
