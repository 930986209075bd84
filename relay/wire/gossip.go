package wire

import (
	"encoding/binary"
	"fmt"
)

// Tags of the GossipSub message payloads. The first byte of every message
// names its kind so a receiver accepts all block modes whatever it sends.
const (
	// TagTxAnnounce marks a batch of transaction ids.
	TagTxAnnounce byte = 0x01
	// TagTxPush marks a batch of whole transactions pushed inside the
	// message (the plain-GossipSub baseline, relay.TxPush).
	TagTxPush byte = 0x02
	// TagBlockCompact marks a compact block: header, nonce, short ids and
	// prefilled transactions (BIP152's cmpctblock).
	TagBlockCompact byte = 0x10
	// TagBlockPull marks a header-only announcement; the receiver fetches the
	// whole block.
	TagBlockPull byte = 0x11
	// TagBlockPush marks a whole block pushed inside the message.
	TagBlockPush byte = 0x12
)

// TxAnnounce is a batch of transaction ids whose bodies the sender holds.
//
//	TxAnnounce = 0x01 nonce[u64] uvarint(n) n×id[32]      1 <= n <= MaxAnnounceIDs
//
// Gossip messages are named by a hash of their bytes (relay/p2p), so two
// publications of the same ids would be one message: a node that ignored
// an announcement (the tx was not executable there yet) could never
// announce those ids itself. The publisher's random nonce keeps each
// publication a message of its own; forwarded copies keep it and stay one.
type TxAnnounce struct {
	Nonce uint64
	IDs   []ID
}

// Encode returns the message payload. It fails when the batch is empty or
// over MaxAnnounceIDs.
func (m *TxAnnounce) Encode() ([]byte, error) {
	if len(m.IDs) == 0 || len(m.IDs) > MaxAnnounceIDs {
		return nil, fmt.Errorf("wire: tx announcement of %d ids (want 1..%d)", len(m.IDs), MaxAnnounceIDs)
	}
	b := make([]byte, 0, 1+8+3+len(m.IDs)*IDSize)
	b = append(b, TagTxAnnounce)
	b = binary.BigEndian.AppendUint64(b, m.Nonce)
	b = binary.AppendUvarint(b, uint64(len(m.IDs)))
	for _, id := range m.IDs {
		b = append(b, id[:]...)
	}
	return b, nil
}

// DecodeTxAnnounce decodes a transaction announcement.
func DecodeTxAnnounce(b []byte) (*TxAnnounce, error) {
	r := newReader(b)
	if tag := r.Byte("tx announce tag"); r.Err() == nil && tag != TagTxAnnounce {
		return nil, malformed("tx announce: tag %#x", tag)
	}
	nonce := r.U64("tx announce nonce")
	n := r.Count(MaxAnnounceIDs, IDSize, "tx announce count")
	if r.Err() == nil && n == 0 {
		r.Fail(malformed("tx announce: no ids"))
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	m := &TxAnnounce{Nonce: nonce, IDs: make([]ID, n)}
	for i := range m.IDs {
		m.IDs[i] = r.hash("tx announce id")
	}
	if err := r.Done("tx announce"); err != nil {
		return nil, err
	}
	return m, nil
}

// TxPush is a batch of whole transactions, gossiped as they are: what a
// relay built on GossipSub alone does. Rumor announces ids instead
// (TxAnnounce); this mode is the baseline it is measured against.
//
//	TxPush = 0x02 nonce[u64] uvarint(n) n×(uvarint(len) body)   1 <= n <= MaxAnnounceIDs, 1 <= len <= MaxTxBytes
//
// The nonce keeps two publications of the same bodies distinct messages,
// as in TxAnnounce.
type TxPush struct {
	Nonce  uint64
	Bodies [][]byte
}

// Encode returns the message payload. It fails when the batch is empty,
// over MaxAnnounceIDs, or holds an empty or oversized body.
func (m *TxPush) Encode() ([]byte, error) {
	if len(m.Bodies) == 0 || len(m.Bodies) > MaxAnnounceIDs {
		return nil, fmt.Errorf("wire: tx push of %d bodies (want 1..%d)", len(m.Bodies), MaxAnnounceIDs)
	}
	for _, b := range m.Bodies {
		if len(b) == 0 {
			return nil, fmt.Errorf("wire: tx push with an empty body")
		}
	}
	return appendBlobList(TagTxPush, binary.BigEndian.AppendUint64(nil, m.Nonce), m.Bodies, MaxTxBytes)
}

// DecodeTxPush decodes a tx push message. Bodies alias b.
func DecodeTxPush(b []byte) (*TxPush, error) {
	r := newReader(b)
	if tag := r.Byte("tx push tag"); r.Err() == nil && tag != TagTxPush {
		return nil, malformed("tx push: tag %#x", tag)
	}
	nonce := r.U64("tx push nonce")
	bodies := r.blobList(MaxAnnounceIDs, MaxTxBytes, false, "tx push body")
	if r.Err() == nil && len(bodies) == 0 {
		r.Fail(malformed("tx push: no bodies"))
	}
	if err := r.Done("tx push"); err != nil {
		return nil, err
	}
	return &TxPush{Nonce: nonce, Bodies: bodies}, nil
}

// BlockAnnounce is one of *CompactBlock, *BlockPull or *BlockPush.
type BlockAnnounce interface {
	// Tag returns the message's tag byte.
	Tag() byte
	// Encode returns the message payload.
	Encode() ([]byte, error)
}

// PrefilledTx is a transaction a compact block carries whole, at its index in
// the block.
type PrefilledTx struct {
	Index uint32
	Tx    []byte
}

// CompactBlock announces a block by its header and the keyed short ids of
// its transactions (BIP152). Transactions the sender expects receivers to
// lack travel whole as Prefilled; ShortIDs cover the remaining positions in
// order. The short-id key is chain.NewShortIDKey(Header, Nonce).
//
//	CompactBlock = 0x10 uvarint(len) header  nonce[u64]
//	               uvarint(n) n×shortid[6]
//	               uvarint(m) m×(uvarint(index gap) uvarint(len) tx)
//
// with 1 <= len(header) <= MaxHeaderBytes, n+m <= MaxBlockTxs, prefilled
// indexes strictly increasing and below n+m, 1 <= len(tx) <= MaxTxBytes.
type CompactBlock struct {
	Header    []byte
	Nonce     uint64
	ShortIDs  []uint64
	Prefilled []PrefilledTx
}

// Tag implements BlockAnnounce.
func (m *CompactBlock) Tag() byte { return TagBlockCompact }

// TxCount is the number of transactions in the announced block.
func (m *CompactBlock) TxCount() int { return len(m.ShortIDs) + len(m.Prefilled) }

// Encode implements BlockAnnounce.
func (m *CompactBlock) Encode() ([]byte, error) {
	if len(m.Header) == 0 || len(m.Header) > MaxHeaderBytes {
		return nil, fmt.Errorf("wire: header of %d bytes", len(m.Header))
	}
	total := m.TxCount()
	if total > MaxBlockTxs {
		return nil, fmt.Errorf("wire: compact block of %d txs exceeds %d", total, MaxBlockTxs)
	}
	idx := make([]uint32, len(m.Prefilled))
	size := 1 + 2 + len(m.Header) + 8 + 4 + len(m.ShortIDs)*shortIDBytes + 4
	for i, p := range m.Prefilled {
		if len(p.Tx) == 0 || len(p.Tx) > MaxTxBytes {
			return nil, fmt.Errorf("wire: prefilled tx of %d bytes", len(p.Tx))
		}
		idx[i] = p.Index
		size += 8 + len(p.Tx)
	}
	if err := checkIndexes(idx, total); err != nil {
		return nil, err
	}
	b := make([]byte, 0, size)
	b = append(b, TagBlockCompact)
	b = appendBlob(b, m.Header)
	b = binary.BigEndian.AppendUint64(b, m.Nonce)
	b = binary.AppendUvarint(b, uint64(len(m.ShortIDs)))
	var sid [8]byte
	for _, s := range m.ShortIDs {
		binary.BigEndian.PutUint64(sid[:], s)
		b = append(b, sid[8-shortIDBytes:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Prefilled)))
	prev := int64(-1)
	for _, p := range m.Prefilled {
		b = binary.AppendUvarint(b, uint64(int64(p.Index)-prev-1))
		prev = int64(p.Index)
		b = appendBlob(b, p.Tx)
	}
	return b, nil
}

// BlockPull announces a block by its header alone; receivers fetch the
// whole block from the sender.
//
//	BlockPull = 0x11 uvarint(len) header
type BlockPull struct {
	Header []byte
}

// Tag implements BlockAnnounce.
func (m *BlockPull) Tag() byte { return TagBlockPull }

// Encode implements BlockAnnounce.
func (m *BlockPull) Encode() ([]byte, error) {
	if len(m.Header) == 0 || len(m.Header) > MaxHeaderBytes {
		return nil, fmt.Errorf("wire: header of %d bytes", len(m.Header))
	}
	b := make([]byte, 0, 3+len(m.Header))
	b = append(b, TagBlockPull)
	return appendBlob(b, m.Header), nil
}

// BlockPush carries a whole encoded block.
//
//	BlockPush = 0x12 block          1 <= len(block) <= MaxBlockBytes
type BlockPush struct {
	Block []byte
}

// Tag implements BlockAnnounce.
func (m *BlockPush) Tag() byte { return TagBlockPush }

// Encode implements BlockAnnounce.
func (m *BlockPush) Encode() ([]byte, error) {
	if len(m.Block) == 0 || len(m.Block) > MaxBlockBytes {
		return nil, fmt.Errorf("wire: block of %d bytes", len(m.Block))
	}
	b := make([]byte, 0, 1+len(m.Block))
	b = append(b, TagBlockPush)
	return append(b, m.Block...), nil
}

// DecodeBlockAnnounce decodes any of the three block announcements.
func DecodeBlockAnnounce(b []byte) (BlockAnnounce, error) {
	r := newReader(b)
	tag := r.Byte("block announce tag")
	if r.Err() != nil {
		return nil, r.Err()
	}
	switch tag {
	case TagBlockCompact:
		return decodeCompact(&r)
	case TagBlockPull:
		m := &BlockPull{Header: r.Blob(MaxHeaderBytes, false, "pull header")}
		if err := r.Done("block pull"); err != nil {
			return nil, err
		}
		return m, nil
	case TagBlockPush:
		if r.Len() == 0 || r.Len() > MaxBlockBytes {
			return nil, malformed("block push: %d bytes", r.Len())
		}
		return &BlockPush{Block: r.Bytes(r.Len(), "block push")}, nil
	}
	return nil, malformed("block announce: unknown tag %#x", tag)
}

// minPrefilled is the fewest bytes one prefilled entry takes: a one-byte
// index gap, a one-byte length and one byte of transaction.
const minPrefilled = 3

func decodeCompact(r *reader) (*CompactBlock, error) {
	m := &CompactBlock{}
	m.Header = r.Blob(MaxHeaderBytes, false, "compact header")
	m.Nonce = r.U64("compact nonce")
	n := r.Count(MaxBlockTxs, shortIDBytes, "compact short id count")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if n > 0 {
		m.ShortIDs = make([]uint64, n)
		var sid [8]byte
		for i := range m.ShortIDs {
			copy(sid[8-shortIDBytes:], r.Bytes(shortIDBytes, "compact short id"))
			m.ShortIDs[i] = binary.BigEndian.Uint64(sid[:])
		}
	}
	k := r.Count(uint64(MaxBlockTxs-n), minPrefilled, "compact prefilled count")
	if r.Err() != nil {
		return nil, r.Err()
	}
	total := uint64(n + k)
	if k > 0 {
		m.Prefilled = make([]PrefilledTx, k)
		next := uint64(0)
		for i := range m.Prefilled {
			d := r.Uvarint(total, "compact prefilled index")
			v := next + d
			if r.Err() == nil && v >= total {
				r.Fail(malformed("compact prefilled index %d out of range %d", v, total))
			}
			tx := r.Blob(MaxTxBytes, false, "compact prefilled tx")
			if r.Err() != nil {
				return nil, r.Err()
			}
			m.Prefilled[i] = PrefilledTx{Index: uint32(v), Tx: tx}
			next = v + 1
		}
	}
	if err := r.Done("compact block"); err != nil {
		return nil, err
	}
	return m, nil
}
