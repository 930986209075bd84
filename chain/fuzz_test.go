package chain

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// The fuzz targets prove the canonical-encoding properties on arbitrary
// input: every b that decodes re-encodes to exactly b (one encoding per
// value), decoding that again gives the same value (decode(encode(x)) ==
// x), Size agrees with the encoding, and every failure is a typed
// ErrMalformed. Seeds are valid encodings plus a few near misses; crashers
// found are kept under testdata/fuzz/<FuzzName>.

func FuzzDecodeTx(f *testing.F) {
	for _, tx := range sampleTxs() {
		enc := tx.Encode()
		if len(enc) > 4096 {
			continue // keep the seed corpus small; the fuzzer grows payloads
		}
		f.Add(enc)
		f.Add(append(enc, 0))
		f.Add(enc[:len(enc)-1])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc := tx.Encode()
		if !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b\n b  %x\n re %x", b, enc)
		}
		if tx.Size() != len(b) {
			t.Fatalf("Size %d, input %d", tx.Size(), len(b))
		}
		again, err := DecodeTx(enc)
		if err != nil || !reflect.DeepEqual(again, tx) {
			t.Fatalf("decode(encode(x)) != x: %v", err)
		}
		if tx.Payload != nil && len(tx.Payload) == 0 {
			t.Fatal("empty payload decoded as non-nil")
		}
	})
}

// FuzzTxRoundTrip builds transactions from fuzzed fields (not bytes), so
// decode(encode(x)) == x is checked for values, including ones whose
// encoding the byte fuzzer is unlikely to hit.
func FuzzTxRoundTrip(f *testing.F) {
	f.Add([]byte{1}, []byte{2}, uint64(1), uint64(2), uint64(3), []byte(nil), []byte{9})
	f.Add([]byte{}, []byte{}, ^uint64(0), ^uint64(0), ^uint64(0), bytes.Repeat([]byte{7}, 200), []byte{})
	f.Fuzz(func(t *testing.T, from, to []byte, amount, fee, nonce uint64, payload, sig []byte) {
		if len(payload) > MaxPayloadSize {
			payload = payload[:MaxPayloadSize]
		}
		if len(payload) == 0 {
			payload = nil
		}
		tx := &Tx{Amount: amount, Fee: fee, Nonce: nonce, Payload: payload}
		copy(tx.From[:], from)
		copy(tx.To[:], to)
		copy(tx.Sig[:], sig)
		dec, err := DecodeTx(tx.Encode())
		if err != nil || !reflect.DeepEqual(dec, tx) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	for _, b := range sampleBlocks(f) {
		f.Add(b.Header.Encode())
	}
	f.Add(make([]byte, HeaderSize-1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc := h.Encode()
		if !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b")
		}
		again, err := DecodeHeader(enc)
		if err != nil || *again != *h {
			t.Fatalf("decode(encode(x)) != x: %v", err)
		}
	})
}

func FuzzDecodeBlock(f *testing.F) {
	for _, b := range sampleBlocks(f) {
		enc := b.Encode()
		if len(enc) > 4096 {
			continue
		}
		f.Add(enc)
		f.Add(append(enc, 0))
	}
	g := testGenesis(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := DecodeBlock(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		enc := blk.Encode()
		if !bytes.Equal(enc, b) {
			t.Fatalf("encode(decode(b)) != b\n b  %x\n re %x", b, enc)
		}
		if blk.Size() != len(b) {
			t.Fatalf("Size %d, input %d", blk.Size(), len(b))
		}
		again, err := DecodeBlock(enc)
		if err != nil || !reflect.DeepEqual(again, blk) {
			t.Fatalf("decode(encode(x)) != x: %v", err)
		}
		if blk.Txs != nil && len(blk.Txs) == 0 {
			t.Fatal("empty tx list decoded as non-nil")
		}
		// Validation of hostile input never panics.
		_ = g.CheckBody(blk, nil)
		_ = g.CheckBlock(blk, &Header{Height: blk.Header.Height - 1}, testNow)
	})
}
