package store

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	golog "github.com/ipfs/go-log/v2"
)

// lockedBuffer collects log output and signals when the marker arrives.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	marked chan struct{}
}

const logMarker = "rumor/store-test-marker"

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bytes.Contains(p, []byte(logMarker)) && l.marked != nil {
		close(l.marked)
		l.marked = nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) expectMarker() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marked = make(chan struct{})
	return l.marked
}

func (l *lockedBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// TestBadgerLogsRouted: Badger's messages reach go-log under "rumor/badger",
// and its INFO lines (open, replay, flush) only at debug level, so a node
// prints nothing from Badger at go-log's usual levels.
func TestBadgerLogsRouted(t *testing.T) {
	f := newFixture(t, 2, 1)
	r := golog.NewPipeReader()
	var buf lockedBuffer
	copied := make(chan struct{})
	go func() { io.Copy(&buf, r); close(copied) }()
	marker := golog.Logger(logMarker)
	defer golog.SetLogLevel("rumor/badger", golog.GetConfig().Level.String())
	dir := t.TempDir()
	capture := func(level string) string {
		t.Helper()
		if err := golog.SetLogLevel("rumor/badger", level); err != nil {
			t.Fatal(err)
		}
		buf.take()
		s, err := Open(f.g, Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Log lines arrive in order: once a marker logged after the store
		// closed has come through, everything before it has too.
		seen := buf.expectMarker()
		marker.Error("marker")
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			t.Fatal("marker never came through the pipe")
		}
		return buf.take()
	}
	if out := capture("info"); strings.Contains(out, `"rumor/badger"`) {
		t.Fatalf("badger logged at info level:\n%s", out)
	}
	if out := capture("debug"); !strings.Contains(out, `"rumor/badger"`) {
		t.Fatalf("no badger messages at debug level:\n%s", out)
	}
	r.Close()
	<-copied
}
