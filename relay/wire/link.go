package wire

import (
	"encoding/binary"
	"fmt"
)

// The tx inventory messages of the link protocol (relay Config.TxMode
// "link"): a node tells each of its tx mesh peers, on one long-lived stream
// per peer, which txs it holds, by the first TxPrefixSize bytes of their
// ids; a peer that lacks one asks for it by that prefix (GetTxsByPrefix,
// on the request protocol) and checks the body it gets against it.
//
// Why 8 bytes: whoever wants a tx of theirs to shadow someone else's must
// find a body whose id starts with the same 8 bytes, 2^64 hashes; two of
// one's own txs sharing a prefix (2^32) only keeps one of them from
// spreading by announcement (reconciliation still carries it, by full id).
// Among honest txs, a pool of 10^6 has a 3·10^-8 chance of any shared
// prefix.

// TxPrefixSize is the size of a tx id prefix on the link protocol.
const TxPrefixSize = 8

// Tags of the link protocol's messages and of its request.
const (
	TagTxSeen         byte = 0x01 // TxSeen, on the link protocol
	TagGetTxsByPrefix byte = 0x09 // GetTxsByPrefix, on the request protocol; answered by Txs
)

// MaxSeenPrefixes caps the prefixes of one TxSeen message: as many as a
// TxAnnounce carries (MaxAnnounceIDs), 8 KB.
const MaxSeenPrefixes = MaxAnnounceIDs

// MaxTxSeenBytes is the largest encoded TxSeen message.
const MaxTxSeenBytes = 1 + MaxSeenPrefixes*TxPrefixSize

// TxPrefix returns the prefix of id that the link protocol carries, as a
// number (the first TxPrefixSize bytes, big-endian).
func TxPrefix(id ID) uint64 { return binary.BigEndian.Uint64(id[:TxPrefixSize]) }

// TxSeen tells a peer which txs the sender holds and can serve.
//
//	TxSeen = 0x01 n×prefix[8]       1 <= n <= MaxSeenPrefixes (n from the length)
type TxSeen struct {
	Prefixes []uint64
}

// Encode returns the message.
func (m *TxSeen) Encode() ([]byte, error) {
	if len(m.Prefixes) == 0 || len(m.Prefixes) > MaxSeenPrefixes {
		return nil, fmt.Errorf("wire: TxSeen of %d prefixes (want 1..%d)", len(m.Prefixes), MaxSeenPrefixes)
	}
	b := make([]byte, 0, 1+len(m.Prefixes)*TxPrefixSize)
	b = append(b, TagTxSeen)
	for _, p := range m.Prefixes {
		b = binary.BigEndian.AppendUint64(b, p)
	}
	return b, nil
}

// DecodeTxSeen decodes a TxSeen message.
func DecodeTxSeen(b []byte) (*TxSeen, error) {
	switch {
	case len(b) == 0 || b[0] != TagTxSeen:
		return nil, malformed("TxSeen: bad tag")
	case len(b) > MaxTxSeenBytes:
		return nil, malformed("TxSeen: %d bytes, cap %d", len(b), MaxTxSeenBytes)
	case len(b) == 1 || (len(b)-1)%TxPrefixSize != 0:
		return nil, malformed("TxSeen: %d bytes of prefixes, want a positive multiple of %d", len(b)-1, TxPrefixSize)
	}
	m := &TxSeen{Prefixes: make([]uint64, (len(b)-1)/TxPrefixSize)}
	for i := range m.Prefixes {
		m.Prefixes[i] = binary.BigEndian.Uint64(b[1+i*TxPrefixSize:])
	}
	return m, nil
}

// GetTxsByPrefix asks for transaction bodies by the prefixes of their ids
// that the server announced in TxSeen. It is answered by Txs: Bodies[i]
// answers Prefixes[i] (nil when the server holds no tx of that prefix),
// cut at TxResponseSoftBytes like a GetTxs answer.
//
//	GetTxsByPrefix = 0x09 uvarint(n) n×prefix[8]     1 <= n <= MaxTxsPerRequest
type GetTxsByPrefix struct {
	Prefixes []uint64
}

// Tag implements Request.
func (m *GetTxsByPrefix) Tag() byte { return TagGetTxsByPrefix }

// Encode implements Request.
func (m *GetTxsByPrefix) Encode() ([]byte, error) {
	if len(m.Prefixes) == 0 || len(m.Prefixes) > MaxTxsPerRequest {
		return nil, fmt.Errorf("wire: GetTxsByPrefix of %d prefixes (want 1..%d)", len(m.Prefixes), MaxTxsPerRequest)
	}
	b := make([]byte, 0, 3+len(m.Prefixes)*TxPrefixSize)
	b = append(b, TagGetTxsByPrefix)
	b = binary.AppendUvarint(b, uint64(len(m.Prefixes)))
	for _, p := range m.Prefixes {
		b = binary.BigEndian.AppendUint64(b, p)
	}
	return b, nil
}

func decodeGetTxsByPrefix(r *reader) *GetTxsByPrefix {
	n := r.Count(MaxTxsPerRequest, TxPrefixSize, "GetTxsByPrefix count")
	if r.Err() == nil && n == 0 {
		r.Fail(malformed("GetTxsByPrefix: no prefixes"))
	}
	if r.Err() != nil {
		return nil
	}
	q := &GetTxsByPrefix{Prefixes: make([]uint64, n)}
	for i := range q.Prefixes {
		q.Prefixes[i] = r.U64("GetTxsByPrefix prefix")
	}
	return q
}
