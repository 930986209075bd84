package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"runtime"
	"testing"
)

func TestSyncMessagesRoundTrip(t *testing.T) {
	reqs := []Request{&GetTip{}, &GetPoolIDs{Max: 1}, &GetPoolIDs{Max: MaxPoolIDsPerResponse}}
	for _, m := range reqs {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRequest(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%T round trip: %v %#v", m, err, got)
		}
	}
	resps := []Response{&Tip{Height: 1<<63 + 5, ID: hashN(3)}, &PoolIDs{}, &PoolIDs{IDs: idsN(MaxPoolIDsPerResponse)}}
	for _, m := range resps {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeResponse(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("%T round trip: %v", m, err)
		}
	}
	// The answer to a maximal listing fits a response frame.
	b, _ := (&PoolIDs{IDs: idsN(MaxPoolIDsPerResponse)}).Encode()
	if len(b) > MaxResponseFrame {
		t.Fatalf("maximal PoolIDs of %d bytes exceeds the frame cap", len(b))
	}
}

func TestSyncMessagesCaps(t *testing.T) {
	for _, m := range []Request{&GetPoolIDs{}, &GetPoolIDs{Max: MaxPoolIDsPerResponse + 1}} {
		if _, err := m.Encode(); err == nil {
			t.Errorf("encode %#v succeeded", m)
		}
	}
	if _, err := (&PoolIDs{IDs: idsN(MaxPoolIDsPerResponse + 1)}).Encode(); err == nil {
		t.Error("encode of an over-cap PoolIDs succeeded")
	}
	bad := map[string][]byte{
		"max 0":             {TagGetPoolIDs, 0},
		"max over cap":      binary.AppendUvarint([]byte{TagGetPoolIDs}, MaxPoolIDsPerResponse+1),
		"non-minimal max":   {TagGetPoolIDs, 0x81, 0x00},
		"GetTip trailing":   {TagGetTip, 0},
		"GetPoolIDs no max": {TagGetPoolIDs},
	}
	for name, b := range bad {
		if _, err := DecodeRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A PoolIDs claiming one id over the cap, with the bytes present, and
	// one claiming more ids than bytes follow: refused before allocating.
	over := binary.AppendUvarint([]byte{TagPoolIDs}, MaxPoolIDsPerResponse+1)
	over = append(over, make([]byte, 32*(MaxPoolIDsPerResponse+1))...)
	short := binary.AppendUvarint([]byte{TagPoolIDs}, 1000)
	short = append(short, make([]byte, 32*10)...)
	for name, b := range map[string][]byte{
		"over cap":     over,
		"short":        short,
		"tip short":    {TagTip, 1, 2, 3},
		"tip trailing": append((&Tip{}).mustEncode(), 0),
	} {
		if _, err := DecodeResponse(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Refusing it allocates the error, never the 1000 claimed ids (32 KB).
	// TotalAlloc counts the whole process (the race runtime and the test
	// framework allocate too), so the least of a few tries is the measure.
	least := uint64(1 << 62)
	for range 5 {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		for range 10 {
			_, _ = DecodeResponse(short)
		}
		runtime.ReadMemStats(&ms1)
		least = min(least, ms1.TotalAlloc-ms0.TotalAlloc)
	}
	if least > 8<<10 {
		t.Errorf("refusing 10 short PoolIDs allocated %d bytes", least)
	}
}

func (m *Tip) mustEncode() []byte { b, _ := m.Encode(); return b }

func FuzzDecodeSyncRequest(f *testing.F) {
	for _, m := range []Request{&GetTip{}, &GetPoolIDs{Max: 1}, &GetPoolIDs{Max: MaxPoolIDsPerResponse}} {
		f.Add(mustEncode(f, m))
	}
	f.Add([]byte{TagGetPoolIDs, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if q, ok := m.(*GetPoolIDs); ok && (q.Max == 0 || q.Max > MaxPoolIDsPerResponse) {
			t.Fatalf("GetPoolIDs max %d accepted", q.Max)
		}
		out, err := m.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}

func FuzzDecodeSyncResponse(f *testing.F) {
	for _, m := range []Response{&Tip{Height: 7, ID: hashN(1)}, &PoolIDs{}, &PoolIDs{IDs: idsN(3)}} {
		f.Add(mustEncode(f, m))
	}
	f.Add([]byte{TagPoolIDs, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if p, ok := m.(*PoolIDs); ok && len(p.IDs) > MaxPoolIDsPerResponse {
			t.Fatalf("PoolIDs of %d ids accepted", len(p.IDs))
		}
		out, err := m.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode mismatch: %v", err)
		}
	})
}
