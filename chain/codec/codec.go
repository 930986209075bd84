// Package codec holds the byte reader that every rumor decoder of hostile
// input is built on: the chain's canonical encoding and the relay's wire
// messages. It enforces the rules they share: minimal unsigned varints,
// lengths and counts checked against caps and against the bytes actually
// left before anything is allocated, and no trailing bytes.
//
// A Reader is a value owned by one goroutine; it never copies or retains
// more than the slice it was given.
package codec

import (
	"encoding/binary"
	"fmt"
)

// UvarintLen is the length of v's minimal unsigned varint encoding.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendBlob appends v with its minimal uvarint length prefix.
func AppendBlob(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Reader consumes a byte slice. The first error sticks and later reads
// return zero values, so a decoder can read a whole message and check once.
// Every error it makes wraps the sentinel given to NewReader, so callers
// tell malformed input apart with errors.Is.
type Reader struct {
	b        []byte
	err      error
	sentinel error
}

// NewReader returns a reader over b whose errors wrap sentinel.
func NewReader(b []byte, sentinel error) Reader {
	return Reader{b: b, sentinel: sentinel}
}

// Malformed returns an error wrapping the reader's sentinel.
func (r *Reader) Malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", r.sentinel, fmt.Sprintf(format, args...))
}

// Fail records err unless an earlier error is recorded.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records a malformed-input error unless an earlier one is recorded.
func (r *Reader) Failf(format string, args ...any) { r.Fail(r.Malformed(format, args...)) }

// Err returns the first error recorded.
func (r *Reader) Err() error { return r.err }

// Len returns the number of bytes not yet consumed.
func (r *Reader) Len() int { return len(r.b) }

// Rest returns the bytes not yet consumed, without consuming them.
func (r *Reader) Rest() []byte { return r.b }

// Bytes consumes n bytes and returns them (capacity capped, so appending
// to the result cannot overwrite the input).
func (r *Reader) Bytes(n int, what string) []byte {
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
func (r *Reader) Byte(what string) byte {
	v := r.Bytes(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

// U64 consumes a big-endian uint64.
func (r *Reader) U64(what string) uint64 {
	v := r.Bytes(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// Uvarint consumes a minimal unsigned varint no larger than max.
func (r *Reader) Uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Failf("%s: bad varint", what)
		return 0
	}
	if n != UvarintLen(v) {
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
func (r *Reader) Count(max uint64, minItem int, what string) int {
	n := r.Uvarint(max, what)
	if r.err == nil && minItem > 0 && n > uint64(len(r.b)/minItem) {
		r.Failf("%s: %d items cannot fit in %d bytes", what, n, len(r.b))
		return 0
	}
	return int(n)
}

// Blob consumes a length-prefixed byte string of 1..max bytes, or 0..max
// when allowEmpty.
func (r *Reader) Blob(max int, allowEmpty bool, what string) []byte {
	n := r.Uvarint(uint64(max), what+" length")
	if r.err == nil && n == 0 && !allowEmpty {
		r.Failf("%s: empty", what)
		return nil
	}
	return r.Bytes(int(n), what)
}

// Done fails on trailing bytes and returns the first error recorded.
func (r *Reader) Done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.Failf("%s: %d trailing bytes", what, len(r.b))
	}
	return r.err
}
