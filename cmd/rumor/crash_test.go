package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/testnet/keyfile"
	"github.com/rumor-relay/rumor/testnet/rpcclient"
)

// Shape of TestKillDashNineKeepsAcknowledgedTxs.
const (
	crashSenders  = 8                       // accounts submitting at once, one tx in flight each
	crashLoad     = 2500 * time.Millisecond // submitting before the kill
	crashInterval = "300ms"                 // block interval: several blocks, and txs pending at the kill
)

// TestKillDashNineKeepsAcknowledgedTxs: every transaction a node
// acknowledged over JSON-RPC survives kill -9 of the node process. A
// single-authority node (it produces blocks alone) takes signed
// transactions from crashSenders concurrent clients; it is SIGKILLed
// mid-load (no Close: no pool file is written), restarted on the same data
// dir (without its producer key, so what was pending stays pending while
// it is counted), and every tx_send that returned success must be pending
// or in a block; the store must open with a tip at least the last one
// seen, and a ban file, if any, must load. Two rounds on one data dir: the
// journal without fsync (the page cache is enough for kill -9), then with
// journal_sync. The node is this test binary run as `rumor node` (see
// TestMain), so under -race the node runs with the race detector too.
func TestKillDashNineKeepsAcknowledgedTxs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts node processes and kills them; skipped with -short")
	}
	dir := t.TempDir()
	if code := run([]string{"genesis", "--out", dir, "--accounts", "16", "--authorities", "1",
		"--block-interval", crashInterval, "--log-level", "warn"}); code != 0 {
		t.Fatalf("genesis: exit %d", code)
	}
	g, err := chain.LoadGenesis(filepath.Join(dir, "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]ed25519.PrivateKey, crashSenders)
	for i := range keys {
		if keys[i], err = keyfile.Load(filepath.Join(dir, "keys", fmt.Sprintf("account-%d.json", i))); err != nil {
			t.Fatal(err)
		}
	}
	nodeDir := filepath.Join(dir, "n0")
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	args := []string{"node", "--data-dir", nodeDir, "--genesis", filepath.Join(dir, "genesis.json"),
		"--producer-key", filepath.Join(dir, "keys", "authority-0.json"),
		"--listen", "/ip4/127.0.0.1/tcp/0", "--rpc-addr", "127.0.0.1:0",
		"--rpc-addr-file", filepath.Join(nodeDir, "rpc.addr"), "--metrics-addr", "", "--mdns=false",
		"--log-level", "warn"}

	for round, durable := range []bool{false, true} {
		if err := os.WriteFile(filepath.Join(nodeDir, ConfigFile),
			fmt.Appendf(nil, "[mempool]\njournal_sync = %v\n", durable), 0o600); err != nil {
			t.Fatal(err)
		}
		p := startNodeProcess(t, nodeDir, args)
		acked, tip, elapsed := submitUntilKilled(t, p, g, keys)
		if len(acked) == 0 || tip == 0 {
			t.Fatalf("round %d: no load before the kill (%d acks, tip %d)", round, len(acked), tip)
		}

		// Restarted without its producer key, so that what was pending
		// at the kill stays pending while it is counted.
		p = startNodeProcess(t, nodeDir, withoutProducer(args))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		head, err := p.client.ChainHead(ctx)
		if err != nil {
			t.Fatalf("round %d: chain_head after restart: %v", round, err)
		}
		if head.Height < tip {
			t.Fatalf("round %d: tip %d after restart, %d seen before the kill", round, head.Height, tip)
		}
		pending, included, lost := 0, 0, 0
		for _, id := range acked {
			st, err := p.client.GetTx(ctx, id)
			switch {
			case err != nil:
				t.Fatalf("round %d: tx_get: %v", round, err)
			case st.Status == "pending":
				pending++
			case st.Status == "included":
				included++
			default:
				lost++
			}
		}
		cancel()
		t.Logf("round %d (journal_sync %v): %d txs acknowledged in %v (%.0f/s), tip %d at the kill; after restart: %d included, %d pending, %d lost",
			round, durable, len(acked), elapsed.Round(time.Millisecond), float64(len(acked))/elapsed.Seconds(), tip, included, pending, lost)
		if lost > 0 {
			t.Fatalf("round %d: %d of %d acknowledged txs lost by kill -9", round, lost, len(acked))
		}
		if pending == 0 {
			t.Errorf("round %d: no acknowledged tx was pending at the kill: the test did not test the journal", round)
		}
		p.stop(t)
		checkBans(t, nodeDir)
	}
}

// withoutProducer returns args less --producer-key and its value.
func withoutProducer(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--producer-key" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// nodeProcess is a `rumor node` child.
type nodeProcess struct {
	cmd    *exec.Cmd
	client *rpcclient.Client
	done   chan struct{}
	log    *lockedBuffer
}

// lockedBuffer is a child's output: written by exec's copier, read by the
// test while the child may still run.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startNodeProcess starts the node and waits for its RPC address.
func startNodeProcess(t *testing.T, dir string, args []string) *nodeProcess {
	t.Helper()
	addrFile := filepath.Join(dir, "rpc.addr")
	os.Remove(addrFile)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), execMainEnv+"=1")
	out := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &nodeProcess{cmd: cmd, done: make(chan struct{}), log: out}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			p.client = rpcclient.New(rpcclient.NormalizeURL(strings.TrimSpace(string(b))), nil)
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("node exited during start-up: %v\n%s", cmd.ProcessState, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not serve RPC within 30 s:\n%s", out.String())
		}
	}
}

// stop ends the node with SIGTERM (a clean shutdown) and waits.
func (p *nodeProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("node did not stop on SIGTERM:\n%s", p.log.String())
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("node exited with %v:\n%s", p.cmd.ProcessState, p.log.String())
	}
}

// submitUntilKilled runs crashSenders clients, each sending its account's
// next transaction as soon as the last one was answered, SIGKILLs the node
// after crashLoad, and returns the ids of every tx_send that succeeded
// (answers that arrived as the node died included), the highest tip seen
// before the kill, and how long the load ran.
func submitUntilKilled(t *testing.T, p *nodeProcess, g *chain.Genesis, keys []ed25519.PrivateKey) ([]chain.Hash, uint64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu    sync.Mutex
		acked []chain.Hash
		wg    sync.WaitGroup
	)
	to := chain.AddressOf(keys[0])
	for _, k := range keys {
		from := chain.AddressOf(k)
		acct, err := p.client.Account(ctx, from)
		if err != nil {
			t.Fatalf("account_get: %v", err)
		}
		wg.Go(func() {
			for nonce := acct.PendingNonce; ctx.Err() == nil; nonce++ {
				tx := &chain.Tx{From: from, To: to, Amount: 1, Fee: g.MinFee + 1, Nonce: nonce, Payload: make([]byte, 100)}
				tx.Sign(g.ChainID, k)
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				res, err := p.client.SendTx(cctx, tx.Encode())
				ccancel()
				var rerr *rpcclient.Error
				switch {
				case errors.As(err, &rerr) && rerr.Reason() == "pool-full":
					// The sender's 64 pending slots are taken (a fast
					// machine outruns the blocks): wait for one, resend.
					time.Sleep(50 * time.Millisecond)
					nonce--
					continue
				case rpcclient.IsAppError(err):
					t.Errorf("tx_send refused nonce %d: %v", nonce, err)
					return
				case err != nil:
					return // the node is gone; this tx's fate is unknown
				}
				if res.ID != tx.ID() {
					t.Errorf("tx_send answered id %s for %s", res.ID.Short(), tx.ID().Short())
				}
				mu.Lock()
				acked = append(acked, res.ID)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	var tip uint64
	for time.Since(start) < crashLoad {
		if h, err := p.client.ChainHead(ctx); err == nil {
			tip = max(tip, h.Height)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if h, err := p.client.ChainHead(ctx); err == nil {
		tip = max(tip, h.Height)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	<-p.done
	wg.Wait()
	if st := p.cmd.ProcessState; st == nil || st.Exited() {
		t.Fatalf("node was not killed by the signal: %v\n%s", st, p.log.String())
	}
	return acked, tip, elapsed
}

// checkBans: a ban file the node left, if any, loads without being set
// aside as corrupt.
func checkBans(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, node.BanFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return
	}
	l, err := peers.OpenBanList(path)
	if err != nil {
		t.Fatalf("ban file: %v", err)
	}
	l.Close()
	if _, err := os.Stat(path + ".corrupt"); err == nil {
		t.Fatal("ban file was corrupt after kill -9")
	}
}
