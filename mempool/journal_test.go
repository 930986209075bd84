package mempool

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/afero"

	"github.com/rumor-relay/rumor/chain"
)

var bg = context.Background()

// openJournal opens a journal in a fresh or given directory and closes it
// at the end of the test.
func openJournal(t testing.TB, cfg JournalConfig) (*Journal, []JournalEntry) {
	t.Helper()
	j, entries, err := OpenJournal(cfg)
	if err != nil {
		t.Fatalf("OpenJournal: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j, entries
}

func journalPath(t testing.TB) string { return filepath.Join(t.TempDir(), "owntx.journal") }

// journalTxs returns n distinct signed txs of one sender, nonces 0..n-1,
// each with payload bytes of payload.
func journalTxs(n, payload int) []*chain.Tx {
	out := make([]*chain.Tx, n)
	for i := range out {
		out[i] = mkTx(txSpec{from: 1, to: 2, nonce: uint64(i), fee: 10, amount: 1, payload: payload})
	}
	return out
}

func mustAppend(t testing.TB, j *Journal, txs ...*chain.Tx) {
	t.Helper()
	for i, tx := range txs {
		if err := j.Append(bg, tx, t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func entryIDs(es []JournalEntry) []chain.Hash {
	out := make([]chain.Hash, len(es))
	for i, e := range es {
		out[i] = e.Tx.ID()
	}
	return out
}

func reopen(t testing.TB, j *Journal, cfg JournalConfig) (*Journal, []JournalEntry) {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openJournal(t, cfg)
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// recordOffsets returns where each record of a clean journal file starts,
// and the file's bytes.
func recordOffsets(t testing.TB, path string) ([]int64, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	sc := scanJournal(bytes.NewReader(b), int64(len(b)), func(r journalRecord) { offs = append(offs, r.off) })
	if sc.err != nil || sc.skipped != 0 || sc.end != int64(len(b)) {
		t.Fatalf("journal file not clean: %+v", sc)
	}
	return offs, b
}

func TestJournalAppendRemoveReopen(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t)}
	j, entries := openJournal(t, cfg)
	if len(entries) != 0 {
		t.Fatalf("new journal has %d entries", len(entries))
	}
	txs := journalTxs(5, 20)
	mustAppend(t, j, txs...)
	if err := j.Remove(bg, txs[1].ID(), chain.Hash{7}); err != nil { // an untracked id is ignored
		t.Fatal(err)
	}
	j, entries = reopen(t, j, cfg)
	want := idsOf(txs[0], txs[2], txs[3], txs[4])
	if got := entryIDs(entries); !slicesEqual(got, want) {
		t.Fatalf("reopened entries %v, want %v (oldest first)", got, want)
	}
	for i, e := range entries {
		if at := t0.Add(time.Duration([]int{0, 2, 3, 4}[i]) * time.Millisecond); !e.Added.Equal(at) {
			t.Fatalf("entry %d added %v, want %v", i, e.Added, at)
		}
		if !bytes.Equal(e.Tx.Encode(), []*chain.Tx{txs[0], txs[2], txs[3], txs[4]}[i].Encode()) {
			t.Fatalf("entry %d differs from what was appended", i)
		}
	}
	// A removed tx appended again is tracked again, at its new place.
	mustAppend(t, j, txs[1])
	_, entries = reopen(t, j, cfg)
	if got := entryIDs(entries); !slicesEqual(got, append(want, txs[1].ID())) {
		t.Fatalf("after re-append: %v", got)
	}
}

// keepEveryTenth removes all of txs from j but every tenth, which it
// returns.
func keepEveryTenth(t testing.TB, j *Journal, txs []*chain.Tx) []*chain.Tx {
	t.Helper()
	var keep []*chain.Tx
	for i, tx := range txs {
		if i%10 == 0 {
			keep = append(keep, tx)
			continue
		}
		if err := j.Remove(bg, tx.ID()); err != nil {
			t.Fatal(err)
		}
	}
	return keep
}

func slicesEqual(a, b []chain.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestJournalDuplicateAppendWritesOnce(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t)}
	j, _ := openJournal(t, cfg)
	tx := journalTxs(1, 0)[0]
	mustAppend(t, j, tx)
	s1, _ := j.Stats(bg)
	mustAppend(t, j, tx)
	s2, _ := j.Stats(bg)
	if s1.FileBytes != s2.FileBytes || s2.Txs != 1 || s2.TxBytes != tx.Size() {
		t.Fatalf("duplicate append: %+v then %+v", s1, s2)
	}
	// Emptied, a small file is not rewritten: dead bytes must reach
	// journalCompactMinDead first.
	if err := j.Remove(bg, tx.ID()); err != nil {
		t.Fatal(err)
	}
	if s3, _ := j.Stats(bg); s3.Compactions != 0 || s3.Txs != 0 || s3.FileBytes <= s2.FileBytes {
		t.Fatalf("after removing the only tx: %+v", s3)
	}
}

// TestJournalTornTail: a file cut anywhere inside its last record (a write
// torn by a crash) loads the records before it, is cut back to them, and
// takes appends again.
func TestJournalTornTail(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t)}
	j, _ := openJournal(t, cfg)
	txs := journalTxs(4, 30)
	mustAppend(t, j, txs...)
	j.Close()
	offs, full := recordOffsets(t, cfg.Path)
	last := offs[len(offs)-1]
	n := int64(len(full)) - last
	for _, cut := range []int64{last, last + 1, last + journalFrameSize - 1, last + journalFrameSize,
		last + journalFrameSize + 1, last + n/2, last + n - 1} {
		if err := os.WriteFile(cfg.Path, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		j, entries := openJournal(t, cfg)
		if got := entryIDs(entries); !slicesEqual(got, idsOf(txs[:3]...)) {
			t.Fatalf("cut at %d: entries %d, want the 3 before the torn record", cut, len(got))
		}
		if sz := fileSize(t, cfg.Path); sz != last {
			t.Fatalf("cut at %d: file is %d bytes after open, want it cut back to %d", cut, sz, last)
		}
		mustAppend(t, j, txs[3])
		_, entries = reopen(t, j, cfg)
		if len(entries) != 4 {
			t.Fatalf("cut at %d: %d entries after appending again", cut, len(entries))
		}
		j.Close()
	}
	// A header torn while the file was created is a new journal.
	if err := os.WriteFile(cfg.Path, full[:5], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, entries := openJournal(t, cfg); len(entries) != 0 {
		t.Fatalf("torn header: %d entries", len(entries))
	}
	if _, err := os.Stat(cfg.Path + ".corrupt"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a torn header was moved aside: %v", err)
	}
}

// TestJournalCorruptMiddle: a flipped bit in a record's payload loses that
// record only (its length leads to a good record); a damaged length field
// cuts the file there. Either way the file is repaired on open, so the next
// open finds it clean.
func TestJournalCorruptMiddle(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t)}
	j, _ := openJournal(t, cfg)
	txs := journalTxs(5, 30)
	mustAppend(t, j, txs...)
	j.Close()
	offs, full := recordOffsets(t, cfg.Path)

	for _, tc := range []struct {
		name string
		at   int64 // byte to damage
		want []*chain.Tx
	}{
		{"payload bit", offs[2] + journalFrameSize + 40, []*chain.Tx{txs[0], txs[1], txs[3], txs[4]}},
		{"checksum bit", offs[2] + 5, []*chain.Tx{txs[0], txs[1], txs[3], txs[4]}},
		{"length byte", offs[2] + 2, []*chain.Tx{txs[0], txs[1]}},
		{"last record", offs[4] + journalFrameSize + 3, txs[:4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(full)
			b[tc.at] ^= 0x10
			if err := os.WriteFile(cfg.Path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			j, entries := openJournal(t, cfg)
			if got := entryIDs(entries); !slicesEqual(got, idsOf(tc.want...)) {
				t.Fatalf("entries %d, want %d", len(got), len(tc.want))
			}
			j.Close()
			recordOffsets(t, cfg.Path) // clean after the repair
			_, entries = openJournal(t, cfg)
			if len(entries) != len(tc.want) {
				t.Fatalf("second open: %d entries", len(entries))
			}
		})
	}
}

func TestJournalForeignFileMovedAside(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t)}
	junk := []byte("this is not a journal, but someone's notes\n")
	if err := os.WriteFile(cfg.Path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	j, entries := openJournal(t, cfg)
	if len(entries) != 0 {
		t.Fatalf("%d entries from junk", len(entries))
	}
	if b, err := os.ReadFile(cfg.Path + ".corrupt"); err != nil || !bytes.Equal(b, junk) {
		t.Fatalf("junk not moved aside intact: %v", err)
	}
	tx := journalTxs(1, 0)[0]
	mustAppend(t, j, tx)
	if _, entries = reopen(t, j, cfg); len(entries) != 1 {
		t.Fatalf("fresh journal after junk: %d entries", len(entries))
	}
	// A journal of a later version is not read either.
	_, b := recordOffsets(t, cfg.Path)
	b[len(journalMagic)+3]++
	if err := os.WriteFile(cfg.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, entries = openJournal(t, cfg); len(entries) != 0 {
		t.Fatalf("unknown version read: %d entries", len(entries))
	}
}

// TestJournalCompaction: once dead records outweigh live ones and pass
// journalCompactMinDead, the file is rewritten with only the live records:
// it shrinks, no temp file stays, and a reopen finds exactly the live set.
func TestJournalCompaction(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t)}
	j, _ := openJournal(t, cfg)
	const n, payload = 120, 16 << 10 // ~2 MiB of records
	txs := journalTxs(n, payload)
	mustAppend(t, j, txs...)
	before, _ := j.Stats(bg)
	if before.Compactions != 0 || before.Txs != n {
		t.Fatalf("before removals: %+v", before)
	}
	// Remove all but every tenth: dead passes live and 1 MiB.
	keep := keepEveryTenth(t, j, txs)
	after, _ := j.Stats(bg)
	liveRec := int64(after.TxBytes + after.Txs*journalTxOverhead)
	if after.Compactions == 0 || after.Txs != len(keep) || after.DeadBytes >= max(liveRec, journalCompactMinDead) ||
		after.FileBytes != int64(journalHeaderSize)+liveRec+after.DeadBytes || after.FileBytes != fileSize(t, cfg.Path) {
		t.Fatalf("after removals: %+v (before %+v)", after, before)
	}
	// Appends after a compaction land in the new file.
	extra := mkTx(txSpec{from: 3, to: 2, nonce: 0, fee: 10, amount: 1})
	mustAppend(t, j, extra)
	_, entries := reopen(t, j, cfg)
	if got := entryIDs(entries); !slicesEqual(got, append(idsOf(keep...), extra.ID())) {
		t.Fatalf("after compaction: %d entries, want %d", len(got), len(keep)+1)
	}
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Path), ".*tmp"))
	if len(names) != 0 {
		t.Fatalf("temp files left: %v", names)
	}
	// Retain removes by predicate, and compacts the same way.
	j, _ = openJournal(t, cfg)
	removed, err := j.Retain(bg, func(id chain.Hash) bool { return id == extra.ID() })
	if err != nil || removed != len(keep) {
		t.Fatalf("Retain removed %d, %v; want %d", removed, err, len(keep))
	}
	_, entries = reopen(t, j, cfg)
	if len(entries) != 1 || entries[0].Tx.ID() != extra.ID() {
		t.Fatalf("after Retain: %d entries", len(entries))
	}
}

// TestJournalBounds: Append refuses past MaxTxs or MaxBytes until removals
// make room; a file holding more than the bounds of the opening config
// (lowered since) loads the oldest that fit and is rewritten without the
// rest; a file past the size bound is cut there.
func TestJournalBounds(t *testing.T) {
	txs := journalTxs(6, 100)
	size := txs[0].Size()

	cfg := JournalConfig{Path: journalPath(t), MaxTxs: 3}
	j, _ := openJournal(t, cfg)
	mustAppend(t, j, txs[:3]...)
	if err := j.Append(bg, txs[3], t0); !errors.Is(err, ErrJournalFull) {
		t.Fatalf("4th append with MaxTxs 3: %v", err)
	}
	mustAppend(t, j, txs[0]) // already tracked: no room needed
	if err := j.Remove(bg, txs[0].ID()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, txs[3])
	j.Close()

	cfg = JournalConfig{Path: journalPath(t), MaxBytes: 2*size + size/2}
	j, _ = openJournal(t, cfg)
	mustAppend(t, j, txs[:2]...)
	if err := j.Append(bg, txs[2], t0); !errors.Is(err, ErrJournalFull) {
		t.Fatalf("append past MaxBytes: %v", err)
	}
	j.Close()

	// Written with room for 6, opened with room for 4.
	cfg = JournalConfig{Path: journalPath(t)}
	j, _ = openJournal(t, cfg)
	mustAppend(t, j, txs...)
	cfg.MaxTxs = 4
	j, entries := reopen(t, j, cfg)
	if got := entryIDs(entries); !slicesEqual(got, idsOf(txs[:4]...)) {
		t.Fatalf("lowered MaxTxs: %d entries, want the oldest 4", len(got))
	}
	cfg.MaxTxs = 0
	if _, entries = reopen(t, j, cfg); len(entries) != 4 {
		t.Fatalf("dropped entries came back: %d", len(entries))
	}

	// A file past the size bound: remove records of unknown ids fill it,
	// and a tx record after the bound is not read.
	cfg = JournalConfig{Path: journalPath(t), MaxTxs: 1, MaxBytes: 1024}
	b := journalHeader()
	ids := make([]chain.Hash, maxRemoveIDs)
	for int64(len(b)) < cfg.withDefaults().maxFileSize() {
		b = appendJournalRemove(b, ids)
	}
	b = appendJournalTx(b, txs[0], t0)
	if err := os.WriteFile(cfg.Path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	j, entries = openJournal(t, cfg)
	if len(entries) != 0 {
		t.Fatalf("read a record past the size bound")
	}
	if st, _ := j.Stats(bg); st.FileBytes > cfg.withDefaults().maxFileSize() || st.FileBytes != fileSize(t, cfg.Path) {
		t.Fatalf("oversize file not cut: %+v, %d on disk", st, fileSize(t, cfg.Path))
	}
	if err := j.Append(bg, txs[0], t0); err != nil {
		t.Fatalf("append after cutting an oversize file: %v", err)
	}

	// A record's length is bounded by the largest tx the pool takes.
	if maxJournalPayload != journalTxPrefix+chain.MaxTxSize {
		t.Fatal("record bound drifted from the pool's tx bound")
	}
	big := appendJournalTx(journalHeader(), mkTx(txSpec{from: 4, nonce: 0, fee: 10, payload: chain.MaxPayloadSize}), t0)
	if sc := scanJournal(bytes.NewReader(big), int64(len(big)), func(journalRecord) {}); sc.err != nil || sc.end != int64(len(big)) {
		t.Fatalf("largest tx record not read back: %+v", sc)
	}
}

// TestJournalGroupCommit: concurrent appends with Sync share writes and
// fsyncs, and each returns only once its record is in the file.
func TestJournalGroupCommit(t *testing.T) {
	cfg := JournalConfig{Path: journalPath(t), Sync: true}
	j, _ := openJournal(t, cfg)
	const n = 200
	txs := make([]*chain.Tx, n)
	for i := range txs {
		txs[i] = mkTx(txSpec{from: 10 + i%20, to: 2, nonce: uint64(i / 20), fee: 10, amount: 1})
	}
	var wg sync.WaitGroup
	for _, tx := range txs {
		wg.Go(func() {
			if err := j.Append(bg, tx, t0); err != nil {
				t.Error(err)
				return
			}
			// Acknowledged: a reader of the file sees it now.
			b, err := os.ReadFile(cfg.Path)
			if err != nil || !bytes.Contains(b, tx.Encode()) {
				t.Errorf("acknowledged tx not in the file: %v", err)
			}
		})
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if j.syncs >= n || j.syncs == 0 {
		t.Fatalf("%d fsyncs for %d concurrent appends: no group commit", j.syncs, n)
	}
	t.Logf("%d appends, %d write+fsync batches", n, j.syncs)
	if err := j.Append(bg, txs[0], t0); !errors.Is(err, ErrJournalClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, entries := openJournal(t, cfg); len(entries) != n {
		t.Fatalf("%d entries after reopen, want %d", len(entries), n)
	}
}

func BenchmarkJournalAppend(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := "nosync"
		if durable {
			name = "sync"
		}
		b.Run(name, func(b *testing.B) {
			txs := make([]*chain.Tx, 4096)
			for i := range txs {
				txs[i] = mkTx(txSpec{from: 10 + i%64, to: 2, nonce: uint64(i / 64), fee: 10, amount: 1, payload: 100})
			}
			j, _ := openJournal(b, JournalConfig{Path: journalPath(b), Sync: durable})
			var next atomic.Int64
			b.SetParallelism(16) // concurrent RPC clients
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1) - 1)
					tx := txs[i%len(txs)]
					if i%len(txs) == len(txs)-1 {
						_, _ = j.Retain(bg, func(chain.Hash) bool { return false })
					}
					if err := j.Append(bg, tx, t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// FuzzJournalLoad: no file content (after a valid header) makes
// OpenJournal fail or panic; what it loads is within the bounds; the
// repair it does is complete (a second open finds the same entries in a
// file of the same size) and the journal takes appends afterwards.
func FuzzJournalLoad(f *testing.F) {
	txs := journalTxs(4, 24)
	var body []byte
	body = appendJournalTx(body, txs[0], t0)
	body = appendJournalTx(body, txs[1], t0.Add(time.Second))
	body = appendJournalRemove(body, idsOf(txs[0], txs[3]))
	body = appendJournalTx(body, txs[2], t0)
	body = appendJournalTx(body, txs[0], t0) // re-appended after its removal
	f.Add(body)
	f.Add(body[:len(body)-7])
	flipped := bytes.Clone(body)
	flipped[journalFrameSize+20] ^= 1
	f.Add(flipped)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5})
	f.Add(appendJournalRemove(nil, []chain.Hash{{1}}))
	f.Fuzz(fuzzJournalBody)
}

func fuzzJournalBody(t *testing.T, data []byte) {
	cfg := JournalConfig{MaxTxs: 3, MaxBytes: 4096}
	extra := mkTx(txSpec{from: 5, nonce: 0, fee: 10, amount: 1})
	{
		// The scanner alone: records in order, inside the input.
		whole := append(journalHeader(), data...)
		prev := int64(-1)
		sc := scanJournal(bytes.NewReader(whole), int64(len(whole)), func(r journalRecord) {
			if r.off <= prev || r.off+r.n > int64(len(whole)) || r.n > maxJournalRecord {
				t.Fatalf("record at %d of %d bytes in a %d-byte file", r.off, r.n, len(whole))
			}
			prev = r.off
		})
		if sc.end > int64(len(whole)) || sc.ioErr != nil {
			t.Fatalf("scan: %+v", sc)
		}

		cfg := cfg
		cfg.Path = filepath.Join(t.TempDir(), "j")
		if err := os.WriteFile(cfg.Path, whole, 0o600); err != nil {
			t.Fatal(err)
		}
		j, entries, err := OpenJournal(cfg)
		if err != nil {
			t.Fatalf("OpenJournal: %v", err)
		}
		total := 0
		for _, e := range entries {
			total += e.Tx.Size()
		}
		if len(entries) > cfg.MaxTxs || total > cfg.MaxBytes {
			t.Fatalf("%d entries of %d bytes past the bounds", len(entries), total)
		}
		j.Close()
		size := fileSize(t, cfg.Path)
		j, again, err := OpenJournal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slicesEqual(entryIDs(entries), entryIDs(again)) || fileSize(t, cfg.Path) != size {
			t.Fatalf("second open differs: %d vs %d entries", len(entries), len(again))
		}
		if err := j.Remove(bg, entryIDs(entries)...); err != nil {
			t.Fatal(err)
		}
		if err := j.Append(bg, extra, t0); err != nil {
			t.Fatalf("append after load: %v", err)
		}
		j.Close()
		j, last, err := OpenJournal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		j.Close()
		if len(last) != 1 || last[0].Tx.ID() != extra.ID() {
			t.Fatalf("after remove and append: %d entries", len(last))
		}
	}
}

// TestJournalInMemoryFS: a journal kept in an in-memory file system (a
// simulated node's data dir) survives its Journal the way a file on disk
// does, compactions included, and touches no real file.
func TestJournalInMemoryFS(t *testing.T) {
	fs := afero.NewMemMapFs()
	dir := t.TempDir()
	cfg := JournalConfig{Path: filepath.Join(dir, "owntx.journal"), FS: fs}
	j, _ := openJournal(t, cfg)
	const n, payload = 120, 16 << 10 // enough removals to compact
	txs := journalTxs(n, payload)
	mustAppend(t, j, txs...)
	keep := keepEveryTenth(t, j, txs)
	st, _ := j.Stats(bg)
	if st.Compactions == 0 {
		t.Fatalf("no compaction: %+v", st)
	}
	_, entries := reopen(t, j, cfg)
	if got := entryIDs(entries); !slicesEqual(got, idsOf(keep...)) {
		t.Fatalf("reopened from memory: %d entries, want %d", len(got), len(keep))
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("files on disk: %v", names)
	}
	if fi, err := fs.Stat(cfg.Path); err != nil || fi.Size() != st.FileBytes {
		t.Fatalf("in-memory file: %v, %v (stats %+v)", fi, err, st)
	}
}
