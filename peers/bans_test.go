package peers

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// openBans opens the ban list at path and closes it when the test ends.
func openBans(t testing.TB, path string) *BanList {
	t.Helper()
	l, err := OpenBanList(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// banFile returns the bytes of a ban file holding n bans, as we write it.
func banFile(t *testing.T, n int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bans.json")
	l := openBans(t, path)
	for i := range n {
		l.Ban(pid(i), t0.Add(time.Hour), "x")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// gate is a file writer whose first write blocks until release is closed,
// standing in for a slow disk; every write is counted and then done for
// real.
type gate struct {
	writes  atomic.Int32
	entered chan struct{} // closed when the first write starts
	release chan struct{} // close to let the first write finish
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) write(path string, data []byte) error {
	if g.writes.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return writeBanFile(path, data)
}

// TestBanListBadFileStartsEmpty: whatever is in the way of decoding the
// file (garbage, a file cut short by a crash of some other writer, one far
// bigger than we write, a bad peer id), the list opens empty without an
// error and the bad file is kept aside, replacing an older one.
func TestBanListBadFileStartsEmpty(t *testing.T) {
	good := banFile(t, 3)
	oversized := append([]byte("["), bytes.Repeat([]byte(" "), maxBanFileSize)...)
	oversized = append(oversized, ']')
	cases := map[string][]byte{
		"garbage":     []byte("{not json"),
		"truncated":   good[:len(good)/2],
		"cut at zero": good[:1],
		"trailing":    append(append([]byte{}, good...), good...),
		"oversized":   oversized,
		"wrong type":  []byte(`{"peer":1}`),
		"bad peer id": []byte(`[{"peer":"not-a-peer","until":"2030-01-01T00:00:00Z"}]`),
		"bad time":    []byte(`[{"peer":"` + pid(1).String() + `","until":"soon"}]`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "bans.json")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := writeFile(path+corruptSuffix, "an older bad file"); err != nil {
				t.Fatal(err)
			}
			l := openBans(t, path)
			if n := len(l.List(time.Time{})); n != 0 {
				t.Fatalf("%d bans loaded from a bad file", n)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("bad file still in place: %v", err)
			}
			aside, err := os.ReadFile(path + corruptSuffix)
			if err != nil || !bytes.Equal(aside, data) {
				t.Fatalf("bad file not moved aside intact (err %v)", err)
			}
			// The list works and writes a good file again.
			l.Ban(pid(7), t0.Add(time.Hour), "x")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if !openBans(t, path).IsBanned(pid(7), t0) {
				t.Fatal("ban not persisted after recovering from a bad file")
			}
		})
	}
}

// TestBanListUnreadableIsError: a file that exists but cannot be read is
// an operator's problem to fix, not a list to throw away.
func TestBanListUnreadableIsError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBanList(path); err == nil {
		t.Fatal("a directory in place of the ban file was accepted")
	}
	if _, err := os.Stat(path + corruptSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an unreadable file was moved aside")
	}
}

// TestBanListStormCoalesces: 10,000 bans arriving while the disk is slow
// cost two writes (the one in progress and one with everything since), not
// one per ban, and the file holds every ban after Close.
func TestBanListStormCoalesces(t *testing.T) {
	const storm = 10_000
	ids := make([]peer.ID, storm)
	for i := range ids {
		ids[i] = pid(i)
	}
	path := filepath.Join(t.TempDir(), "bans.json")
	g := newGate()
	l, err := openBanList(path, g.write)
	if err != nil {
		t.Fatal(err)
	}
	l.Ban(ids[0], t0.Add(time.Hour), "storm")
	<-g.entered
	for _, id := range ids[1:] {
		l.Ban(id, t0.Add(time.Hour), "storm")
	}
	close(g.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := g.writes.Load(); n > 2 {
		t.Fatalf("%d bans cost %d file writes, want at most 2", storm, n)
	}
	re := openBans(t, path)
	if n := len(re.List(t0)); n != storm {
		t.Fatalf("reopened list holds %d bans, want %d", n, storm)
	}
	for _, id := range ids {
		if !re.IsBanned(id, t0) {
			t.Fatalf("%s lost", id)
		}
	}
}

// TestIsBannedDuringSlowWrite: while the persister is stuck writing, Ban,
// Unban, IsBanned, List and the gater all answer. (A regression hangs here
// until go test's -timeout.)
func TestIsBannedDuringSlowWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans.json")
	g := newGate()
	l, err := openBanList(path, g.write)
	if err != nil {
		t.Fatal(err)
	}
	l.Ban(pid(1), t0.Add(time.Hour), "x")
	<-g.entered
	gt := &Gater{Bans: l, Now: func() time.Time { return t0 }}
	if !l.IsBanned(pid(1), t0) || gt.InterceptPeerDial(pid(1)) {
		t.Fatal("banned peer not refused during a write")
	}
	l.Ban(pid(2), t0.Add(time.Hour), "x")
	l.Unban(pid(1))
	if l.IsBanned(pid(1), t0) || !l.IsBanned(pid(2), t0) || len(l.List(t0)) != 1 {
		t.Fatal("changes made during a write not visible")
	}
	close(g.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	re := openBans(t, path)
	if re.IsBanned(pid(1), t0) || !re.IsBanned(pid(2), t0) {
		t.Fatal("the last state was not written at Close")
	}
}

// TestBanListFlush: Flush puts the current list on disk while the list
// stays open, retries after a failed write, and leaves no temp files.
func TestBanListFlush(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bans.json")
	var fail atomic.Bool
	fail.Store(true)
	l, err := openBanList(path, func(p string, data []byte) error {
		if fail.Load() {
			return errors.New("disk full")
		}
		return writeBanFile(p, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Ban(pid(1), t0.Add(time.Hour), "x")
	if err := l.Flush(); err == nil {
		t.Fatal("a failed write was not reported")
	}
	fail.Store(false)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	list, err := decodeBans(data)
	if err != nil || len(list) != 1 || list[0].Peer != pid(1) {
		t.Fatalf("flushed file = %v, %v", list, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("dir holds %s, want only bans.json", strings.Join(names, ", "))
	}
}

// TestBanListMemoryOnly: with no path there is no file and no goroutine,
// and Flush and Close have nothing to do.
func TestBanListMemoryOnly(t *testing.T) {
	l, err := OpenBanList("")
	if err != nil {
		t.Fatal(err)
	}
	l.Ban(pid(1), t0.Add(time.Hour), "x")
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !l.IsBanned(pid(1), t0) {
		t.Fatal("ban lost")
	}
}

// FuzzOpenBanList: no file contents make OpenBanList fail or panic; what
// it loads is valid and bounded, and what it cannot decode is moved aside.
func FuzzOpenBanList(f *testing.F) {
	valid := `[{"peer":"` + pid(1).String() + `","until":"2030-01-01T00:00:00Z","reason":"x"}]`
	for _, s := range []string{"", "null", "[]", "{", valid, valid[:len(valid)/2], valid + valid,
		`[{"peer":"","until":"2030-01-01T00:00:00Z"}]`, `[{"until":"0001-01-01T00:00:00Z"}]`, `[1,2,3]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "bans.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := OpenBanList(path)
		if err != nil {
			t.Fatalf("readable file refused: %v", err)
		}
		defer l.Close()
		got := l.List(time.Time{})
		if len(got) > MaxBans {
			t.Fatalf("%d bans loaded, cap %d", len(got), MaxBans)
		}
		for _, b := range got {
			if b.Peer.Validate() != nil {
				t.Fatalf("invalid peer id %q loaded", b.Peer)
			}
		}
		if _, derr := decodeBans(data); derr != nil {
			if len(got) != 0 {
				t.Fatal("bans loaded from an undecodable file")
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("undecodable file left in place")
			}
		}
	})
}
