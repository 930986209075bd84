package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestReconMessages: GetSymbols and Symbols round-trip, and what breaks
// their bounds is refused on both sides.
func TestReconMessages(t *testing.T) {
	key := [ReconKeySize]byte{1, 2, 3}
	for _, m := range []Request{
		&GetSymbols{Key: key, Start: 0, Count: 1},
		&GetSymbols{Key: key, Start: MaxSymbolIndex - MaxSymbolsPerRequest, Count: MaxSymbolsPerRequest},
	} {
		got, err := DecodeRequest(mustEncode(t, m))
		if err != nil || *got.(*GetSymbols) != *m.(*GetSymbols) {
			t.Fatalf("%+v: got %+v, %v", m, got, err)
		}
	}
	for _, m := range []Response{&Symbols{}, &Symbols{Batch: bytes.Repeat([]byte{7}, MaxSymbolsBatchBytes)}} {
		got, err := DecodeResponse(mustEncode(t, m))
		if err != nil || !bytes.Equal(got.(*Symbols).Batch, m.(*Symbols).Batch) {
			t.Fatalf("symbols of %d bytes: %v", len(m.(*Symbols).Batch), err)
		}
	}
	for _, m := range []*GetSymbols{{Count: 0}, {Count: MaxSymbolsPerRequest + 1}, {Start: MaxSymbolIndex, Count: 1}} {
		if _, err := m.Encode(); err == nil {
			t.Errorf("encoded %+v", m)
		}
	}
	if _, err := (&Symbols{Batch: make([]byte, MaxSymbolsBatchBytes+1)}).Encode(); err == nil {
		t.Error("encoded an oversize batch")
	}
	req := func(start, count uint64) []byte {
		b := append([]byte{TagGetSymbols}, key[:]...)
		return binary.AppendUvarint(binary.AppendUvarint(b, start), count)
	}
	bigBatch := binary.AppendUvarint([]byte{TagSymbols}, MaxSymbolsBatchBytes+1)
	for name, b := range map[string][]byte{
		"count 0":         req(0, 0),
		"count over cap":  req(0, MaxSymbolsPerRequest+1),
		"past the index":  req(MaxSymbolIndex-1, 2),
		"short key":       {TagGetSymbols, 1, 2},
		"trailing byte":   append(req(0, 1), 0),
		"batch over cap":  append(bigBatch, make([]byte, MaxSymbolsBatchBytes+1)...),
		"batch truncated": {TagSymbols, 10, 1},
	} {
		var err error
		if b[0] == TagSymbols {
			_, err = DecodeResponse(b)
		} else {
			_, err = DecodeRequest(b)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeReconMessages(f *testing.F) {
	f.Add(mustEncode(f, &GetSymbols{Count: 32}))
	f.Add(mustEncode(f, &Symbols{Batch: []byte{0, 1, 2}}))
	f.Add([]byte{TagSymbols, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m interface{ Encode() ([]byte, error) }
		var err error
		if q, qerr := DecodeRequest(b); qerr == nil {
			m = q
			if g, ok := q.(*GetSymbols); ok && (g.Count == 0 || g.Count > MaxSymbolsPerRequest || g.Start+g.Count > MaxSymbolIndex) {
				t.Fatalf("GetSymbols %+v accepted", g)
			}
		} else if r, rerr := DecodeResponse(b); rerr == nil {
			m = r
			if s, ok := r.(*Symbols); ok && len(s.Batch) > MaxSymbolsBatchBytes {
				t.Fatalf("batch of %d bytes accepted", len(s.Batch))
			}
		} else {
			if !errors.Is(qerr, ErrMalformed) || !errors.Is(rerr, ErrMalformed) {
				t.Fatalf("errors not ErrMalformed: %v, %v", qerr, rerr)
			}
			return
		}
		out, err := m.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}
