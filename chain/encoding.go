package chain

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rumor-relay/rumor/chain/codec"
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

// uvarintLen is the length of v's minimal unsigned varint.
func uvarintLen(v uint64) int { return codec.UvarintLen(v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// newReader returns a reader whose errors wrap ErrMalformed.
func newReader(b []byte) codec.Reader { return codec.NewReader(b, ErrMalformed) }

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
	r := newReader(b)
	tx := readTx(&r)
	if err := r.Done("tx"); err != nil {
		return nil, err
	}
	return tx, nil
}

func readTx(r *codec.Reader) *Tx {
	tx := new(Tx)
	copy(tx.From[:], r.Bytes(AddressSize, "tx from"))
	copy(tx.To[:], r.Bytes(AddressSize, "tx to"))
	tx.Amount = r.U64("tx amount")
	tx.Fee = r.U64("tx fee")
	tx.Nonce = r.U64("tx nonce")
	n := r.Uvarint(MaxPayloadSize, "tx payload length")
	if p := r.Bytes(int(n), "tx payload"); n > 0 && p != nil {
		tx.Payload = append([]byte(nil), p...)
	}
	copy(tx.Sig[:], r.Bytes(SignatureSize, "tx signature"))
	if r.Err() != nil {
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
	r := newReader(b)
	h := readHeader(&r)
	if err := r.Done("header"); err != nil {
		return nil, err
	}
	return h, nil
}

func readHeader(r *codec.Reader) *Header {
	h := new(Header)
	h.Height = r.U64("header height")
	copy(h.Parent[:], r.Bytes(HashSize, "header parent"))
	h.Time = int64(r.U64("header time"))
	copy(h.TxRoot[:], r.Bytes(HashSize, "header tx root"))
	copy(h.Proposer[:], r.Bytes(AddressSize, "header proposer"))
	copy(h.Sig[:], r.Bytes(SignatureSize, "header signature"))
	if r.Err() != nil {
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
	r := newReader(b)
	h := readHeader(&r)
	n := r.Count(MaxBlockTxs, minTxEncoding, "block tx count")
	if err := r.Err(); err != nil {
		return nil, err
	}
	blk := &Block{Header: *h}
	if n > 0 {
		blk.Txs = make([]*Tx, 0, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		size := r.Uvarint(MaxTxSize, "block tx length")
		sub := newReader(r.Bytes(int(size), "block tx"))
		if r.Err() != nil {
			break
		}
		tx := readTx(&sub)
		if err := sub.Done("block tx"); err != nil {
			r.Fail(fmt.Errorf("block tx %d: %w", i, err))
			break
		}
		blk.Txs = append(blk.Txs, tx)
	}
	if err := r.Done("block"); err != nil {
		return nil, err
	}
	return blk, nil
}
