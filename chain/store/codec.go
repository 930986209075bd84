package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/rumor-relay/rumor/chain"
)

// Key prefixes. doc.go describes the layout; every key is a one-byte prefix
// followed by a fixed-width id, so a prefix scan never mixes kinds.
const (
	prefixVersion  = 'v' // 'v' -> formatVersion (u64)
	prefixGenesis  = 'g' // 'g' -> genesis block id
	prefixTip      = 'T' // 'T' -> id of the best block
	prefixSeq      = 'q' // 'q' -> next first-seen sequence number (u64)
	prefixBlock    = 'b' // 'b' id -> canonical block encoding
	prefixMeta     = 'm' // 'm' id -> blockMeta
	prefixHeight   = 'h' // 'h' height(u64 BE) -> block id on the best chain
	prefixTx       = 'x' // 'x' txid -> block id, height, index (best chain)
	prefixAccount  = 'a' // 'a' address -> balance, nonce (absent = zero account)
	prefixUndo     = 'u' // 'u' id -> undo record of a connected block
	prefixJournal  = 'J' // 'J' -> journal header (a large commit in progress)
	prefixJournalP = 'j' // 'j' part(u32 BE) -> one part of the journal's operations
)

// formatVersion is stored under 'v'; Open refuses a store written in another
// format rather than misreading it.
const formatVersion = 1

func key1(p byte) []byte { return []byte{p} }

func keyID(p byte, id chain.Hash) []byte {
	k := make([]byte, 1+chain.HashSize)
	k[0] = p
	copy(k[1:], id[:])
	return k
}

func keyAccount(a chain.Address) []byte {
	k := make([]byte, 1+chain.AddressSize)
	k[0] = prefixAccount
	copy(k[1:], a[:])
	return k
}

func keyHeight(h uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixHeight
	binary.BigEndian.PutUint64(k[1:], h)
	return k
}

func keyJournalPart(i uint32) []byte {
	k := make([]byte, 5)
	k[0] = prefixJournalP
	binary.BigEndian.PutUint32(k[1:], i)
	return k
}

// errCorrupt is wrapped by every error about stored bytes that do not decode:
// the store was damaged or written by something else.
var errCorrupt = errors.New("store: corrupt record")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}

// Status is where a stored block stands in fork choice.
type Status uint8

const (
	// StatusSide: stored, passed CheckBlock, not on the best chain; its
	// transactions have not necessarily been checked against state.
	StatusSide Status = 1
	// StatusConnected: on the best chain, its state applied, undo stored.
	StatusConnected Status = 2
	// StatusInvalid: failed state validation (or descends from a block that
	// did); only the metadata is kept so the block is refused cheaply.
	StatusInvalid Status = 3
)

// String names the status for logs.
func (s Status) String() string {
	switch s {
	case StatusSide:
		return "side"
	case StatusConnected:
		return "connected"
	case StatusInvalid:
		return "invalid"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// blockMeta is the metadata of a stored block:
//
//	status[1] reason[u16] seq[u64] header[chain.HeaderSize]
//
// It carries the header so that fork-point walks and Header never read a
// (possibly megabyte) block body.
type blockMeta struct {
	status Status
	reason chain.Reason // why the block is invalid (StatusInvalid only)
	seq    uint64       // first-seen order: lower was stored earlier
	header chain.Header
}

const metaSize = 1 + 2 + 8 + chain.HeaderSize

func (m *blockMeta) encode() []byte {
	b := make([]byte, 0, metaSize)
	b = append(b, byte(m.status))
	b = binary.BigEndian.AppendUint16(b, uint16(m.reason))
	b = binary.BigEndian.AppendUint64(b, m.seq)
	return m.header.AppendEncode(b)
}

func decodeMeta(b []byte) (blockMeta, error) {
	if len(b) != metaSize {
		return blockMeta{}, corrupt("block meta: %d bytes, want %d", len(b), metaSize)
	}
	h, err := chain.DecodeHeader(b[11:])
	if err != nil {
		return blockMeta{}, corrupt("block meta header: %v", err)
	}
	m := blockMeta{
		status: Status(b[0]),
		reason: chain.Reason(binary.BigEndian.Uint16(b[1:3])),
		seq:    binary.BigEndian.Uint64(b[3:11]),
		header: *h,
	}
	if m.status < StatusSide || m.status > StatusInvalid {
		return blockMeta{}, corrupt("block meta: status %d", m.status)
	}
	return m, nil
}

// TxLocation is where a transaction sits on the best chain.
type TxLocation struct {
	Block  chain.Hash // id of the including block
	Height uint64     // height of that block
	Index  int        // position of the tx in the block
}

const txLocSize = chain.HashSize + 8 + 4

func (l TxLocation) encode() []byte { return l.appendEncode(make([]byte, 0, txLocSize)) }

// appendEncode appends the encoding of l to b.
func (l TxLocation) appendEncode(b []byte) []byte {
	b = append(b, l.Block[:]...)
	b = binary.BigEndian.AppendUint64(b, l.Height)
	return binary.BigEndian.AppendUint32(b, uint32(l.Index))
}

func decodeTxLoc(b []byte) (TxLocation, error) {
	if len(b) != txLocSize {
		return TxLocation{}, corrupt("tx location: %d bytes", len(b))
	}
	var l TxLocation
	copy(l.Block[:], b)
	l.Height = binary.BigEndian.Uint64(b[chain.HashSize:])
	l.Index = int(binary.BigEndian.Uint32(b[chain.HashSize+8:]))
	return l, nil
}

const accountSize = 16

func encodeAccount(a chain.Account) []byte { return appendAccount(make([]byte, 0, accountSize), a) }

// appendAccount appends the encoding of a to b.
func appendAccount(b []byte, a chain.Account) []byte {
	b = binary.BigEndian.AppendUint64(b, a.Balance)
	return binary.BigEndian.AppendUint64(b, a.Nonce)
}

func decodeAccount(b []byte) (chain.Account, error) {
	if len(b) != accountSize {
		return chain.Account{}, corrupt("account: %d bytes", len(b))
	}
	return chain.Account{Balance: binary.BigEndian.Uint64(b), Nonce: binary.BigEndian.Uint64(b[8:])}, nil
}

// undoEntry is the value an account had before a block touched it; the zero
// Account means the account did not exist (absent keys are zero accounts).
type undoEntry struct {
	addr chain.Address
	prev chain.Account
}

// undoRecord lists the previous values of every account a connected block
// changed. Restoring them in any order undoes the block exactly.
//
//	count[u32] count × (address[32] balance[u64] nonce[u64])
type undoRecord []undoEntry

const undoEntrySize = chain.AddressSize + accountSize

func (u undoRecord) encode() []byte {
	sorted := append(undoRecord(nil), u...)
	sort.Slice(sorted, func(i, j int) bool {
		return string(sorted[i].addr[:]) < string(sorted[j].addr[:])
	})
	b := make([]byte, 0, 4+len(u)*undoEntrySize)
	b = binary.BigEndian.AppendUint32(b, uint32(len(sorted)))
	for _, e := range sorted {
		b = append(b, e.addr[:]...)
		b = binary.BigEndian.AppendUint64(b, e.prev.Balance)
		b = binary.BigEndian.AppendUint64(b, e.prev.Nonce)
	}
	return b
}

func decodeUndo(b []byte) (undoRecord, error) {
	if len(b) < 4 {
		return nil, corrupt("undo: %d bytes", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(len(b)) != uint64(n)*undoEntrySize {
		return nil, corrupt("undo: %d entries in %d bytes", n, len(b))
	}
	u := make(undoRecord, n)
	for i := range u {
		copy(u[i].addr[:], b)
		u[i].prev.Balance = binary.BigEndian.Uint64(b[chain.AddressSize:])
		u[i].prev.Nonce = binary.BigEndian.Uint64(b[chain.AddressSize+8:])
		b = b[undoEntrySize:]
	}
	return u, nil
}

// undoSize is the encoded size of an undo record with n entries.
func undoSize(n int) int { return 4 + n*undoEntrySize }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, corrupt("u64: %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func decodeHash(b []byte) (chain.Hash, error) {
	var h chain.Hash
	if len(b) != chain.HashSize {
		return h, corrupt("hash: %d bytes", len(b))
	}
	copy(h[:], b)
	return h, nil
}
