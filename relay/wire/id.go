package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/dchest/siphash"
)

// IDSize is the size of an item id on the wire.
const IDSize = 32

// ID names a transaction or a block on the wire. The relay never computes
// one itself from a chain's rules: the embedding chain says how a tx's id
// follows from its bytes (SHA-256, double SHA-256 of a stripped encoding,
// Keccak-256, ...) and how a block's id follows from its header, as long as
// the result is 32 bytes that the receiver can recompute from the body.
type ID [IDSize]byte

// String returns the id in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for logs.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zeros (the "none" value of optional ids).
func (id ID) IsZero() bool { return id == ID{} }

// ShortIDSize is the number of bytes of a compact-block short id on the wire.
// Six bytes, as in BIP152: with a pool of 100k txs and a 5k-tx block the
// chance of any collision is about 2^-19 per block, and a collision only
// costs a round trip (the receiver fetches the colliding txs by index).
const ShortIDSize = 6

// shortIDMask keeps the low ShortIDSize bytes of a SipHash output.
const shortIDMask = 1<<(8*ShortIDSize) - 1

// ShortIDKey is the SipHash-2-4 key of one compact block.
type ShortIDKey struct{ K0, K1 uint64 }

// NewShortIDKey derives the short-id key of a compact block from its header
// encoding and a nonce chosen by the announcer: SHA-256(header || nonce), the
// first 16 bytes as two little-endian words. An attacker who does not know
// the header in advance cannot grind transactions whose short ids collide.
func NewShortIDKey(header []byte, nonce uint64) ShortIDKey {
	h := sha256.New()
	h.Write(header)
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], nonce)
	h.Write(n[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return ShortIDKey{
		K0: binary.LittleEndian.Uint64(sum[0:8]),
		K1: binary.LittleEndian.Uint64(sum[8:16]),
	}
}

// ShortID returns the ShortIDSize-byte keyed short id of a transaction id,
// in the low bits of a uint64.
func (k ShortIDKey) ShortID(txID ID) uint64 {
	return siphash.Hash(k.K0, k.K1, txID[:]) & shortIDMask
}
