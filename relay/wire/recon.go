package wire

import (
	"encoding/binary"
	"fmt"
)

// Tags of the reconciliation messages (mempool anti-entropy, package
// relay/recon). They share the request protocol with the fetch messages.
const (
	TagGetSymbols byte = 0x08 // GetSymbols
	TagSymbols    byte = 0x88 // Symbols
)

// Bounds of the reconciliation messages. The symbols themselves are
// package relay/recon's business; the wire format only carries a batch of
// them and bounds its size.
const (
	// ReconKeySize is the size of a session key.
	ReconKeySize = 16
	// MaxSymbolsPerRequest caps the symbols one GetSymbols asks for:
	// recon.MaxSymbolsPerBatch (a relay test checks they agree).
	MaxSymbolsPerRequest = 2048
	// MaxSymbolIndex caps a session's symbol indexes (start + count):
	// recon.MaxSymbols.
	MaxSymbolIndex = 8192
	// MaxSymbolsBatchBytes caps a Symbols answer's batch: a full request's
	// worth of 44-byte symbols (recon.SymbolSize) plus the batch header.
	MaxSymbolsBatchBytes = MaxSymbolsPerRequest*44 + 16
	// MaxSymbolsResponseFrame caps a Symbols response frame.
	MaxSymbolsResponseFrame = 1 + 4 + MaxSymbolsBatchBytes
)

// GetSymbols asks for coded symbols Start..Start+Count-1 of the sender's
// pending-tx set under the session key Key (rateless set reconciliation,
// package relay/recon): the requester subtracts its own symbols and
// decodes the difference between the two pools.
//
//	GetSymbols = 0x08 key[16] uvarint(start) uvarint(count)     1 <= count <= MaxSymbolsPerRequest, start+count <= MaxSymbolIndex
type GetSymbols struct {
	Key   [ReconKeySize]byte
	Start uint32
	Count uint32
}

// Tag implements Request.
func (m *GetSymbols) Tag() byte { return TagGetSymbols }

// Encode implements Request.
func (m *GetSymbols) Encode() ([]byte, error) {
	if err := checkSymbolRange(uint64(m.Start), uint64(m.Count)); err != nil {
		return nil, err
	}
	b := append([]byte{TagGetSymbols}, m.Key[:]...)
	b = binary.AppendUvarint(b, uint64(m.Start))
	return binary.AppendUvarint(b, uint64(m.Count)), nil
}

func checkSymbolRange(start, count uint64) error {
	if count == 0 || count > MaxSymbolsPerRequest || start+count > MaxSymbolIndex {
		return fmt.Errorf("%w: symbols %d+%d (want 1..%d from an index, to at most %d)",
			ErrMalformed, start, count, MaxSymbolsPerRequest, MaxSymbolIndex)
	}
	return nil
}

func decodeGetSymbols(r *reader) *GetSymbols {
	q := &GetSymbols{}
	copy(q.Key[:], r.Bytes(ReconKeySize, "GetSymbols key"))
	start := r.Uvarint(MaxSymbolIndex, "GetSymbols start")
	count := r.Uvarint(MaxSymbolsPerRequest, "GetSymbols count")
	if r.Err() == nil {
		if err := checkSymbolRange(start, count); err != nil {
			r.Fail(err)
		}
	}
	q.Start, q.Count = uint32(start), uint32(count)
	return q
}

// Symbols answers GetSymbols with one batch of coded symbols in package
// relay/recon's batch encoding (which the requester checks); an empty
// batch means the server does not reconcile.
//
//	Symbols = 0x88 uvarint(len) batch     len <= MaxSymbolsBatchBytes
type Symbols struct {
	Batch []byte
}

// Tag implements Response.
func (m *Symbols) Tag() byte { return TagSymbols }

// Encode implements Response.
func (m *Symbols) Encode() ([]byte, error) {
	if len(m.Batch) > MaxSymbolsBatchBytes {
		return nil, fmt.Errorf("wire: symbol batch of %d bytes exceeds %d", len(m.Batch), MaxSymbolsBatchBytes)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen32+len(m.Batch))
	b = append(b, TagSymbols)
	b = binary.AppendUvarint(b, uint64(len(m.Batch)))
	return append(b, m.Batch...), nil
}

func decodeSymbols(r *reader) *Symbols {
	v := r.Blob(MaxSymbolsBatchBytes, true, "Symbols batch")
	if len(v) == 0 {
		v = nil
	}
	return &Symbols{Batch: v}
}
