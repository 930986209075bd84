package mempool

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// filledPool returns a pool with executable and queued txs of several
// senders, added at different times.
func filledPool(t *testing.T) *fixture {
	f := newFixture(t, Config{TTL: time.Hour})
	for i := 1; i <= 5; i++ {
		f.fund(i, 1_000_000)
		for n := range 4 {
			f.p.Add(mkTx(txSpec{from: i, nonce: uint64(n), fee: uint64(3 + n), amount: 1, payload: 10 * n}), t0.Add(time.Duration(i*n)*time.Minute))
		}
		f.p.Add(tx(i, 6, 9), t0) // queued
	}
	if s := f.p.Stats(); s.Count != 25 || s.Queued != 5 {
		t.Fatalf("fill: %+v", s)
	}
	return f
}

func TestSaveLoadRoundTrip(t *testing.T) {
	f := filledPool(t)
	path := filepath.Join(t.TempDir(), "mempool.dat")
	if err := f.p.Save(path); err != nil {
		t.Fatal(err)
	}
	g, err := New(f.p.Config(), f.g, f.st)
	if err != nil {
		t.Fatal(err)
	}
	n, err := g.Load(path, t0.Add(10*time.Minute))
	if err != nil || n != 25 {
		t.Fatalf("Load = %d, %v", n, err)
	}
	if !mapsEqual(f.p.snapshot(), g.snapshot()) {
		t.Fatal("reloaded pool differs")
	}
	if err := g.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
	// Arrival times survived: the same txs expire at the same moment.
	at := t0.Add(time.Hour + 8*time.Minute)
	if a, b := f.p.Expire(at), g.Expire(at); len(a) == 0 || !sameIDs(a, b) {
		t.Fatalf("expiry after reload differs: %d vs %d", len(a), len(b))
	}
	// Saving again replaces the file atomically; no temp files remain.
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("%d files in the directory, want 1", len(entries))
	}
}

func mapsEqual(a, b map[chain.Hash]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestLoadSkipsExpiredAndRevalidates(t *testing.T) {
	f := newFixture(t, Config{TTL: time.Hour})
	f.fund(1, 1000)
	good := tx(1, 0, 5)
	old := tx(1, 1, 5)
	forged := tx(1, 2, 5)
	forged.Sig[0] ^= 1
	future := tx(1, 3, 5)
	recs := []fileRecord{
		{Added: t0, Tx: good},
		{Added: t0.Add(-2 * time.Hour), Tx: old}, // expired at t0
		{Added: t0, Tx: forged},                  // rejected by Add
		{Added: t0.Add(time.Hour), Tx: future},   // from the future: stamped now, but queued after the gap
	}
	path := filepath.Join(t.TempDir(), "m.dat")
	if err := os.WriteFile(path, encodeFile(recs), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := f.p.Load(path, t0)
	if err != nil || n != 2 {
		t.Fatalf("Load = %d, %v; want 2 (good and future)", n, err)
	}
	wantHeld(t, f.p, true, good)
	wantHeld(t, f.p, false, future)
	wantGone(t, f.p, old, forged)
	if got := f.p.Expire(t0.Add(time.Hour)); !sameIDs(got, idsOf(good, future)) {
		t.Fatal("a future arrival time was not clamped to now")
	}
}

func TestLoadBadFiles(t *testing.T) {
	f := filledPool(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "mempool.dat")
	if err := f.p.Save(path); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	fresh := func() *Pool {
		p, err := New(Config{MaxBytes: 1 << 16}, f.g, f.st)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wrongVersion := slices.Clone(good)
	wrongVersion[len(fileMagic)+3] = 2
	flipped := slices.Clone(good)
	flipped[len(good)/2] ^= 1
	cases := map[string][]byte{
		"empty":         nil,
		"garbage":       bytes.Repeat([]byte("garbage!"), 100),
		"wrong magic":   append([]byte("notapool"), good[8:]...),
		"wrong version": wrongVersion,
		"flipped bit":   flipped,
		"too large":     make([]byte, 2<<16+fileSlack+1),
	}
	for cut := 1; cut < len(good); cut += 97 {
		cases[fmt.Sprintf("truncated by %d", cut)] = good[:len(good)-cut]
	}
	for name, b := range cases {
		p := fresh()
		n, err := p.Load(write("bad.dat", b), t0)
		if !errors.Is(err, ErrBadFile) || n != 0 || p.Stats().Count != 0 {
			t.Errorf("%s: Load = %d, %v; want ErrBadFile and nothing added", name, n, err)
		}
	}
	if _, err := fresh().Load(filepath.Join(dir, "missing"), t0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := f.p.Save(filepath.Join(dir, "no", "such", "dir", "m.dat")); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

func TestDecodeFileStrict(t *testing.T) {
	recs := []fileRecord{{Added: t0, Tx: tx(1, 0, 5)}, {Added: t0.Add(time.Second), Tx: mkTx(txSpec{from: 2, fee: 3, payload: 300})}}
	good := encodeFile(recs)
	got, err := decodeFile(good)
	if err != nil || len(got) != 2 || got[1].Tx.ID() != recs[1].Tx.ID() || !got[1].Added.Equal(recs[1].Added) {
		t.Fatalf("decode: %v", err)
	}
	body := good[:len(good)-sha256.Size]
	resum := func(b []byte) []byte {
		s := sha256.Sum256(b)
		return append(slices.Clone(b), s[:]...)
	}
	// Valid checksum, bad structure: each must fail in the parser.
	countAt := fileHeaderSize
	cases := map[string][]byte{
		"count too high":         resum(append(append(slices.Clone(body[:countAt]), 3), body[countAt+1:]...)),
		"non-minimal count":      resum(append(append(slices.Clone(body[:countAt]), 0x82, 0x00), body[countAt+1:]...)),
		"trailing byte":          resum(append(slices.Clone(body), 0)),
		"record cut":             resum(body[:len(body)-1]),
		"huge claimed count":     resum(append(append(slices.Clone(body[:countAt]), 0xff, 0xff, 0xff, 0xff, 0x0f), body[countAt+1:]...)),
		"zero records, trailing": resum(append(append(slices.Clone(body[:countAt]), 0), body[countAt+1:]...)),
	}
	for name, b := range cases {
		if _, err := decodeFile(b); !errors.Is(err, ErrBadFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := decodeFile(encodeFile(nil)); err != nil {
		t.Errorf("empty pool file: %v", err)
	}
}

// FuzzDecodeFile: the pool file decoder never panics, fails only with
// ErrBadFile, and accepts exactly the canonical encoding of what it
// returns. Each input is also tried with a valid checksum appended, so the
// fuzzer reaches the record parser.
func FuzzDecodeFile(f *testing.F) {
	recs := []fileRecord{{Added: t0, Tx: tx(1, 0, 5)}, {Added: t0, Tx: mkTx(txSpec{from: 2, fee: 3, payload: 40})}}
	good := encodeFile(recs)
	f.Add(good)
	f.Add(good[:len(good)-sha256.Size])
	f.Add(encodeFile(nil))
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(b []byte) {
			got, err := decodeFile(b)
			if err != nil {
				if !errors.Is(err, ErrBadFile) {
					t.Fatalf("error does not wrap ErrBadFile: %v", err)
				}
				return
			}
			if re := encodeFile(got); !bytes.Equal(re, b) {
				t.Fatalf("decoded file does not re-encode to its input")
			}
		}
		check(data)
		s := sha256.Sum256(data)
		check(append(slices.Clone(data), s[:]...))
	})
}
