package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// Each target checks that decoding never panics, that every failure wraps
// ErrMalformed, and that whatever decodes re-encodes to the same bytes (one
// accepted encoding per message).

func mustEncode(f testing.TB, m interface{ Encode() ([]byte, error) }) []byte {
	b, err := m.Encode()
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// checkDecoded is what a fuzz target asserts of one input b that a
// decoder turned into m or err: a failure wraps ErrMalformed, and what
// decodes re-encodes to b.
func checkDecoded(t *testing.T, b []byte, m interface{ Encode() ([]byte, error) }, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not ErrMalformed: %v", err)
		}
		return
	}
	out, err := m.Encode()
	if err != nil || !bytes.Equal(out, b) {
		t.Fatalf("re-encode mismatch: %v", err)
	}
}

func FuzzDecodeTxAnnounce(f *testing.F) {
	f.Add(mustEncode(f, &TxAnnounce{IDs: idsN(1)}))
	f.Add(mustEncode(f, &TxAnnounce{IDs: idsN(5)}))
	f.Add([]byte{TagTxAnnounce, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{TagTxAnnounce, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeTxAnnounce(b)
		checkDecoded(t, b, m, err)
	})
}

func FuzzDecodeTxPush(f *testing.F) {
	f.Add(mustEncode(f, &TxPush{Bodies: [][]byte{{1, 2, 3}}}))
	f.Add(mustEncode(f, &TxPush{Nonce: 7, Bodies: [][]byte{{1}, bytes.Repeat([]byte{9}, 300)}}))
	f.Add([]byte{TagTxPush, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{TagTxPush, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Add([]byte{TagTxPush, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeTxPush(b)
		checkDecoded(t, b, m, err)
	})
}

func FuzzDecodeBlockAnnounce(f *testing.F) {
	hdr := bytes.Repeat([]byte{3}, 176)
	f.Add(mustEncode(f, &CompactBlock{Header: hdr, Nonce: 9, ShortIDs: []uint64{1, 2, 3}}))
	f.Add(mustEncode(f, &CompactBlock{Header: hdr, ShortIDs: []uint64{1},
		Prefilled: []PrefilledTx{{Index: 0, Tx: []byte{1, 2}}, {Index: 2, Tx: []byte{3}}}}))
	f.Add(mustEncode(f, &BlockPull{Header: hdr}))
	f.Add(mustEncode(f, &BlockPush{Block: []byte("block bytes")}))
	f.Add([]byte{TagBlockCompact, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeBlockAnnounce(b)
		checkDecoded(t, b, m, err)
		if err != nil {
			return
		}
		if c, ok := m.(*CompactBlock); ok && c.TxCount() > MaxBlockTxs {
			t.Fatalf("compact block of %d txs", c.TxCount())
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	for _, m := range []Request{
		&GetTxs{IDs: idsN(2)},
		&GetBlock{ID: hashN(1)},
		&GetBlockTxn{Block: hashN(1), Indexes: []uint32{0, 7, 300}},
		&GetHeaders{Locator: idsN(2), Max: 10},
		&GetBlocks{Start: 5, Count: 3},
		&GetTxsByPrefix{Prefixes: []uint64{1, 2}},
	} {
		f.Add(mustEncode(f, m))
	}
	f.Add([]byte{TagGetBlockTxn})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeRequest(b)
		checkDecoded(t, b, m, err)
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, m := range []Response{
		&Txs{Bodies: [][]byte{{1}, nil, {2, 3}}},
		&Block{Block: []byte("b")},
		&Block{},
		&BlockTxn{Block: hashN(1), Found: true, Txs: [][]byte{{1}}},
		&Headers{Headers: [][]byte{{1}, {2}}},
		&Blocks{Blocks: [][]byte{{1}}},
		&Error{Code: ErrCodeBadRequest},
	} {
		f.Add(mustEncode(f, m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeResponse(b)
		checkDecoded(t, b, m, err)
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, []byte("x")), 16)
	f.Add(binary.AppendUvarint(nil, 1<<20), 1<<10)
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 1<<30)
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		if max <= 0 || max > MaxResponseFrame {
			max = MaxResponseFrame
		}
		p, n, err := ReadFrame(bytes.NewReader(b), max)
		if n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if err != nil {
			return
		}
		if len(p) == 0 || len(p) > max {
			t.Fatalf("payload of %d bytes with cap %d", len(p), max)
		}
		if !bytes.Equal(AppendFrame(nil, p), b[:n]) {
			t.Fatal("frame does not re-encode to its input")
		}
	})
}
