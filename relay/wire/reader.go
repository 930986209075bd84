package wire

// The hostile-input byte reader every wire decoder is built on. It follows
// the same rules as the chain's canonical encoding (minimal unsigned
// varints, counts and lengths checked against caps and against the bytes
// left before anything is allocated, no trailing bytes), but it is the
// wire's own: the relay is embedded by chains that are not rumor's toy
// chain, so nothing under relay/ imports package chain.

import (
	"encoding/binary"
	"fmt"
)

// uvarintLen is the length of v's minimal unsigned varint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// appendBlob appends v with its minimal uvarint length prefix.
func appendBlob(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// byteReader consumes a byte slice. The first error sticks and later reads
// return zero values, so a decoder can read a whole message and check once.
// Every error it makes wraps the sentinel it was made with, so callers
// tell malformed input apart with errors.Is.
type byteReader struct {
	b        []byte
	err      error
	sentinel error
}

// Malformed returns an error wrapping the reader's sentinel.
func (r *byteReader) Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", r.sentinel, fmt.Sprintf(format, args...))
}

// Fail records err unless an earlier error is recorded.
func (r *byteReader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records a malformed-input error unless an earlier one is recorded.
func (r *byteReader) Failf(format string, args ...any) { r.Fail(r.Malformed(format, args...)) }

// Err returns the first error recorded.
func (r *byteReader) Err() error { return r.err }

// Len returns the number of bytes not yet consumed.
func (r *byteReader) Len() int { return len(r.b) }

// Rest returns the bytes not yet consumed, without consuming them.
func (r *byteReader) Rest() []byte { return r.b }

// Bytes consumes n bytes and returns them (capacity capped, so appending
// to the result cannot overwrite the input).
func (r *byteReader) Bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.Failf("%s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Byte consumes one byte.
func (r *byteReader) Byte(what string) byte {
	v := r.Bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

// U64 consumes a big-endian uint64.
func (r *byteReader) U64(what string) uint64 {
	v := r.Bytes(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Uvarint consumes a minimal unsigned varint no larger than max.
func (r *byteReader) Uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Failf("%s: bad varint", what)
		return 0
	}
	if n != uvarintLen(v) {
		r.Failf("%s: non-minimal varint", what)
		return 0
	}
	if v > max {
		r.Failf("%s: %d exceeds limit %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count consumes an item count no larger than max whose items take at
// least minItem bytes each, and checks that so many items can fit in what
// is left, before the caller allocates a slice of that length.
func (r *byteReader) Count(max uint64, minItem int, what string) int {
	n := r.Uvarint(max, what)
	if r.err == nil && minItem > 0 && n > uint64(len(r.b)/minItem) {
		r.Failf("%s: %d items cannot fit in %d bytes", what, n, len(r.b))
		return 0
	}
	return int(n)
}

// Blob consumes a length-prefixed byte string of 1..max bytes, or 0..max
// when allowEmpty.
func (r *byteReader) Blob(max int, allowEmpty bool, what string) []byte {
	n := r.Uvarint(uint64(max), what+" length")
	if r.err == nil && n == 0 && !allowEmpty {
		r.Failf("%s: empty", what)
		return nil
	}
	return r.Bytes(int(n), what)
}

// Done fails on trailing bytes and returns the first error recorded.
func (r *byteReader) Done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.Failf("%s: %d trailing bytes", what, len(r.b))
	}
	return r.err
}
