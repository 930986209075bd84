package wire

import (
	"encoding/binary"
	"fmt"
)

// Tags of the sync messages (package relay/syncer): tip exchange and pool
// id listing. They share the request protocol with the fetch messages.
const (
	TagGetTip     byte = 0x06 // GetTip
	TagGetPoolIDs byte = 0x07 // GetPoolIDs

	TagTip     byte = 0x86 // Tip
	TagPoolIDs byte = 0x87 // PoolIDs
)

// MaxPoolIDsPerResponse caps the ids of one PoolIDs answer: the issue's
// 5,000 pending txs in one answer, the same as Bitcoin Core's per-peer
// announcement cap (MAX_PEER_TX_ANNOUNCEMENTS, 5000). 5000 ids are 160 KB.
const MaxPoolIDsPerResponse = 5000

// GetTip asks for the sender's best block. A node asks each peer on
// connect (and every poll interval) to learn whether it is behind.
//
//	GetTip = 0x06
type GetTip struct{}

// Tag implements Request.
func (m *GetTip) Tag() byte { return TagGetTip }

// Encode implements Request.
func (m *GetTip) Encode() ([]byte, error) { return []byte{TagGetTip}, nil }

// GetPoolIDs asks for up to Max ids of the sender's pending (executable)
// transactions: mempool sync for a node that just joined.
//
//	GetPoolIDs = 0x07 uvarint(max)     1 <= max <= MaxPoolIDsPerResponse
type GetPoolIDs struct {
	Max uint32
}

// Tag implements Request.
func (m *GetPoolIDs) Tag() byte { return TagGetPoolIDs }

// Encode implements Request.
func (m *GetPoolIDs) Encode() ([]byte, error) {
	if m.Max == 0 || m.Max > MaxPoolIDsPerResponse {
		return nil, fmt.Errorf("wire: GetPoolIDs max %d (want 1..%d)", m.Max, MaxPoolIDsPerResponse)
	}
	return binary.AppendUvarint([]byte{TagGetPoolIDs}, uint64(m.Max)), nil
}

// Tip answers GetTip with the best block's height and id.
//
//	Tip = 0x86 height[u64] id[32]
type Tip struct {
	Height uint64
	ID     ID
}

// Tag implements Response.
func (m *Tip) Tag() byte { return TagTip }

// Encode implements Response.
func (m *Tip) Encode() ([]byte, error) {
	b := make([]byte, 0, 1+8+IDSize)
	b = append(b, TagTip)
	b = binary.BigEndian.AppendUint64(b, m.Height)
	return append(b, m.ID[:]...), nil
}

// PoolIDs answers GetPoolIDs: at most the Max asked for, at most
// MaxPoolIDsPerResponse.
//
//	PoolIDs = 0x87 uvarint(n) n×id[32]     n <= MaxPoolIDsPerResponse
type PoolIDs struct {
	IDs []ID
}

// Tag implements Response.
func (m *PoolIDs) Tag() byte { return TagPoolIDs }

// Encode implements Response.
func (m *PoolIDs) Encode() ([]byte, error) {
	if len(m.IDs) > MaxPoolIDsPerResponse {
		return nil, fmt.Errorf("wire: PoolIDs of %d ids exceeds %d", len(m.IDs), MaxPoolIDsPerResponse)
	}
	b := make([]byte, 0, 1+3+len(m.IDs)*IDSize)
	b = append(b, TagPoolIDs)
	b = binary.AppendUvarint(b, uint64(len(m.IDs)))
	for _, id := range m.IDs {
		b = append(b, id[:]...)
	}
	return b, nil
}

func decodeGetPoolIDs(r *reader) *GetPoolIDs {
	q := &GetPoolIDs{Max: uint32(r.Uvarint(MaxPoolIDsPerResponse, "GetPoolIDs max"))}
	if r.Err() == nil && q.Max == 0 {
		r.Fail(malformed("GetPoolIDs: max 0"))
	}
	return q
}

func decodeTip(r *reader) *Tip {
	return &Tip{Height: r.U64("Tip height"), ID: r.hash("Tip id")}
}

func decodePoolIDs(r *reader) *PoolIDs {
	n := r.Count(MaxPoolIDsPerResponse, IDSize, "PoolIDs count")
	if r.Err() != nil {
		return nil
	}
	m := &PoolIDs{}
	if n > 0 {
		m.IDs = make([]ID, n)
	}
	for i := range m.IDs {
		m.IDs[i] = r.hash("PoolIDs id")
	}
	return m
}

// Response frame caps of the sync messages, tighter than MaxResponseFrame:
// a client reads a Tip with a 64-byte cap and a PoolIDs with room for
// MaxPoolIDsPerResponse ids.
const (
	MaxTipResponseFrame     = 64
	MaxPoolIDsResponseFrame = 16 + MaxPoolIDsPerResponse*IDSize
)
