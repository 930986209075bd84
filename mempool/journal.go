package mempool

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/spf13/afero"

	"github.com/rumor-relay/rumor/chain"

	"github.com/rumor-relay/rumor/chain/durable"
)

// The own-tx journal: the transactions a node acknowledged to its RPC
// clients, kept in an append-only file so that they survive the process's
// death (kill -9, an OOM kill, a panic), which the pool file written on
// clean shutdown (Save) does not.
//
// File: a header (magic, version), then records. A record is a frame, the
// payload's length (uint32, big-endian) and the CRC-32C of those four
// length bytes and the payload (uint32), then the payload, whose first byte
// is its kind:
//
//	kind 1, tx:     arrival time (int64 Unix ms) | the tx's canonical encoding
//	kind 2, remove: one or more tx ids (32 bytes each) no longer tracked
//
// A later tx record of the same id supersedes an earlier one; a remove
// record ends the tracking of the ids it names. Nothing is ever rewritten
// in place: compaction writes the live tx records to a new file and renames
// it over the old one.
const (
	journalMagic   = "rumorjl\x00"
	journalVersion = 1
	// journalHeaderSize is the magic and the version.
	journalHeaderSize = len(journalMagic) + 4
	// journalFrameSize is a record's length and checksum.
	journalFrameSize = 8

	journalKindTx     = 1
	journalKindRemove = 2
	// journalTxPrefix is a tx record's payload before the tx: kind and
	// arrival time.
	journalTxPrefix = 1 + 8

	// maxJournalPayload is the largest payload a record may have: a tx
	// record of the largest tx the pool takes (AddEncoded refuses anything
	// over chain.MaxTxSize). A length field above it is corruption.
	maxJournalPayload = journalTxPrefix + chain.MaxTxSize
	// maxJournalRecord is the largest record, frame included.
	maxJournalRecord = journalFrameSize + maxJournalPayload
	// maxRemoveIDs is how many ids one remove record carries: as many as
	// fit the largest payload; a longer removal is written as several.
	maxRemoveIDs = (maxJournalPayload - 1) / chain.HashSize
	// journalTxOverhead is what a tx record adds to the tx's own bytes.
	journalTxOverhead = journalFrameSize + journalTxPrefix

	// journalCompactMinDead is how many bytes of dead records (removed or
	// superseded txs, remove records) the file must hold before it is
	// compacted, besides dead outweighing live. Below 1 MiB a rewrite costs
	// more than the space it frees, and a restart reads 1 MiB of dead
	// records in about a millisecond.
	journalCompactMinDead = 1 << 20
	// journalQueue bounds the requests waiting for the journal's goroutine.
	// Each waiting Append is an RPC call blocked on it; the RPC server
	// bounds those (a WebSocket client may have 32 unanswered, HTTP by its
	// connections), and 1024 absorbs their bursts. A full queue blocks the
	// caller, never drops.
	journalQueue = 1024
	// journalMaxBatchBytes bounds the records one batch writes (and so the
	// batch buffer): 4 MiB is ~16,000 typical txs, far more than arrive in
	// one fsync; a batch that reaches it is written and the rest wait for
	// the next.
	journalMaxBatchBytes = 4 << 20
)

// journalCRC is CRC-32C (Castagnoli), hardware-accelerated on amd64 and
// arm64, the checksum of ext4's and LevelDB's logs.
var journalCRC = crc32.MakeTable(crc32.Castagnoli)

// Journal errors.
var (
	// ErrJournalFull: the journal already tracks MaxTxs transactions or
	// MaxBytes of them. Removing transactions the pool no longer holds
	// (Retain) makes room.
	ErrJournalFull = errors.New("mempool: own-tx journal full")
	// ErrJournalClosed: Close was called.
	ErrJournalClosed = errors.New("mempool: own-tx journal closed")
)

// JournalConfig configures a Journal. A zero bound takes its default.
type JournalConfig struct {
	// Path is the journal file. Its directory must exist; the file is
	// created if missing.
	Path string
	// FS holds the file; nil is the operating system's. A simulated node
	// passes an in-memory one (afero.NewMemMapFs) that outlives the node,
	// as a data dir outlives a process.
	FS afero.Fs
	// Sync makes every batch of appends fsync before its Appends return,
	// so an acknowledged transaction survives power loss as well as the
	// process's death. Off, an Append returns once write(2) has put the
	// record in the page cache: that survives kill -9, an OOM kill or a
	// panic, but not the machine going down.
	Sync bool
	// MaxTxs bounds the transactions tracked (0 = DefaultMaxTxs). The
	// node passes its pool's MaxTxs: a transaction is tracked only while
	// the pool holds it, so a journal that needs more is stale.
	MaxTxs int
	// MaxBytes bounds the encoded bytes of the transactions tracked
	// (0 = DefaultMaxBytes); the node passes its pool's MaxBytes.
	MaxBytes int
}

func (c JournalConfig) withDefaults() JournalConfig {
	if c.MaxTxs <= 0 {
		c.MaxTxs = DefaultMaxTxs
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	return c
}

// maxFileSize is the largest journal file this config writes, and the most
// OpenJournal reads. Live records are at most liveCap; after every batch
// the file is compacted once dead records outweigh live ones and reach
// journalCompactMinDead, so a batch starts with at most 2 × liveCap +
// journalCompactMinDead of records. A batch stops taking requests once it
// holds journalMaxBatchBytes, so it adds less than that plus one request's
// records: one tx record, or the remove records of at most MaxTxs ids.
func (c JournalConfig) maxFileSize() int64 {
	liveCap := int64(c.MaxBytes) + int64(c.MaxTxs)*journalTxOverhead
	removeAll := int64(c.MaxTxs)*chain.HashSize + int64(c.MaxTxs/maxRemoveIDs+1)*(journalFrameSize+1)
	oneRequest := max(maxJournalRecord, removeAll)
	return int64(journalHeaderSize) + 2*liveCap + journalCompactMinDead + journalMaxBatchBytes + oneRequest
}

// JournalEntry is one transaction the journal tracks.
type JournalEntry struct {
	Tx    *chain.Tx // as appended; the caller may keep it
	Added time.Time // when Append was called for it (millisecond precision)
}

// JournalStats describes the journal file.
type JournalStats struct {
	Txs         int   // transactions tracked
	TxBytes     int   // their encoded size
	FileBytes   int64 // the file's size
	DeadBytes   int64 // bytes of records a compaction would drop
	Compactions int   // compactions since open
}

// Journal tracks the transactions this node acknowledged to its RPC
// clients, in an append-only file, until they are included in a block or
// dropped from the pool for good; a later delivery tracker removes them once
// enough peers have them. See the format above.
//
// One goroutine owns the file: Append, Remove, Retain and Stats send it a
// request and wait for its reply. It takes every request waiting and writes
// their records with one write(2) (and, with Sync, one fsync) before
// answering any: a group commit, whose window is the previous batch's
// write, as in a database's log (PostgreSQL's commit_delay defaults to 0
// for the same reason: waiting longer adds latency, and appends arriving
// during a sync already share the next one). Compaction (temp file, fsync,
// rename, directory fsync) runs on that goroutine between batches, when
// dead records outweigh live ones; appends wait for it, at most one copy of
// the live records (bounded by MaxBytes), amortized over at least as many
// bytes of removals.
type Journal struct {
	cfg     JournalConfig
	path    string
	maxFile int64

	reqs      chan *journalReq
	quit      chan struct{}
	closeOnce sync.Once
	done      chan struct{}

	fs afero.Fs

	// Owned by the goroutine (and by OpenJournal before it starts).
	f           afero.File
	size        int64 // file size, header included
	live        map[chain.Hash]*journalEntry
	liveRec     int64 // bytes of live tx records
	liveTx      int   // encoded bytes of the live txs
	unsynced    bool  // Sync is on and the last fsync failed
	compactions int
	syncs       int   // fsyncs of appended records (tests read it after Close)
	compactAt   int64 // dead bytes at which the next compaction may run
	buf         []byte
	rbuf        []byte // compaction's read buffer
	closeErr    error
}

// journalEntry is where a live tx's record lies in the file.
type journalEntry struct {
	off    int64
	n      int64 // record bytes, frame included
	txSize int
}

type journalReqKind int

const (
	reqAppend journalReqKind = iota
	reqRemove
	reqRetain
	reqStats
)

type journalReq struct {
	kind  journalReqKind
	tx    *chain.Tx
	id    chain.Hash
	added time.Time
	ids   []chain.Hash
	keep  func(chain.Hash) bool
	// Set by the goroutine. done has one slot so it never blocks on it.
	done    chan error
	refused bool // an append over MaxTxs or MaxBytes
	wrote   bool // an append that added a record to this batch
	removed int
	stats   JournalStats
}

// OpenJournal opens the journal at cfg.Path, creating it if missing, and
// returns it with the transactions it tracks, oldest first; it starts the
// journal's goroutine (stopped by Close).
//
// A damaged file never stops a node from starting: a torn or corrupt tail
// is cut off; a corrupt record followed by a valid one is skipped (a
// flipped bit); anything past the size bound (a file written with larger
// limits) is cut; a file that is not a journal at all (bad magic, unknown
// version) is moved aside to Path+".corrupt" and a new one started. Each is
// logged. Only I/O errors (permissions, a directory in the way) are
// returned.
func OpenJournal(cfg JournalConfig) (*Journal, []JournalEntry, error) {
	cfg = cfg.withDefaults()
	if cfg.Path == "" {
		return nil, nil, errors.New("mempool: journal path is empty")
	}
	j := &Journal{
		cfg:       cfg,
		path:      cfg.Path,
		fs:        cfg.FS,
		maxFile:   cfg.maxFileSize(),
		reqs:      make(chan *journalReq, journalQueue),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		live:      make(map[chain.Hash]*journalEntry),
		compactAt: journalCompactMinDead,
	}
	if j.fs == nil {
		j.fs = afero.NewOsFs()
	}
	entries, err := j.open()
	if err != nil {
		return nil, nil, err
	}
	go j.run()
	return j, entries, nil
}

// open reads and repairs the file. It runs before the goroutine starts.
func (j *Journal) open() ([]JournalEntry, error) {
	// Not O_APPEND: every write names its offset (WriteAt), so a write
	// cut back after a failure leaves no hole.
	f, err := j.fs.OpenFile(j.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mempool: open journal: %w", err)
	}
	j.f = f
	fail := func(err error) ([]JournalEntry, error) {
		j.f.Close()
		return nil, fmt.Errorf("mempool: open journal: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	size := st.Size()
	hdr, err := checkJournalHeader(f, size)
	if err != nil {
		return fail(err)
	}
	switch hdr {
	case headerMissing:
		// New, or torn while being created: start it afresh.
		if err := j.reset(); err != nil {
			return fail(err)
		}
		return nil, nil
	case headerForeign:
		aside := j.path + ".corrupt"
		f.Close()
		if err := j.fs.Rename(j.path, aside); err != nil {
			return nil, fmt.Errorf("mempool: journal %s is not a journal and cannot be moved aside: %w", j.path, err)
		}
		log.Errorw("own-tx journal is not a journal (bad magic or version); moved aside, starting empty",
			"path", j.path, "moved_to", aside)
		if j.f, err = j.fs.OpenFile(j.path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			return nil, fmt.Errorf("mempool: open journal: %w", err)
		}
		if err := j.reset(); err != nil {
			return fail(err)
		}
		return nil, nil
	}

	limit := min(size, j.maxFile)
	type loaded struct {
		id    chain.Hash
		entry *journalEntry
		JournalEntry
	}
	txs := make(map[chain.Hash]loaded)
	sc := scanJournal(f, limit, func(r journalRecord) {
		switch r.kind {
		case journalKindTx:
			txs[r.id] = loaded{r.id, &journalEntry{off: r.off, n: r.n, txSize: r.txSize},
				JournalEntry{Tx: r.tx, Added: r.added}}
		case journalKindRemove:
			for _, id := range r.ids {
				delete(txs, id)
			}
		}
	})
	if sc.ioErr != nil {
		return fail(sc.ioErr)
	}
	cut := size - sc.end
	if sc.err == nil && size > limit {
		sc.err = fmt.Errorf("file of %d bytes is over the bound of %d for MaxTxs %d, MaxBytes %d",
			size, limit, j.cfg.MaxTxs, j.cfg.MaxBytes)
	}
	j.size = sc.end

	// Oldest first; over the bounds (lowered since the file was written),
	// the newest are dropped, as an Append would have refused them.
	order := make([]loaded, 0, len(txs))
	for _, l := range txs {
		order = append(order, l)
	}
	slices.SortFunc(order, func(a, b loaded) int { return cmp.Compare(a.entry.off, b.entry.off) })
	entries := make([]JournalEntry, 0, len(order))
	dropped := 0
	for _, l := range order {
		size := l.entry.txSize
		if len(j.live) >= j.cfg.MaxTxs || j.liveTx+size > j.cfg.MaxBytes {
			dropped++
			continue
		}
		j.live[l.id] = l.entry
		j.liveRec += l.entry.n
		j.liveTx += size
		entries = append(entries, l.JournalEntry)
	}
	if sc.skipped > 0 || cut > 0 || dropped > 0 {
		log.Warnw("own-tx journal was damaged or over its bounds; repaired",
			"path", j.path, "txs", len(entries), "corrupt_records_skipped", sc.skipped,
			"bytes_cut", cut, "cut_reason", errString(sc.err), "over_bounds_dropped", dropped)
	}
	compacted := false
	if sc.skipped > 0 || dropped > 0 || j.deadBytes() >= max(j.liveRec, journalCompactMinDead) {
		// Rewrite: the skipped records must not be met again, and the
		// dropped txs must not come back. If that fails (a full disk),
		// the old file still loads to the same entries next time.
		if err := j.compact(); err != nil {
			log.Warnw("own-tx journal not rewritten after repair; keeping it", "path", j.path, "err", err)
		} else {
			compacted = true
		}
	}
	if cut > 0 && !compacted {
		// Appends go at j.size: nothing of the bad tail may stay after.
		if err := j.f.Truncate(j.size); err != nil {
			return fail(err)
		}
	}
	// Records of a previous run without Sync may sit in the page cache
	// only; a duplicate Append must not acknowledge on their account.
	if err := j.f.Sync(); err != nil {
		return fail(err)
	}
	log.Infow("own-tx journal opened", "path", j.path, "txs", len(entries), "bytes", j.size, "sync", j.cfg.Sync)
	return entries, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// reset makes j.f an empty journal: the header, synced, with the directory
// synced so the new file itself survives a power loss.
func (j *Journal) reset() error {
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	if _, err := j.f.WriteAt(journalHeader(), 0); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return err
	}
	j.size = int64(journalHeaderSize)
	return j.syncDir(filepath.Dir(j.path))
}

// syncDir makes a file created or renamed in dir durable. Only an
// operating-system directory has anything to sync.
func (j *Journal) syncDir(dir string) error {
	if _, ok := j.fs.(*afero.OsFs); !ok {
		return nil
	}
	return durable.SyncDir(dir)
}

func journalHeader() []byte {
	return binary.BigEndian.AppendUint32([]byte(journalMagic), journalVersion)
}

type headerState int

const (
	headerOK      headerState = iota
	headerMissing             // empty, or a torn prefix of a header
	headerForeign             // some other file
)

func checkJournalHeader(r io.ReaderAt, size int64) (headerState, error) {
	want := journalHeader()
	n := min(size, int64(len(want)))
	got := make([]byte, n)
	if _, err := r.ReadAt(got, 0); err != nil {
		return 0, err
	}
	switch {
	case string(got) != string(want[:n]):
		return headerForeign, nil
	case n < int64(len(want)):
		return headerMissing, nil
	}
	return headerOK, nil
}

// journalRecord is one record as scanJournal found it.
type journalRecord struct {
	kind   byte
	off    int64 // where its frame starts
	n      int64 // its size, frame included
	id     chain.Hash
	tx     *chain.Tx
	txSize int
	added  time.Time
	ids    []chain.Hash
}

// journalScanResult is what scanJournal found besides the records.
type journalScanResult struct {
	end     int64 // end of the last good record: the file is cut here
	skipped int   // corrupt records skipped
	err     error // why the scan stopped before the end, nil if it did not
	ioErr   error // a read failed: nothing may be cut
}

var (
	errTorn      = errors.New("torn record (file ends inside it)")
	errBadLength = errors.New("record length out of bounds")
	errBadCRC    = errors.New("record checksum mismatch")
)

// readJournalRecord reads the record at off in a file of size bytes into
// buf and returns its payload and its size with the frame.
func readJournalRecord(r io.ReaderAt, off, size int64, buf []byte) ([]byte, int64, error) {
	if size-off < journalFrameSize {
		return nil, 0, errTorn
	}
	frame := buf[:journalFrameSize]
	if _, err := r.ReadAt(frame, off); err != nil {
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(frame)
	if n == 0 || n > maxJournalPayload {
		return nil, 0, errBadLength
	}
	total := journalFrameSize + int64(n)
	if size-off < total {
		return nil, 0, errTorn
	}
	payload := buf[journalFrameSize:total]
	if _, err := r.ReadAt(payload, off+journalFrameSize); err != nil {
		return nil, 0, err
	}
	if journalChecksum(frame[:4], payload) != binary.BigEndian.Uint32(frame[4:]) {
		return nil, 0, errBadCRC
	}
	return payload, total, nil
}

func journalChecksum(length, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(length, journalCRC), journalCRC, payload)
}

// parseJournalPayload decodes a checksummed payload.
func parseJournalPayload(p []byte) (journalRecord, error) {
	switch p[0] {
	case journalKindTx:
		if len(p) < journalTxPrefix {
			return journalRecord{}, errors.New("tx record too short")
		}
		body := p[journalTxPrefix:]
		tx, err := chain.DecodeTx(body)
		if err != nil {
			return journalRecord{}, err
		}
		ms := int64(binary.BigEndian.Uint64(p[1:]))
		return journalRecord{kind: journalKindTx, id: sha256.Sum256(body), tx: tx,
			txSize: len(body), added: time.UnixMilli(ms)}, nil
	case journalKindRemove:
		if len(p) == 1 || (len(p)-1)%chain.HashSize != 0 {
			return journalRecord{}, errors.New("remove record of a bad length")
		}
		ids := make([]chain.Hash, (len(p)-1)/chain.HashSize)
		for i := range ids {
			copy(ids[i][:], p[1+i*chain.HashSize:])
		}
		return journalRecord{kind: journalKindRemove, ids: ids}, nil
	}
	return journalRecord{}, fmt.Errorf("unknown record kind %d", p[0])
}

// scanJournal reads the records of a journal of size bytes (its header
// already checked) and calls fn for each good one, in order. It stops at
// the first record it cannot trust, except that a record whose checksum
// fails is skipped when its length leads to a good record: the length was
// right and only the payload was damaged. A checksummed record whose
// payload does not decode (a kind from a later version) is skipped too. It
// never reads more than one record at a time into memory, and never panics.
func scanJournal(r io.ReaderAt, size int64, fn func(journalRecord)) journalScanResult {
	buf := make([]byte, maxJournalRecord)
	peek := make([]byte, maxJournalRecord)
	res := journalScanResult{end: int64(journalHeaderSize)}
	off := int64(journalHeaderSize)
	for off < size {
		payload, n, err := readJournalRecord(r, off, size, buf)
		if errors.Is(err, errBadCRC) {
			n = journalFrameSize + int64(binary.BigEndian.Uint32(buf))
			if off+n < size {
				if _, _, perr := readJournalRecord(r, off+n, size, peek); perr == nil {
					res.skipped++
					off += n
					res.end = off
					continue
				}
			}
		}
		if err != nil && !errors.Is(err, errTorn) && !errors.Is(err, errBadLength) && !errors.Is(err, errBadCRC) {
			res.ioErr = err
			break
		}
		if err != nil {
			res.err = fmt.Errorf("at offset %d: %w", off, err)
			break
		}
		rec, err := parseJournalPayload(payload)
		off += n
		res.end = off
		if err != nil {
			res.skipped++
			continue
		}
		rec.off, rec.n = off-n, n
		fn(rec)
	}
	return res
}

// Append records tx as accepted at now and returns once the record is
// written (and, with Sync, synced), or with the write's error. A
// transaction already tracked is not written again; Append then returns
// once its record is as durable as a new one would be. ctx bounds only the
// wait: a request already queued is still carried out.
func (j *Journal) Append(ctx context.Context, tx *chain.Tx, now time.Time) error {
	if tx == nil {
		return errors.New("mempool: journal: nil tx")
	}
	return j.do(ctx, &journalReq{kind: reqAppend, tx: tx, id: tx.ID(), added: now})
}

// Remove stops tracking the transactions ids (included in a block, dropped
// for good, or delivered): a remove record is written, so they do not come
// back after a restart. Ids not tracked are ignored. It returns once the
// journal has applied the removal (not synced: a removal lost to a power
// failure only brings back a transaction the node will drop again).
func (j *Journal) Remove(ctx context.Context, ids ...chain.Hash) error {
	if len(ids) == 0 {
		return nil
	}
	return j.do(ctx, &journalReq{kind: reqRemove, ids: slices.Clone(ids)})
}

// Retain stops tracking every transaction for which keep returns false and
// returns how many it removed. keep runs on the journal's goroutine, so
// the check and the removal are atomic with respect to Append: a
// transaction appended after keep said no is tracked anew. keep must be
// quick and must not call the Journal.
func (j *Journal) Retain(ctx context.Context, keep func(id chain.Hash) bool) (int, error) {
	r := &journalReq{kind: reqRetain, keep: keep}
	err := j.do(ctx, r)
	return r.removed, err
}

// Stats returns the journal's counts.
func (j *Journal) Stats(ctx context.Context) (JournalStats, error) {
	r := &journalReq{kind: reqStats}
	err := j.do(ctx, r)
	return r.stats, err
}

// Close writes what is queued, syncs the file and closes it, and returns
// the first error of those. Calls after the first return its result.
func (j *Journal) Close() error {
	j.closeOnce.Do(func() { close(j.quit) })
	<-j.done
	return j.closeErr
}

func (j *Journal) do(ctx context.Context, r *journalReq) error {
	r.done = make(chan error, 1)
	select {
	case j.reqs <- r:
	case <-j.done:
		return ErrJournalClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-j.done:
		// Sent after the goroutine's last drain, or answered just before
		// it ended: prefer the answer.
		select {
		case err := <-r.done:
			return err
		default:
			return ErrJournalClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the journal's goroutine.
func (j *Journal) run() {
	defer close(j.done)
	batch := make([]*journalReq, 0, journalQueue)
	for {
		select {
		case r := <-j.reqs:
			batch = j.collect(append(batch[:0], r))
			j.handle(batch)
		case <-j.quit:
			// Carry out what was queued before Close, then stop.
			for len(j.reqs) > 0 {
				batch = j.collect(batch[:0])
				j.handle(batch)
			}
			j.closeErr = j.f.Sync()
			if err := j.f.Close(); j.closeErr == nil {
				j.closeErr = err
			}
			return
		}
	}
}

// collect adds to batch the requests already waiting, up to the queue's
// size: the group commit.
func (j *Journal) collect(batch []*journalReq) []*journalReq {
	for len(batch) < journalQueue {
		select {
		case r := <-j.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// handle carries out one batch: requests are applied in order in memory
// and their records gathered into one buffer, written with one write(2) and
// synced once, and then every request is answered. A batch whose records
// would pass journalMaxBatchBytes is split.
func (j *Journal) handle(batch []*journalReq) {
	for len(batch) > 0 {
		n := j.apply(batch)
		j.flush(batch[:n])
		batch = batch[n:]
		if j.deadBytes() >= max(j.liveRec, j.compactAt) {
			if err := j.compact(); err != nil {
				// Try again once as many dead bytes again have gathered:
				// not after every batch while the disk is failing.
				j.compactAt = j.deadBytes() + journalCompactMinDead
				log.Errorw("own-tx journal compaction failed; keeping the old file", "path", j.path, "err", err)
			} else {
				j.compactAt = journalCompactMinDead
			}
		}
	}
}

// apply applies a prefix of batch in memory, encoding its records into
// j.buf, and returns the prefix's length (at least one). Appends' errors
// are set on their requests (err in done is sent by flush).
func (j *Journal) apply(batch []*journalReq) int {
	j.buf = j.buf[:0]
	for i, r := range batch {
		if i > 0 && len(j.buf) >= journalMaxBatchBytes {
			return i
		}
		switch r.kind {
		case reqAppend:
			if _, ok := j.live[r.id]; ok {
				continue // already tracked: answered with the batch
			}
			size := r.tx.Size()
			if len(j.live) >= j.cfg.MaxTxs || j.liveTx+size > j.cfg.MaxBytes {
				r.refused = true
				continue
			}
			start := len(j.buf)
			j.buf = appendJournalTx(j.buf, r.tx, r.added)
			e := &journalEntry{off: j.size + int64(start), n: int64(len(j.buf) - start), txSize: size}
			j.live[r.id] = e
			j.liveRec += e.n
			j.liveTx += size
			r.wrote = true
		case reqRemove:
			j.removeIDs(r.ids)
		case reqRetain:
			var dead []chain.Hash
			for id := range j.live {
				if !r.keep(id) {
					dead = append(dead, id)
				}
			}
			j.removeIDs(dead)
			r.removed = len(dead)
		case reqStats:
			r.stats = JournalStats{Txs: len(j.live), TxBytes: j.liveTx, FileBytes: j.size + int64(len(j.buf)),
				DeadBytes: j.size + int64(len(j.buf)) - int64(journalHeaderSize) - j.liveRec, Compactions: j.compactions}
		}
	}
	return len(batch)
}

// removeIDs stops tracking ids and encodes their remove records.
func (j *Journal) removeIDs(ids []chain.Hash) {
	var tracked []chain.Hash
	for _, id := range ids {
		if e, ok := j.live[id]; ok {
			delete(j.live, id)
			j.liveRec -= e.n
			j.liveTx -= e.txSize
			tracked = append(tracked, id)
		}
	}
	for len(tracked) > 0 {
		k := min(len(tracked), maxRemoveIDs)
		j.buf = appendJournalRemove(j.buf, tracked[:k])
		tracked = tracked[k:]
	}
}

// flush writes j.buf, syncs when an append needs it, and answers batch.
// If the write fails the file is cut back to where it was and the batch's
// new records are forgotten: their Appends fail and nothing half-written
// stays in the file's middle.
func (j *Journal) flush(batch []*journalReq) {
	var err error
	appends := false // an append waits for this batch's durability
	for _, r := range batch {
		appends = appends || r.kind == reqAppend && !r.refused
	}
	if len(j.buf) > 0 {
		if j.size+int64(len(j.buf)) > j.maxFile {
			err = fmt.Errorf("%w: file would pass %d bytes (compaction failing?)", ErrJournalFull, j.maxFile)
		} else if _, err = j.f.WriteAt(j.buf, j.size); err != nil {
			if terr := j.f.Truncate(j.size); terr != nil {
				log.Errorw("own-tx journal: cannot cut a failed write back", "path", j.path, "err", terr)
			}
		}
		if err != nil {
			j.forget(batch)
		} else {
			j.size += int64(len(j.buf))
		}
	}
	if err == nil && j.cfg.Sync && appends && (len(j.buf) > 0 || j.unsynced) {
		j.syncs++
		if err = j.f.Sync(); err != nil {
			// The records may or may not be on disk: the next append
			// (a client's retry included) syncs again.
			j.unsynced = true
		} else {
			j.unsynced = false
		}
	}
	if err != nil {
		log.Errorw("own-tx journal write failed", "path", j.path, "err", err)
	}
	for _, r := range batch {
		switch {
		case r.kind != reqAppend:
			r.done <- nil
		case r.refused:
			r.done <- ErrJournalFull
		default:
			r.done <- err
		}
	}
}

// forget undoes the new records of a batch whose write failed.
func (j *Journal) forget(batch []*journalReq) {
	for _, r := range batch {
		if !r.wrote {
			continue
		}
		if e, ok := j.live[r.id]; ok && e.off >= j.size {
			delete(j.live, r.id)
			j.liveRec -= e.n
			j.liveTx -= e.txSize
		}
	}
}

func (j *Journal) deadBytes() int64 { return j.size - int64(journalHeaderSize) - j.liveRec }

// appendJournalTx appends a tx record to b.
func appendJournalTx(b []byte, tx *chain.Tx, added time.Time) []byte {
	start := len(b)
	b = append(b, make([]byte, journalFrameSize)...)
	b = append(b, journalKindTx)
	b = binary.BigEndian.AppendUint64(b, uint64(added.UnixMilli()))
	b = tx.AppendEncode(b)
	return sealJournalRecord(b, start)
}

// appendJournalRemove appends a remove record of ids (at most
// maxRemoveIDs) to b.
func appendJournalRemove(b []byte, ids []chain.Hash) []byte {
	start := len(b)
	b = append(b, make([]byte, journalFrameSize)...)
	b = append(b, journalKindRemove)
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return sealJournalRecord(b, start)
}

// sealJournalRecord fills in the frame of the record that starts at start
// and runs to the end of b.
func sealJournalRecord(b []byte, start int) []byte {
	payload := b[start+journalFrameSize:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], journalChecksum(b[start:start+4], payload))
	return b
}

// compact rewrites the file with only the live tx records, oldest first:
// to a temp file in the same directory, synced, renamed over the journal,
// and the directory synced, so a crash at any point leaves the old file or
// the new one. A live record that no longer reads back intact is dropped
// and logged. On error the old file stays in use.
func (j *Journal) compact() (err error) {
	start := time.Now()
	dir := filepath.Dir(j.path)
	tmp, err := afero.TempFile(j.fs, dir, "."+filepath.Base(j.path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			_ = j.fs.Remove(tmp.Name())
		}
	}()
	type move struct {
		id chain.Hash
		e  *journalEntry
	}
	order := make([]move, 0, len(j.live))
	for id, e := range j.live {
		order = append(order, move{id, e})
	}
	slices.SortFunc(order, func(a, b move) int { return cmp.Compare(a.e.off, b.e.off) })
	if j.rbuf == nil {
		j.rbuf = make([]byte, maxJournalRecord)
	}
	w := bufio.NewWriterSize(tmp, 256<<10)
	if _, err = w.Write(journalHeader()); err != nil {
		return err
	}
	newOff := make([]int64, len(order))
	pos := int64(journalHeaderSize)
	var lost []chain.Hash
	for i, m := range order {
		rec := j.rbuf[:m.e.n]
		if _, err = j.f.ReadAt(rec, m.e.off); err != nil {
			return err
		}
		n := int64(binary.BigEndian.Uint32(rec))
		if journalFrameSize+n != m.e.n || journalChecksum(rec[:4], rec[journalFrameSize:]) != binary.BigEndian.Uint32(rec[4:]) {
			lost = append(lost, m.id)
			newOff[i] = -1
			continue
		}
		if _, err = w.Write(rec); err != nil {
			return err
		}
		newOff[i] = pos
		pos += m.e.n
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = j.fs.Rename(tmp.Name(), j.path); err != nil {
		return err
	}
	// From here the new file is the journal: switch to it whatever
	// happens to the directory sync.
	serr := j.syncDir(dir)
	old := j.f
	j.f = tmp
	old.Close()
	for i, m := range order {
		if newOff[i] < 0 {
			delete(j.live, m.id)
			j.liveRec -= m.e.n
			j.liveTx -= m.e.txSize
			continue
		}
		m.e.off = newOff[i]
	}
	oldSize := j.size
	j.size = pos
	j.compactions++
	if len(lost) > 0 {
		log.Errorw("own-tx journal: records damaged on disk dropped during compaction", "path", j.path, "txs", len(lost))
	}
	log.Debugw("own-tx journal compacted", "path", j.path, "txs", len(j.live), "bytes_before", oldSize,
		"bytes_after", j.size, "took", time.Since(start))
	if serr != nil {
		log.Warnw("own-tx journal: directory sync after compaction failed", "path", j.path, "err", serr)
	}
	return nil
}
