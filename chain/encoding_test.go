package chain

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"runtime"
	"testing"
)

// sampleTxs covers payload lengths around the varint boundaries.
func sampleTxs() []*Tx {
	var out []*Tx
	for i, n := range []int{0, 1, 127, 128, 300, 16383, 16384, MaxPayloadSize} {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(j * 7)
		}
		if n == 0 {
			p = nil
		}
		out = append(out, signedTx(i%4, (i+1)%4, uint64(i)*1000, uint64(i+1), uint64(i), p))
	}
	out = append(out, &Tx{Amount: math.MaxUint64, Fee: math.MaxUint64, Nonce: math.MaxUint64})
	return out
}

func sampleBlocks(t testing.TB) []*Block {
	g := testGenesis(t)
	gen := g.Block()
	txs := sampleTxs()
	b1 := child(g, &gen.Header, txs[:4]...)
	b2 := child(g, &b1.Header)
	b3 := child(g, &b2.Header, txs[4], txs[0])
	return []*Block{gen, b1, b2, b3}
}

func TestTxRoundTrip(t *testing.T) {
	for _, tx := range sampleTxs() {
		enc := tx.Encode()
		if len(enc) != tx.Size() {
			t.Fatalf("Size %d, encoding %d", tx.Size(), len(enc))
		}
		dec, err := DecodeTx(enc)
		if err != nil {
			t.Fatalf("payload %d: %v", len(tx.Payload), err)
		}
		if !reflect.DeepEqual(dec, tx) || dec.ID() != tx.ID() {
			t.Fatalf("payload %d: round trip differs", len(tx.Payload))
		}
	}
	// An empty non-nil payload encodes like nil and decodes to nil.
	tx := &Tx{Payload: []byte{}}
	dec, err := DecodeTx(tx.Encode())
	if err != nil || dec.Payload != nil {
		t.Fatalf("empty payload: %v %v", err, dec.Payload)
	}
}

func TestBlockRoundTrip(t *testing.T) {
	for _, b := range sampleBlocks(t) {
		enc := b.Encode()
		if len(enc) != b.Size() {
			t.Fatalf("Size %d, encoding %d", b.Size(), len(enc))
		}
		dec, err := DecodeBlock(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dec, b) {
			t.Fatalf("block %d: round trip differs", b.Header.Height)
		}
		h, err := DecodeHeader(b.Header.Encode())
		if err != nil || *h != b.Header {
			t.Fatalf("header round trip: %v", err)
		}
	}
}

func TestDecodeRejectsNonMinimalVarints(t *testing.T) {
	// Tx: payload length 0 written as two bytes (0x80 0x00).
	tx := signedTx(0, 1, 1, 1, 0, nil)
	enc := tx.Encode()
	at := 2*AddressSize + 24
	bad := append(append(append([]byte{}, enc[:at]...), 0x80, 0x00), enc[at+1:]...)
	wantMalformed(t, "tx payload length", bad, func(b []byte) error { _, err := DecodeTx(b); return err })

	// Tx: payload length 5 written as 0x85 0x00.
	tx5 := signedTx(0, 1, 1, 1, 0, []byte("abcde"))
	enc = tx5.Encode()
	bad = append(append(append([]byte{}, enc[:at]...), 0x85, 0x00), enc[at+1:]...)
	wantMalformed(t, "tx payload length 5", bad, func(b []byte) error { _, err := DecodeTx(b); return err })

	blk := sampleBlocks(t)[1]
	enc = blk.Encode()
	decodeBlock := func(b []byte) error { _, err := DecodeBlock(b); return err }
	// Block: tx count 4 written as 0x84 0x00.
	bad = append(append(append([]byte{}, enc[:HeaderSize]...), 0x84, 0x00), enc[HeaderSize+1:]...)
	wantMalformed(t, "block tx count", bad, decodeBlock)
	// Block: first tx length (169 bytes: a two-byte varint) written with a
	// redundant third byte.
	l := uint64(blk.Txs[0].Size())
	var lb []byte
	lb = binary.AppendUvarint(lb, l)
	red := append([]byte{}, lb...)
	red[len(red)-1] |= 0x80
	red = append(red, 0x00)
	bad = append(append(append([]byte{}, enc[:HeaderSize+1]...), red...), enc[HeaderSize+1+len(lb):]...)
	wantMalformed(t, "block tx length", bad, decodeBlock)
	// Unterminated and overlong (more than 10 bytes) varints.
	wantMalformed(t, "unterminated", append(append([]byte{}, enc[:HeaderSize]...), 0x80), decodeBlock)
	wantMalformed(t, "overlong", append(append([]byte{}, enc[:HeaderSize]...), bytes.Repeat([]byte{0xff}, 11)...), decodeBlock)
}

func TestDecodeRejectsTrailingAndTruncated(t *testing.T) {
	decTx := func(b []byte) error { _, err := DecodeTx(b); return err }
	decHdr := func(b []byte) error { _, err := DecodeHeader(b); return err }
	decBlk := func(b []byte) error { _, err := DecodeBlock(b); return err }
	tx := signedTx(0, 1, 1, 1, 0, []byte("payload"))
	blk := sampleBlocks(t)[3]
	for _, c := range []struct {
		name string
		enc  []byte
		dec  func([]byte) error
	}{{"tx", tx.Encode(), decTx}, {"header", blk.Header.Encode(), decHdr}, {"block", blk.Encode(), decBlk}} {
		wantMalformed(t, c.name+" trailing", append(append([]byte{}, c.enc...), 0), c.dec)
		for _, cut := range []int{0, 1, len(c.enc) / 2, len(c.enc) - 1} {
			wantMalformed(t, c.name+" truncated", c.enc[:cut], c.dec)
		}
	}
	// A tx inside a block whose length prefix claims one byte more than
	// the tx (trailing byte inside the tx frame).
	b := &Block{Header: blk.Header}
	enc := b.Encode()
	enc[HeaderSize] = 1 // one tx
	inner := tx.Encode()
	enc = binary.AppendUvarint(enc, uint64(len(inner)+1))
	enc = append(append(enc, inner...), 0)
	wantMalformed(t, "tx frame trailing", enc, decBlk)
}

// TestDecodeRejectsOversizeBeforeAllocating checks that lengths and counts
// claimed by the input are bounded before anything is allocated for them:
// a short input claiming a huge payload or tx count costs almost nothing.
func TestDecodeRejectsOversizeBeforeAllocating(t *testing.T) {
	decTx := func(b []byte) error { _, err := DecodeTx(b); return err }
	decBlk := func(b []byte) error { _, err := DecodeBlock(b); return err }
	prefix := make([]byte, 2*AddressSize+24)
	claim := func(n uint64) []byte { return binary.AppendUvarint(append([]byte{}, prefix...), n) }

	cases := []struct {
		name string
		in   []byte
		dec  func([]byte) error
	}{
		{"payload over cap", claim(MaxPayloadSize + 1), decTx},
		{"payload 2^63", claim(1 << 63), decTx},
		{"payload at cap, no data", claim(MaxPayloadSize), decTx},
		{"tx over MaxTxSize", make([]byte, MaxTxSize+1), decTx},
		{"block count over cap", binary.AppendUvarint(make([]byte, HeaderSize), MaxBlockTxs+1), decBlk},
		{"block count at cap, no data", binary.AppendUvarint(make([]byte, HeaderSize), MaxBlockTxs), decBlk},
		{"block tx length over cap", binary.AppendUvarint(binary.AppendUvarint(make([]byte, HeaderSize), 1), MaxTxSize+1), decBlk},
		{"block over MaxBlockSize", make([]byte, MaxBlockSize+1), decBlk},
	}
	for _, c := range cases {
		wantMalformed(t, c.name, c.in, c.dec)
		// Allocation budget: error formatting only, far below the claim.
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		const runs = 100
		for range runs {
			_ = c.dec(c.in)
		}
		runtime.ReadMemStats(&m1)
		if per := (m1.TotalAlloc - m0.TotalAlloc) / runs; per > 2048 {
			t.Errorf("%s: %d bytes allocated per decode", c.name, per)
		}
	}
}

func TestDecodeHeaderSize(t *testing.T) {
	for _, n := range []int{0, HeaderSize - 1, HeaderSize + 1} {
		wantMalformed(t, "header size", make([]byte, n), func(b []byte) error { _, err := DecodeHeader(b); return err })
	}
	if _, err := DecodeHeader(make([]byte, HeaderSize)); err != nil {
		t.Fatalf("all-zero header: %v", err)
	}
}

func wantMalformed(t *testing.T, name string, b []byte, dec func([]byte) error) {
	t.Helper()
	err := dec(b)
	if err == nil {
		t.Fatalf("%s: decoded", name)
	}
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("%s: error %v does not wrap ErrMalformed", name, err)
	}
	if r, ok := ReasonOf(err); !ok || r != ReasonMalformed {
		t.Fatalf("%s: ReasonOf = %v", name, r)
	}
}
