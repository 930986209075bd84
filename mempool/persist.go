package mempool

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/durable"
)

// The pool file (like Bitcoin Core's mempool.dat):
//
//	magic[8] = "rumormp\x00"  version[u32 BE] = 1  count uvarint
//	count × ( added_ms[i64 BE]  uvarint(len)  tx[len] )
//	sha256[32] of everything before it
//
// Txs are canonical encodings, each sender's in nonce order, so re-adding
// them in file order rebuilds the same chains. The checksum catches a file
// cut short by a crash or corrupted on disk before anything is parsed; the
// parser is still strict (minimal varints, no trailing bytes) because the
// fuzzer feeds it files with valid checksums.
const (
	fileMagic   = "rumormp\x00"
	fileVersion = 1
	// fileHeaderSize is magic and version.
	fileHeaderSize = len(fileMagic) + 4
	// fileOverheadFactor bounds the file Load reads relative to MaxBytes:
	// a record adds at most 11 bytes to a tx of at least 153, so a file
	// written by a pool with the same MaxBytes is under 1.06 × MaxBytes;
	// twice that leaves room for a pool whose limit was lowered since.
	fileOverheadFactor = 2
	// fileSlack is added to that bound for the header and checksum.
	fileSlack = 1 << 20
)

// minRecordSize is the smallest record: time, length prefix and an
// empty-payload tx. It bounds the count a decoder believes before
// allocating.
var minRecordSize = 8 + minInBlockSize

// ErrBadFile is wrapped by every error Load returns for a file that is not
// a complete, well-formed pool file (truncated, corrupt, wrong version).
var ErrBadFile = errors.New("mempool: bad pool file")

func badFile(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadFile, fmt.Sprintf(format, args...))
}

// fileRecord is one saved transaction.
type fileRecord struct {
	Added time.Time // arrival time, millisecond precision
	Tx    *chain.Tx
}

// encodeFile returns the file bytes for records.
func encodeFile(records []fileRecord) []byte {
	n := fileHeaderSize + binary.MaxVarintLen64 + sha256.Size
	for _, r := range records {
		n += 8 + binary.MaxVarintLen64 + r.Tx.Size()
	}
	b := make([]byte, 0, n)
	b = append(b, fileMagic...)
	b = binary.BigEndian.AppendUint32(b, fileVersion)
	b = binary.AppendUvarint(b, uint64(len(records)))
	for _, r := range records {
		b = binary.BigEndian.AppendUint64(b, uint64(r.Added.UnixMilli()))
		b = binary.AppendUvarint(b, uint64(r.Tx.Size()))
		b = r.Tx.AppendEncode(b)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// readUvarint reads a minimal uvarint no larger than limit from b.
func readUvarint(b []byte, limit uint64, what string) (uint64, int, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, badFile("%s: truncated or overlong varint", what)
	}
	if n != uvarintLen(v) {
		return 0, 0, badFile("%s: non-minimal varint", what)
	}
	if v > limit {
		return 0, 0, badFile("%s: %d exceeds limit %d", what, v, limit)
	}
	return v, n, nil
}

// decodeFile parses a pool file. It never allocates more than the input's
// size justifies and never panics.
func decodeFile(b []byte) ([]fileRecord, error) {
	if len(b) < fileHeaderSize+1+sha256.Size {
		return nil, badFile("%d bytes is too short for a pool file", len(b))
	}
	if string(b[:len(fileMagic)]) != fileMagic {
		return nil, badFile("not a pool file (bad magic)")
	}
	if v := binary.BigEndian.Uint32(b[len(fileMagic):]); v != fileVersion {
		return nil, badFile("unsupported version %d (want %d)", v, fileVersion)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(sum, want[:]) {
		return nil, badFile("checksum mismatch: file truncated or corrupt")
	}
	rest := body[fileHeaderSize:]
	count, n, err := readUvarint(rest, uint64(len(rest)/minRecordSize), "record count")
	if err != nil {
		return nil, err
	}
	rest = rest[n:]
	records := make([]fileRecord, 0, count)
	for i := range count {
		if len(rest) < 8 {
			return nil, badFile("record %d: truncated", i)
		}
		ms := int64(binary.BigEndian.Uint64(rest))
		rest = rest[8:]
		size, n, err := readUvarint(rest, chain.MaxTxSize, fmt.Sprintf("record %d length", i))
		if err != nil {
			return nil, err
		}
		rest = rest[n:]
		if uint64(len(rest)) < size {
			return nil, badFile("record %d: %d tx bytes, %d left", i, size, len(rest))
		}
		tx, err := chain.DecodeTx(rest[:size])
		if err != nil {
			return nil, fmt.Errorf("%w: record %d: %w", ErrBadFile, i, err)
		}
		rest = rest[size:]
		records = append(records, fileRecord{Added: time.UnixMilli(ms), Tx: tx})
	}
	if len(rest) != 0 {
		return nil, badFile("%d trailing bytes after %d records", len(rest), count)
	}
	return records, nil
}

// Save writes every held transaction to path, replacing it atomically
// (a temporary file in the same directory, synced, then renamed), so a
// crash leaves either the old file or the new one. Only the snapshot is
// taken under the pool's lock; encoding and I/O happen outside it.
func (p *Pool) Save(path string) error {
	p.mu.RLock()
	senders := make([]*sender, 0, len(p.senders))
	for _, s := range p.senders {
		senders = append(senders, s)
	}
	slices.SortFunc(senders, func(a, b *sender) int { return bytes.Compare(a.addr[:], b.addr[:]) })
	records := make([]fileRecord, 0, len(p.byID))
	for _, s := range senders {
		for _, e := range s.txs {
			records = append(records, fileRecord{Added: e.added, Tx: e.tx})
		}
	}
	p.mu.RUnlock()

	data := encodeFile(records)
	if err := durable.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("mempool: save: %w", err)
	}
	log.Infow("saved pool", "path", path, "txs", len(records), "bytes", len(data))
	return nil
}

// Load re-adds the transactions saved in path through Add (all checks,
// signatures included, against the current state), keeping each one's
// arrival time so the TTL still counts from it; those already expired at
// now are skipped, and a time after now becomes now. It returns how many
// the pool took. A missing file is an error wrapping os.ErrNotExist; a
// truncated, corrupt or oversize file is an error wrapping ErrBadFile and
// adds nothing.
func (p *Pool) Load(path string, now time.Time) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("mempool: load: %w", err)
	}
	defer f.Close()
	limit := int64(p.cfg.MaxBytes)*fileOverheadFactor + fileSlack
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return 0, fmt.Errorf("mempool: load: %w", err)
	}
	if int64(len(data)) > limit {
		return 0, badFile("%s is over %d bytes", path, limit)
	}
	records, err := decodeFile(data)
	if err != nil {
		return 0, fmt.Errorf("mempool: load %s: %w", path, err)
	}
	// The file keeps each sender's nonce order, so parents come back
	// before their children.
	added, expired := 0, 0
	for _, r := range records {
		t := r.Added
		if t.After(now) {
			t = now
		}
		if now.Sub(t) >= p.cfg.TTL {
			expired++
			continue
		}
		if res := p.Add(r.Tx, t); res.Code.Held() {
			added++
		}
	}
	log.Infow("loaded pool", "path", path, "saved", len(records), "added", added, "expired", expired)
	return added, nil
}
