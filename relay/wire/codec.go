package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding error: the input breaks the wire
// format or one of its caps. The sender should be penalized.
var ErrMalformed = errors.New("wire: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// shortIDBytes is the on-wire size of a compact-block short id.
const shortIDBytes = ShortIDSize

// reader is the hostile-input byte reader with the wire's error sentinel and
// a few wire-specific fields.
type reader struct{ byteReader }

func newReader(b []byte) reader { return reader{byteReader{b: b, sentinel: ErrMalformed}} }

func (r *reader) hash(what string) (h ID) {
	copy(h[:], r.Bytes(IDSize, what))
	return h
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
	if r.Err() != nil || n == 0 {
		return nil
	}
	out := make([]uint32, n)
	next := uint64(0) // smallest value the next index may take
	for i := range out {
		d := r.Uvarint(limit, what)
		if r.Err() != nil {
			return nil
		}
		v := next + d
		if v >= limit {
			r.Fail(malformed("%s: index %d out of range %d", what, v, limit))
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
