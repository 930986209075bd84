package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/rumor-relay/rumor/chain"
)

// Environment of the helper process started by TestKillDashNine.
const (
	envCrashDir   = "RUMOR_STORE_CRASH_DIR"   // store directory; set only in the child
	envCrashSync  = "RUMOR_STORE_CRASH_SYNC"  // "1": SyncWrites
	envCrashLarge = "RUMOR_STORE_CRASH_LARGE" // "1": every commit through the journal
)

// crashAccounts is the number of funded accounts the helper moves funds
// between.
const crashAccounts = 8

// TestHelperProcess is not a test: TestKillDashNine runs the test binary
// again with -test.run=^TestHelperProcess$ and envCrashDir set. It opens the
// on-disk store and commits blocks forever (every fifth step a one-block
// reorg), printing the tip height to stdout after each AddBlock that moved
// the tip has returned: an acknowledgement. The parent kills it with
// SIGKILL at an arbitrary point.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process of TestKillDashNine")
	}
	f := newFixture(t, crashAccounts, 2)
	s, err := Open(f.g, Options{Dir: dir, SyncWrites: os.Getenv(envCrashSync) == "1"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	s.forceLarge = os.Getenv(envCrashLarge) == "1"
	payload := make([]byte, 2000)
	for i := 0; ; i++ {
		tip, _ := s.Tip()
		var blocks []*chain.Block
		if i%5 == 4 && tip.Height > 0 {
			// Reorg: two empty blocks on the tip's parent replace the tip.
			parent, ok := s.Header(tip.Parent)
			if !ok {
				fmt.Fprintln(os.Stderr, "parent of tip missing")
				os.Exit(2)
			}
			s1 := f.block(parent, i+1)
			blocks = append(blocks, s1, f.block(&s1.Header, i+1))
		} else {
			var txs []*chain.Tx
			for from := range crashAccounts { // one tx per sender: nonces from the tip state
				nonce := s.Account(f.addr(from)).Nonce
				payload[0] = byte(i)
				txs = append(txs, f.tx(from, f.addr((from+1)%crashAccounts), uint64(i+from+1), 1, nonce, payload))
			}
			blocks = append(blocks, f.block(tip, 0, txs...))
		}
		for _, b := range blocks {
			res, err := s.AddBlock(b, f.now)
			if err != nil {
				fmt.Fprintln(os.Stderr, "add:", err)
				os.Exit(2)
			}
			if res.Status == Connected {
				fmt.Println(b.Header.Height)
			}
		}
	}
}

// TestKillDashNine: an acknowledged block survives kill -9. A child
// process commits blocks and acknowledges each; the parent kills it with
// SIGKILL mid-stream, reopens the store and checks that the tip is at least
// the last acknowledged height, every best-chain block is readable with
// valid links, the indexes match, and the state equals a replay of the
// blocks. Three rounds on the same directory: plain, synced, and with
// every commit going through the journal (so some kills land mid-journal).
func TestKillDashNine(t *testing.T) {
	if os.Getenv(envCrashDir) != "" {
		t.Skip("inside the helper process")
	}
	dir := t.TempDir()
	f := newFixture(t, crashAccounts, 2)
	rounds := []struct{ sync, large bool }{{false, false}, {true, false}, {false, true}}
	for r, round := range rounds {
		acks := 15 + 7*r // vary where the kill lands
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashDir+"="+dir,
			envCrashSync+"="+boolEnv(round.sync), envCrashLarge+"="+boolEnv(round.large))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		last, n := uint64(0), 0
		for n < acks && sc.Scan() {
			if h, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				last, n = h, n+1
			}
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		// Acknowledgements already in the pipe count too.
		for sc.Scan() {
			if h, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
				last, n = max(last, h), n+1
			}
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Exited() {
			t.Fatalf("round %d: child was not killed by a signal: %v (after %d acks)", r, err, n)
		}
		s, err := Open(f.g, Options{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", r, err)
		}
		tip, _ := s.Tip()
		if tip.Height < last {
			t.Fatalf("round %d: tip height %d after reopen, last acknowledged %d", r, tip.Height, last)
		}
		blocks := checkConsistent(t, f.g, s)
		if journal := countPrefix(t, s, prefixJournalP); journal != 0 {
			t.Fatalf("round %d: %d journal parts left after Open", r, journal)
		}
		t.Logf("round %d (sync %v, journal %v): %d acks, last %d, tip %d, %d blocks replayed",
			r, round.sync, round.large, n, last, tip.Height, len(blocks))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// TestJournalReplay stops a large commit right after its journal went live
// (as a crash would), reopens, and checks that Open completed the commit.
// A journal that never went live (parts, no header) is discarded.
func TestJournalReplay(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, 3, 2)
	s, err := Open(f.g, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := s.Tip()
	a1 := f.block(g, 0, f.tx(0, f.addr(1), 10, 1, 0, nil))
	b1 := f.block(g, 1, f.tx(1, f.addr(2), 10, 1, 0, nil))
	b2 := f.block(&b1.Header, 1, f.tx(2, f.addr(0), 10, 1, 0, nil))
	f.mustAdd(s, a1, Connected)
	f.mustAdd(s, b1, SideChain)
	before := snapshot(t, s)
	s.forceLarge, s.crashAfterJournal = true, true
	if _, err := s.AddBlock(b2, f.now); !errors.Is(err, errSimulatedCrash) {
		t.Fatalf("AddBlock: %v", err)
	}
	sameState(t, "journal written, not applied", snapshot(t, s), before)
	if _, err := s.AddBlock(f.block(&a1.Header, 0), f.now); !errors.Is(err, errSimulatedCrash) {
		t.Fatalf("a broken store accepted a block: %v", err)
	}
	s.Close()

	s, err = Open(f.g, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, id := s.Tip(); id != b2.ID() {
		t.Fatal("journal not replayed: tip is not b2")
	}
	assertBlocks(t, "best chain", checkConsistent(t, f.g, s), b1, b2)
	if countPrefix(t, s, prefixJournalP) != 0 || countPrefix(t, s, prefixJournal) != 0 {
		t.Fatal("journal left behind")
	}
	// Parts without a header: a crash while writing the journal.
	afterReplay := snapshot(t, s)
	bogus := []keyedOp{{key: keyAccount(f.addr(0)), op: op{val: encodeAccount(chain.Account{Balance: 1})}}}
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(keyJournalPart(0), encodeJournal(bogus)[0])
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = f.open(Options{Dir: dir})
	sameState(t, "dead journal ignored", snapshot(t, s), afterReplay)
	if countPrefix(t, s, prefixJournalP) != 0 {
		t.Fatal("dead journal parts left behind")
	}
}
