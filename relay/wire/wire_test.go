package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"
)

func hashN(i int) ID {
	var h ID
	binary.BigEndian.PutUint64(h[:], uint64(i)+1)
	h[31] = byte(i)
	return h
}

func idsN(n int) []ID {
	out := make([]ID, n)
	for i := range out {
		out[i] = hashN(i)
	}
	return out
}

func TestTxAnnounceRoundTripAndCaps(t *testing.T) {
	for _, n := range []int{1, 2, MaxAnnounceIDs} {
		m := &TxAnnounce{Nonce: uint64(n) * 0x0102030405060708, IDs: idsN(n)}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("encode %d: %v", n, err)
		}
		got, err := DecodeTxAnnounce(b)
		if err != nil {
			t.Fatalf("decode %d: %v", n, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %d differs", n)
		}
	}
	if _, err := (&TxAnnounce{IDs: idsN(MaxAnnounceIDs + 1)}).Encode(); err == nil {
		t.Fatal("encode over cap succeeded")
	}
	if _, err := (&TxAnnounce{}).Encode(); err == nil {
		t.Fatal("encode of empty batch succeeded")
	}
	// A hand-built message one id over the cap must be refused.
	nonce := make([]byte, 8)
	b := append([]byte{TagTxAnnounce}, nonce...)
	b = binary.AppendUvarint(b, MaxAnnounceIDs+1)
	for range MaxAnnounceIDs + 1 {
		b = append(b, make([]byte, 32)...)
	}
	if _, err := DecodeTxAnnounce(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("decode over cap: %v", err)
	}
	// A count that claims more ids than bytes follow.
	b = append([]byte{TagTxAnnounce}, nonce...)
	b = binary.AppendUvarint(b, 900)
	if _, err := DecodeTxAnnounce(append(b, make([]byte, 64)...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("decode short: %v", err)
	}
	// Trailing bytes and a non-minimal varint.
	ok, _ := (&TxAnnounce{IDs: idsN(1)}).Encode()
	if _, err := DecodeTxAnnounce(append(ok, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing: %v", err)
	}
	nonMin := append(append(append([]byte{TagTxAnnounce}, nonce...), 0x81, 0x00), make([]byte, 32)...)
	if _, err := DecodeTxAnnounce(nonMin); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-minimal: %v", err)
	}
}

func TestBlockAnnounceRoundTrip(t *testing.T) {
	hdr := bytes.Repeat([]byte{7}, 176)
	cases := []BlockAnnounce{
		&CompactBlock{Header: hdr, Nonce: 42},
		&CompactBlock{Header: hdr, Nonce: 1, ShortIDs: []uint64{1, 1<<48 - 1, 5}},
		&CompactBlock{Header: hdr, Nonce: 1, ShortIDs: []uint64{9},
			Prefilled: []PrefilledTx{{Index: 0, Tx: []byte("a")}, {Index: 2, Tx: []byte("bb")}}},
		&BlockPull{Header: hdr},
		&BlockPush{Block: []byte("a block")},
	}
	for i, m := range cases {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("case %d encode: %v", i, err)
		}
		got, err := DecodeBlockAnnounce(b)
		if err != nil {
			t.Fatalf("case %d decode: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("case %d: got %#v want %#v", i, got, m)
		}
	}
	// Prefilled index beyond the block's tx count.
	bad := &CompactBlock{Header: hdr, ShortIDs: []uint64{1}, Prefilled: []PrefilledTx{{Index: 2, Tx: []byte("x")}}}
	if _, err := bad.Encode(); err == nil {
		t.Fatal("encode with out-of-range prefilled index succeeded")
	}
	// Unknown tag, empty input, oversize header.
	for _, b := range [][]byte{nil, {0x55}, append([]byte{TagBlockPull, 0x81, 0x08}, make([]byte, MaxHeaderBytes+1)...)} {
		if _, err := DecodeBlockAnnounce(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode %x: %v", b[:min(len(b), 4)], err)
		}
	}
	// A short-id count larger than the bytes that follow must fail before
	// allocating MaxBlockTxs entries.
	b := []byte{TagBlockCompact, 1, 0xAA}
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.AppendUvarint(b, MaxBlockTxs)
	if _, err := DecodeBlockAnnounce(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge short id count: %v", err)
	}
}

func TestRequestResponseRoundTrip(t *testing.T) {
	reqs := []Request{
		&GetTxs{IDs: idsN(3)},
		&GetTxs{IDs: idsN(MaxTxsPerRequest)},
		&GetBlock{ID: hashN(9)},
		&GetBlockTxn{Block: hashN(1), Indexes: []uint32{0, 1, 5, 1000, MaxBlockTxs - 1}},
		&GetHeaders{Locator: idsN(MaxLocatorIDs), Stop: hashN(3), Max: MaxHeadersPerResponse},
		&GetBlocks{Start: 1 << 40, Count: MaxBlocksPerRange},
	}
	for i, m := range reqs {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("req %d encode: %v", i, err)
		}
		if len(b) > MaxRequestFrame {
			t.Fatalf("req %d: %d bytes over MaxRequestFrame", i, len(b))
		}
		got, err := DecodeRequest(b)
		if err != nil {
			t.Fatalf("req %d decode: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("req %d: got %#v want %#v", i, got, m)
		}
	}
	resps := []Response{
		&Txs{Bodies: [][]byte{[]byte("a"), nil, []byte("ccc")}},
		&Txs{},
		&Block{Block: []byte("blk")},
		&Block{},
		&BlockTxn{Block: hashN(2), Found: true, Txs: [][]byte{[]byte("x"), []byte("y")}},
		&BlockTxn{Block: hashN(2)},
		&Headers{Headers: [][]byte{[]byte("h1"), []byte("h2")}},
		&Blocks{Blocks: [][]byte{[]byte("b1")}},
		&Error{Code: ErrCodeBusy},
	}
	for i, m := range resps {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("resp %d encode: %v", i, err)
		}
		got, err := DecodeResponse(b)
		if err != nil {
			t.Fatalf("resp %d decode: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("resp %d: got %#v want %#v", i, got, m)
		}
	}
	// Caps: one over each count limit fails to encode.
	if _, err := (&GetTxs{IDs: idsN(MaxTxsPerRequest + 1)}).Encode(); err == nil {
		t.Fatal("GetTxs over cap encoded")
	}
	if _, err := (&GetBlocks{Count: MaxBlocksPerRange + 1}).Encode(); err == nil {
		t.Fatal("GetBlocks over cap encoded")
	}
	if _, err := (&GetBlockTxn{Indexes: []uint32{3, 3}}).Encode(); err == nil {
		t.Fatal("GetBlockTxn with repeated index encoded")
	}
	// Hand-built GetBlocks asking for 2^32 blocks is refused by the decoder.
	b := []byte{TagGetBlocks}
	b = binary.BigEndian.AppendUint64(b, 0)
	b = binary.AppendUvarint(b, 1<<32)
	if _, err := DecodeRequest(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("GetBlocks 2^32: %v", err)
	}
}

func TestFrameCap(t *testing.T) {
	var buf bytes.Buffer
	if _, err := WriteFrame(&buf, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	p, n, err := ReadFrame(&buf, 5)
	if err != nil || string(p) != "hello" || n != 6 {
		t.Fatalf("read: %q %d %v", p, n, err)
	}
	// Exactly at the cap is fine, one byte over is refused.
	buf.Reset()
	_, _ = WriteFrame(&buf, bytes.Repeat([]byte{1}, 100))
	if _, _, err := ReadFrame(bytes.NewReader(buf.Bytes()), 100); err != nil {
		t.Fatalf("at cap: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(buf.Bytes()), 99); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over cap: %v", err)
	}
	// Truncated payload.
	if _, _, err := ReadFrame(bytes.NewReader(buf.Bytes()[:50]), 100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	// Empty frame and non-minimal prefix.
	if _, _, err := ReadFrame(bytes.NewReader([]byte{0}), 10); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{0x81, 0}), 10); !errors.Is(err, ErrMalformed) {
		t.Fatalf("non-minimal: %v", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(bytes.Repeat([]byte{0xff}, 8)), 1<<40); !errors.Is(err, ErrMalformed) {
		t.Fatalf("long prefix: %v", err)
	}
}

// TestFrameOverCapNoAllocation checks that a frame claiming one byte over the
// cap is refused before its claimed size is allocated, and that a frame at
// the cap whose sender stalls costs only frameChunk of memory.
func TestFrameOverCapNoAllocation(t *testing.T) {
	const cap = MaxResponseFrame
	over := binary.AppendUvarint(nil, cap+1)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := ReadFrame(bytes.NewReader(over), cap); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("over cap: %v", err)
		}
	})
	if allocs > 10 { // the error value and its message, never the claimed size
		t.Fatalf("%v allocations refusing an oversize frame", allocs)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	for range 10 {
		_, _, _ = ReadFrame(bytes.NewReader(over), cap)
	}
	runtime.ReadMemStats(&ms1)
	if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 64<<10 {
		t.Fatalf("refusing 10 oversize frames allocated %d bytes", d)
	}
	// At the cap but only 10 bytes delivered: at most one chunk allocated.
	atCap := append(binary.AppendUvarint(nil, cap), make([]byte, 10)...)
	runtime.ReadMemStats(&ms0)
	if _, _, err := ReadFrame(bytes.NewReader(atCap), cap); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stalled frame: %v", err)
	}
	runtime.ReadMemStats(&ms1)
	if d := ms1.TotalAlloc - ms0.TotalAlloc; d > 2*frameChunk {
		t.Fatalf("stalled frame claiming %d bytes allocated %d", cap, d)
	}
}
