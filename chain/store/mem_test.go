package store

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// maxHeapPerStore is what TestMemoryPerStore allows an empty in-memory
// store: 100 of them must fit a simulation process with room for the
// nodes' blocks (Open's doc comment states the measured figure).
const maxHeapPerStore = 16 << 20

// TestMemoryPerStore opens 20 in-memory stores and measures the Go heap
// they add (runtime.MemStats.HeapAlloc delta / 20), the resident memory
// (RSS delta / 20, Linux) and goroutines per store.
func TestMemoryPerStore(t *testing.T) {
	const n = 20
	f := newFixture(t, 100, 4)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := rss()
	g0 := runtime.NumGoroutine()
	stores := make([]*Store, n)
	for i := range stores {
		s, err := Open(f.g, Options{})
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perHeap := float64(after.HeapAlloc-before.HeapAlloc) / n
	perRSS := float64(rss()-rss0) / n
	perG := float64(runtime.NumGoroutine()-g0) / n
	for _, s := range stores {
		s.Close()
	}
	const mib = 1 << 20
	t.Logf("per in-memory store: heap %.2f MiB, RSS %.2f MiB, %.0f goroutines (race detector: %v)",
		perHeap/mib, perRSS/mib, perG, raceEnabled)
	if !raceEnabled && perHeap > maxHeapPerStore {
		t.Fatalf("an empty in-memory store takes %.1f MiB of heap, limit %d MiB", perHeap/mib, maxHeapPerStore/mib)
	}
}

// rss returns the resident set size in bytes (0 where /proc is missing).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestMemTablesSpreadFlushes checks that in-memory stores of one genesis
// get memtables of different sizes within [size, size + memMemTableSize x
// memFlushSpread],
// so that a simulation's nodes, which write the same blocks, do not all
// flush at the same height.
func TestMemTablesSpreadFlushes(t *testing.T) {
	f := newFixture(t, 100, 4)
	base := memTableSizeFor(f.g)
	sizes := make(map[int64]bool)
	for range 50 {
		got := badgerOptions(f.g, Options{}).MemTableSize
		if top := base + int64(memMemTableSize*memFlushSpread); got < base || got > top {
			t.Fatalf("memtable %d outside [%d, %d]", got, base, top)
		}
		sizes[got] = true
	}
	// 50 draws over 9 steps of 64 KiB: all equal would mean no spread.
	if len(sizes) < 4 {
		t.Fatalf("50 stores got only %d memtable sizes", len(sizes))
	}
	if disk := badgerOptions(f.g, Options{Dir: t.TempDir()}).MemTableSize; disk != diskMemTableSize(f.g) {
		t.Fatalf("on-disk memtable %d, want %d (no spread on disk)", disk, diskMemTableSize(f.g))
	}
}
