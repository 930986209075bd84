package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rumor-relay/rumor/chain"
)

// ErrMalformed is wrapped by every decoding error: the input breaks the wire
// format or one of its caps. The sender should be penalized.
var ErrMalformed = errors.New("wire: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// shortIDBytes is the on-wire size of a compact-block short id.
const shortIDBytes = chain.ShortIDSize

// uvarintLen is the length of v's minimal unsigned varint.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// reader consumes a byte slice; the first error sticks and later reads
// return zero values, so decoders can read a whole message and check once.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail(malformed("%s: need %d bytes, have %d", what, n, len(r.b)))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1(what string) byte {
	v := r.bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u64(what string) uint64 {
	v := r.bytes(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) hash(what string) (h chain.Hash) {
	copy(h[:], r.bytes(chain.HashSize, what))
	return h
}

// uvarint reads a minimal unsigned varint no larger than max.
func (r *reader) uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(malformed("%s: bad varint", what))
		return 0
	}
	if n != uvarintLen(v) {
		r.fail(malformed("%s: non-minimal varint", what))
		return 0
	}
	if v > max {
		r.fail(malformed("%s: %d exceeds limit %d", what, v, max))
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an item count no larger than max whose items take at least
// minItem bytes each, and checks that many items can fit in what is left
// before the caller allocates a slice of that length.
func (r *reader) count(max uint64, minItem int, what string) int {
	n := r.uvarint(max, what)
	if r.err == nil && minItem > 0 && n > uint64(len(r.b)/minItem) {
		r.fail(malformed("%s: %d items cannot fit in %d bytes", what, n, len(r.b)))
		return 0
	}
	return int(n)
}

// blob reads a length-prefixed byte string of 1..max bytes (or 0..max when
// allowEmpty).
func (r *reader) blob(max int, allowEmpty bool, what string) []byte {
	n := r.uvarint(uint64(max), what+" length")
	if r.err == nil && n == 0 && !allowEmpty {
		r.fail(malformed("%s: empty", what))
		return nil
	}
	return r.bytes(int(n), what)
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(malformed("%s: %d trailing bytes", what, len(r.b)))
	}
	return r.err
}

func appendBlob(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// appendIndexes differentially encodes a strictly increasing index list.
func appendIndexes(b []byte, idx []uint32) []byte {
	prev := int64(-1)
	for _, i := range idx {
		b = binary.AppendUvarint(b, uint64(int64(i)-prev-1))
		prev = int64(i)
	}
	return b
}

// indexes decodes n differentially encoded, strictly increasing indexes, each
// below limit.
func (r *reader) indexes(n int, limit uint64, what string) []uint32 {
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]uint32, n)
	next := uint64(0) // smallest value the next index may take
	for i := range out {
		d := r.uvarint(limit, what)
		if r.err != nil {
			return nil
		}
		v := next + d
		if v >= limit {
			r.fail(malformed("%s: index %d out of range %d", what, v, limit))
			return nil
		}
		out[i] = uint32(v)
		next = v + 1
	}
	return out
}

// checkIndexes reports whether idx is strictly increasing and below limit,
// the precondition of appendIndexes.
func checkIndexes(idx []uint32, limit int) error {
	for i, v := range idx {
		if int64(v) >= int64(limit) || (i > 0 && v <= idx[i-1]) {
			return fmt.Errorf("wire: indexes must be strictly increasing and below %d", limit)
		}
	}
	return nil
}
