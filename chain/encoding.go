package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The canonical encoding. Every value has exactly one accepted encoding:
//
//	Tx     = From[32] To[32] Amount[u64] Fee[u64] Nonce[u64] uvarint(len) Payload Sig[64]
//	Header = Height[u64] Parent[32] Time[u64] TxRoot[32] Proposer[32] Sig[64]   (fixed 176 bytes)
//	Block  = Header uvarint(n) n × (uvarint(len) Tx)
//
// Integers are big-endian fixed width; lengths are minimal unsigned varints.
// Decoders reject trailing bytes, non-minimal varints and oversize lengths
// before allocating anything sized by the input.

// ErrMalformed is wrapped by every decoding error, so callers can tell a
// malformed input (penalize the sender) from other failures with errors.Is.
var ErrMalformed = errors.New("malformed encoding")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader consumes a byte slice; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail(malformed("%s: need %d bytes, have %d", what, n, len(r.b)))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u64(what string) uint64 {
	v := r.bytes(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// uvarint reads a minimal unsigned varint no larger than max.
func (r *reader) uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(malformed("%s: bad varint", what))
		return 0
	}
	if n != uvarintLen(v) {
		r.fail(malformed("%s: non-minimal varint", what))
		return 0
	}
	if v > max {
		r.fail(malformed("%s: %d exceeds limit %d", what, v, max))
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(malformed("%s: %d trailing bytes", what, len(r.b)))
	}
	return r.err
}

// Encode returns the canonical encoding of the transaction.
func (tx *Tx) Encode() []byte { return tx.AppendEncode(make([]byte, 0, tx.Size())) }

// AppendEncode appends the canonical encoding of the transaction to b.
func (tx *Tx) AppendEncode(b []byte) []byte {
	b = tx.appendUnsigned(b)
	return append(b, tx.Sig[:]...)
}

func (tx *Tx) appendUnsigned(b []byte) []byte {
	b = append(b, tx.From[:]...)
	b = append(b, tx.To[:]...)
	b = binary.BigEndian.AppendUint64(b, tx.Amount)
	b = binary.BigEndian.AppendUint64(b, tx.Fee)
	b = binary.BigEndian.AppendUint64(b, tx.Nonce)
	b = binary.AppendUvarint(b, uint64(len(tx.Payload)))
	return append(b, tx.Payload...)
}

// DecodeTx decodes a canonical transaction encoding. It checks the format
// only; signature and policy checks are ValidateTx's.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxSize {
		return nil, malformed("tx: %d bytes exceeds limit %d", len(b), MaxTxSize)
	}
	r := reader{b: b}
	tx := r.tx()
	if err := r.done("tx"); err != nil {
		return nil, err
	}
	return tx, nil
}

func (r *reader) tx() *Tx {
	tx := new(Tx)
	copy(tx.From[:], r.bytes(AddressSize, "tx from"))
	copy(tx.To[:], r.bytes(AddressSize, "tx to"))
	tx.Amount = r.u64("tx amount")
	tx.Fee = r.u64("tx fee")
	tx.Nonce = r.u64("tx nonce")
	n := r.uvarint(MaxPayloadSize, "tx payload length")
	if p := r.bytes(int(n), "tx payload"); n > 0 && p != nil {
		tx.Payload = append([]byte(nil), p...)
	}
	copy(tx.Sig[:], r.bytes(SignatureSize, "tx signature"))
	if r.err != nil {
		return nil
	}
	return tx
}

// Encode returns the canonical encoding of the header (HeaderSize bytes).
func (h *Header) Encode() []byte { return h.AppendEncode(make([]byte, 0, HeaderSize)) }

// AppendEncode appends the canonical encoding of the header to b.
func (h *Header) AppendEncode(b []byte) []byte {
	b = h.appendUnsigned(b)
	return append(b, h.Sig[:]...)
}

func (h *Header) appendUnsigned(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.Height)
	b = append(b, h.Parent[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Time))
	b = append(b, h.TxRoot[:]...)
	return append(b, h.Proposer[:]...)
}

// DecodeHeader decodes a canonical header encoding.
func DecodeHeader(b []byte) (*Header, error) {
	if len(b) != HeaderSize {
		return nil, malformed("header: want %d bytes, got %d", HeaderSize, len(b))
	}
	r := reader{b: b}
	h := r.header()
	if err := r.done("header"); err != nil {
		return nil, err
	}
	return h, nil
}

func (r *reader) header() *Header {
	h := new(Header)
	h.Height = r.u64("header height")
	copy(h.Parent[:], r.bytes(HashSize, "header parent"))
	h.Time = int64(r.u64("header time"))
	copy(h.TxRoot[:], r.bytes(HashSize, "header tx root"))
	copy(h.Proposer[:], r.bytes(AddressSize, "header proposer"))
	copy(h.Sig[:], r.bytes(SignatureSize, "header signature"))
	if r.err != nil {
		return nil
	}
	return h
}

// Encode returns the canonical encoding of the block.
func (b *Block) Encode() []byte { return b.AppendEncode(make([]byte, 0, b.Size())) }

// AppendEncode appends the canonical encoding of the block to out.
func (b *Block) AppendEncode(out []byte) []byte {
	out = b.Header.AppendEncode(out)
	out = binary.AppendUvarint(out, uint64(len(b.Txs)))
	for _, tx := range b.Txs {
		out = binary.AppendUvarint(out, uint64(tx.Size()))
		out = tx.AppendEncode(out)
	}
	return out
}

// minTxEncoding is the fewest bytes one transaction takes inside a block
// (length prefix plus an empty-payload tx); it bounds the count a decoder
// believes before allocating.
const minTxEncoding = 1 + txFixedSize + 1

// DecodeBlock decodes a canonical block encoding.
func DecodeBlock(b []byte) (*Block, error) {
	if len(b) > MaxBlockSize {
		return nil, malformed("block: %d bytes exceeds limit %d", len(b), MaxBlockSize)
	}
	r := reader{b: b}
	h := r.header()
	n := r.uvarint(MaxBlockTxs, "block tx count")
	if r.err == nil && n > uint64(len(r.b)/minTxEncoding) {
		r.fail(malformed("block: %d txs cannot fit in %d bytes", n, len(r.b)))
	}
	if r.err != nil {
		return nil, r.err
	}
	blk := &Block{Header: *h}
	if n > 0 {
		blk.Txs = make([]*Tx, 0, n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		size := r.uvarint(MaxTxSize, "block tx length")
		sub := reader{b: r.bytes(int(size), "block tx")}
		if r.err != nil {
			break
		}
		tx := sub.tx()
		if err := sub.done("block tx"); err != nil {
			r.fail(fmt.Errorf("block tx %d: %w", i, err))
			break
		}
		blk.Txs = append(blk.Txs, tx)
	}
	if err := r.done("block"); err != nil {
		return nil, err
	}
	return blk, nil
}
