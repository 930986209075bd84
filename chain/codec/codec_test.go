package codec

import (
	"encoding/binary"
	"errors"
	"testing"
)

var errTest = errors.New("test: malformed")

func TestReaderRules(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		read func(r *Reader)
		ok   bool
	}{
		{"minimal varint", []byte{0x7f}, func(r *Reader) { r.Uvarint(1<<20, "v") }, true},
		{"non-minimal varint", []byte{0x81, 0x00}, func(r *Reader) { r.Uvarint(1<<20, "v") }, false},
		{"varint over max", binary.AppendUvarint(nil, 300), func(r *Reader) { r.Uvarint(299, "v") }, false},
		{"varint at max", binary.AppendUvarint(nil, 299), func(r *Reader) { r.Uvarint(299, "v") }, true},
		{"truncated varint", []byte{0x80}, func(r *Reader) { r.Uvarint(1<<20, "v") }, false},
		{"count fits", append(binary.AppendUvarint(nil, 2), 1, 2, 3, 4), func(r *Reader) { r.Count(10, 2, "n"); r.Bytes(4, "items") }, true},
		{"count cannot fit", append(binary.AppendUvarint(nil, 3), 1, 2, 3, 4), func(r *Reader) { r.Count(10, 2, "n") }, false},
		{"empty blob refused", []byte{0}, func(r *Reader) { r.Blob(8, false, "b") }, false},
		{"empty blob allowed", []byte{0}, func(r *Reader) { r.Blob(8, true, "b") }, true},
		{"blob over max", append([]byte{9}, make([]byte, 9)...), func(r *Reader) { r.Blob(8, false, "b") }, false},
		{"trailing byte", []byte{1, 2}, func(r *Reader) { r.Byte("x") }, false},
		{"short read", []byte{1, 2, 3}, func(r *Reader) { r.U64("x") }, false},
	}
	for _, c := range cases {
		r := NewReader(c.in, errTest)
		c.read(&r)
		err := r.Done(c.name)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, errTest) {
			t.Errorf("%s: got %v, want an error wrapping the sentinel", c.name, err)
		}
	}
}

func TestReaderErrorSticksAndBytesAreCapped(t *testing.T) {
	r := NewReader([]byte{1, 2, 3, 4}, errTest)
	b := r.Bytes(2, "head")
	if cap(b) != 2 {
		t.Fatalf("returned slice has capacity %d: appending would overwrite the input", cap(b))
	}
	r.Bytes(5, "too much")
	first := r.Err()
	if first == nil || r.Byte("after") != 0 || r.Err() != first {
		t.Fatal("the first error did not stick")
	}
	for v := uint64(0); v < 1<<21; v = v*3 + 1 {
		if got := UvarintLen(v); got != len(binary.AppendUvarint(nil, v)) {
			t.Fatalf("UvarintLen(%d) = %d", v, got)
		}
	}
}
