package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Size limits of the wire format. They bound what a decoder will ever
// allocate; a genesis may set tighter policy limits (Params) but never looser.
const (
	// HashSize is the size of every id: SHA-256 of a canonical encoding.
	HashSize = sha256.Size
	// AddressSize is the size of an account address, an ed25519 public key.
	AddressSize = ed25519.PublicKeySize
	// SignatureSize is the size of an ed25519 signature.
	SignatureSize = ed25519.SignatureSize

	// MaxPayloadSize is the hard cap on a transaction's opaque payload. It lets
	// tests and load generators make transactions of any realistic size
	// (Ethereum's typical calldata is far below it) while keeping one tx well
	// under a GossipSub message (1 MiB).
	MaxPayloadSize = 128 << 10
	// MaxTxSize is the largest encoded transaction the decoder accepts.
	MaxTxSize = txFixedSize + 3 + MaxPayloadSize
	// MaxBlockSize is the hard cap on an encoded block (the genesis sets the
	// policy limit, by default 1 MiB like Bitcoin's legacy limit).
	MaxBlockSize = 8 << 20
	// MaxBlockTxs is the hard cap on the number of transactions in a block.
	MaxBlockTxs = MaxBlockSize / txFixedSize

	// txFixedSize is the encoded size of a transaction with an empty payload,
	// minus the one-byte payload length.
	txFixedSize = AddressSize*2 + 8*3 + SignatureSize
	// HeaderSize is the encoded size of a block header (fixed).
	HeaderSize = 8 + HashSize + 8 + HashSize + AddressSize + SignatureSize
)

// Hash is a 32-byte SHA-256 digest: the id of a transaction or block.
type Hash [HashSize]byte

// String returns the hash as lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 8 hex characters, for logs.
func (h Hash) Short() string { return hex.EncodeToString(h[:4]) }

// IsZero reports whether h is all zeros (the parent of genesis).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes the hash as hex (used by JSON).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes a 64-character hex hash, with or without 0x.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses a 64-character hex string, optionally prefixed by 0x.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("hash: want %d hex characters, got %d", 2*HashSize, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash: %w", err)
	}
	return h, nil
}

// Address is an account: the sender's or recipient's ed25519 public key.
type Address [AddressSize]byte

// String returns the address as lower-case hex.
func (a Address) String() string { return hex.EncodeToString(a[:]) }

// MarshalText encodes the address as hex (used by JSON).
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText decodes a 64-character hex address, with or without 0x.
func (a *Address) UnmarshalText(b []byte) error {
	v, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseAddress parses a 64-character hex public key, optionally prefixed by 0x.
func ParseAddress(s string) (Address, error) {
	h, err := ParseHash(s)
	if err != nil {
		return Address{}, errors.New("address: want 64 hex characters (an ed25519 public key)")
	}
	return Address(h), nil
}

// Signature is an ed25519 signature.
type Signature [SignatureSize]byte

// Tx is an account-model transfer. The signature covers every other field and
// the chain id, so a transaction cannot be replayed on another chain.
type Tx struct {
	From    Address   // sender public key; the signature must verify under it
	To      Address   // recipient
	Amount  uint64    // units transferred to To
	Fee     uint64    // units paid to the block proposer
	Nonce   uint64    // sender's sequence number, starting at 0
	Payload []byte    // opaque data, at most MaxPayloadSize (policy may lower it); nil when empty
	Sig     Signature // ed25519 over SigningBytes
}

// ID is the hash of the transaction's canonical encoding, signature included.
func (tx *Tx) ID() Hash {
	// Encode into a stack buffer: a block's worth of ids is thousands of
	// calls, and all but oversized txs fit.
	var buf [512]byte
	if tx.Size() > len(buf) {
		return sha256.Sum256(tx.Encode())
	}
	return sha256.Sum256(tx.AppendEncode(buf[:0]))
}

// Size is the length of the canonical encoding in bytes.
func (tx *Tx) Size() int { return txFixedSize + uvarintLen(uint64(len(tx.Payload))) + len(tx.Payload) }

// Cost is what the sender's balance must cover: amount plus fee. ok is false
// on overflow, which makes the transaction invalid.
func (tx *Tx) Cost() (cost uint64, ok bool) {
	c := tx.Amount + tx.Fee
	return c, c >= tx.Amount
}

// Header is a block header. Its hash is the block id.
type Header struct {
	Height   uint64    // genesis is height 0
	Parent   Hash      // id of the parent block; zero for genesis
	Time     int64     // proposer's clock, Unix milliseconds
	TxRoot   Hash      // MerkleRoot of the transaction ids
	Proposer Address   // the authority that signed the block
	Sig      Signature // ed25519 over SigningBytes, by Proposer
}

// ID is the hash of the header's canonical encoding, signature included.
func (h *Header) ID() Hash { return sha256.Sum256(h.Encode()) }

// Block is a header and its transactions, in order.
type Block struct {
	Header Header
	Txs    []*Tx
}

// ID is the block's header id.
func (b *Block) ID() Hash { return b.Header.ID() }

// TxIDs returns the ids of the block's transactions, in order.
func (b *Block) TxIDs() []Hash {
	ids := make([]Hash, len(b.Txs))
	for i, tx := range b.Txs {
		ids[i] = tx.ID()
	}
	return ids
}

// Size is the length of the block's canonical encoding in bytes.
func (b *Block) Size() int {
	n := HeaderSize + uvarintLen(uint64(len(b.Txs)))
	for _, tx := range b.Txs {
		s := tx.Size()
		n += uvarintLen(uint64(s)) + s
	}
	return n
}

// Domain-separation tags for signatures, so a tx signature can never be
// mistaken for a block signature or a signature on another chain.
const (
	txSigDomain     = "rumor/tx/v1"
	headerSigDomain = "rumor/header/v1"
)

// SigningBytes returns what the sender signs: a domain tag, the chain id and
// the encoding of every field but the signature.
func (tx *Tx) SigningBytes(chainID string) []byte {
	b := make([]byte, 0, len(txSigDomain)+len(chainID)+2+tx.Size())
	b = appendString(b, txSigDomain)
	b = appendString(b, chainID)
	return tx.appendUnsigned(b)
}

// Sign fills in the signature with key, which must belong to tx.From.
func (tx *Tx) Sign(chainID string, key ed25519.PrivateKey) {
	copy(tx.Sig[:], sign(key, tx.SigningBytes(chainID)))
}

// VerifySig reports whether the signature is From's over the transaction,
// under the chain's signature rule (see VerifyTxSigs).
func (tx *Tx) VerifySig(chainID string) bool {
	return verifySig(tx.From, tx.SigningBytes(chainID), &tx.Sig)
}

// SigningBytes returns what the proposer signs: a domain tag, the chain id and
// the header without its signature.
func (h *Header) SigningBytes(chainID string) []byte {
	b := make([]byte, 0, len(headerSigDomain)+len(chainID)+2+HeaderSize)
	b = appendString(b, headerSigDomain)
	b = appendString(b, chainID)
	return h.appendUnsigned(b)
}

// Sign fills in the signature with key, which must belong to h.Proposer.
func (h *Header) Sign(chainID string, key ed25519.PrivateKey) {
	copy(h.Sig[:], sign(key, h.SigningBytes(chainID)))
}

// VerifySig reports whether the signature is the proposer's over the
// header, under the chain's signature rule (see VerifyTxSigs).
func (h *Header) VerifySig(chainID string) bool {
	return verifySig(h.Proposer, h.SigningBytes(chainID), &h.Sig)
}

// Merkle tree domain tags (RFC 6962 style): leaves and inner nodes hash with
// different prefixes, and an odd node is promoted rather than duplicated, so
// two different id lists never share a root (Bitcoin's CVE-2012-2459).
const (
	merkleLeafTag  = 0x00
	merkleInnerTag = 0x01
)

// MerkleRoot returns the root of the binary hash tree over ids. The root of an
// empty list is the zero hash.
func MerkleRoot(ids []Hash) Hash {
	if len(ids) == 0 {
		return Hash{}
	}
	level := make([]Hash, len(ids))
	var buf [1 + 2*HashSize]byte
	for i, id := range ids {
		buf[0] = merkleLeafTag
		copy(buf[1:], id[:])
		level[i] = sha256.Sum256(buf[:1+HashSize])
	}
	for len(level) > 1 {
		next := level[:0:0]
		next = make([]Hash, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			buf[0] = merkleInnerTag
			copy(buf[1:], level[i][:])
			copy(buf[1+HashSize:], level[i+1][:])
			next = append(next, sha256.Sum256(buf[:]))
		}
		level = next
	}
	return level[0]
}
