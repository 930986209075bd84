package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestTxPrefixIsTheIDsFirstBytes(t *testing.T) {
	id := hashN(7)
	p := TxPrefix(id)
	b, err := (&TxSeen{Prefixes: []uint64{p}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[1:], id[:TxPrefixSize]) {
		t.Fatalf("prefix on the wire %x, want the id's first %d bytes %x", b[1:], TxPrefixSize, id[:TxPrefixSize])
	}
}

func TestTxSeenRoundTripAndBounds(t *testing.T) {
	m := &TxSeen{Prefixes: []uint64{1, 2, 1 << 63}}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 1+3*TxPrefixSize {
		t.Fatalf("encoded %d bytes, want %d", len(b), 1+3*TxPrefixSize)
	}
	got, err := DecodeTxSeen(b)
	if err != nil || len(got.Prefixes) != 3 || got.Prefixes[2] != 1<<63 {
		t.Fatalf("decode: %+v, %v", got, err)
	}
	if _, err := (&TxSeen{}).Encode(); err == nil {
		t.Fatal("an empty TxSeen encoded")
	}
	if _, err := (&TxSeen{Prefixes: make([]uint64, MaxSeenPrefixes+1)}).Encode(); err == nil {
		t.Fatal("an oversize TxSeen encoded")
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"tag only":     {TagTxSeen},
		"wrong tag":    append([]byte{0x02}, make([]byte, 8)...),
		"partial":      append([]byte{TagTxSeen}, make([]byte, 12)...),
		"over the cap": append([]byte{TagTxSeen}, make([]byte, (MaxSeenPrefixes+1)*TxPrefixSize)...),
	} {
		if _, err := DecodeTxSeen(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestGetTxsByPrefixRoundTrip(t *testing.T) {
	q := &GetTxsByPrefix{Prefixes: []uint64{5, 1<<64 - 1}}
	b, err := q.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := m.(*GetTxsByPrefix)
	if !ok || len(got.Prefixes) != 2 || got.Prefixes[1] != 1<<64-1 {
		t.Fatalf("decoded %#v", m)
	}
	if _, err := (&GetTxsByPrefix{Prefixes: make([]uint64, MaxTxsPerRequest+1)}).Encode(); err == nil {
		t.Fatal("an oversize GetTxsByPrefix encoded")
	}
	for name, b := range map[string][]byte{
		"no prefixes": {TagGetTxsByPrefix, 0},
		"short":       {TagGetTxsByPrefix, 1, 1, 2, 3},
		"trailing":    append(append([]byte{TagGetTxsByPrefix, 1}, make([]byte, 8)...), 0),
		"count over":  {TagGetTxsByPrefix, 0x81, 0x02},
	} {
		if _, err := DecodeRequest(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzDecodeTxSeen(f *testing.F) {
	f.Add(mustEncode(f, &TxSeen{Prefixes: []uint64{1, 2}}))
	f.Add([]byte{TagTxSeen})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeTxSeen(b)
		checkDecoded(t, b, m, err)
	})
}
