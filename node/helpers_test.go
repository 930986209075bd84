package node

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

const (
	testChainID = "rumor-node-test"
	testSeed    = "node-test-seed"
)

// testGenesis returns a testnet genesis with 8 funded accounts and one
// authority (TestnetAuthorityKey(testSeed, 0)).
func testGenesis(interval time.Duration) *chain.Genesis {
	return chain.NewTestnetGenesis(testChainID, testSeed, 8, 1, interval, time.Now().Add(-time.Second))
}

func authorityKey() ed25519.PrivateKey { return chain.TestnetAuthorityKey(testSeed, 0) }

// testConfig is a node on loopback TCP with an in-memory store, RPC on a
// free port, no mDNS and no metrics.
func testConfig(t testing.TB, g *chain.Genesis) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Genesis = g
	cfg.InMemory = true
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	cfg.RPCAddr = "127.0.0.1:0"
	return cfg
}

// signedTx builds a transfer from testnet account from to account to.
func signedTx(g *chain.Genesis, from, to int, nonce, fee uint64, payload int) *chain.Tx {
	k := chain.TestnetAccountKey(testSeed, from)
	tx := &chain.Tx{
		From:   chain.AddressOf(k),
		To:     chain.AddressOf(chain.TestnetAccountKey(testSeed, to)),
		Amount: 1,
		Fee:    fee,
		Nonce:  nonce,
	}
	if payload > 0 {
		tx.Payload = make([]byte, payload)
	}
	tx.Sign(g.ChainID, k)
	return tx
}

// startNode creates and starts a node, closing it when the test ends.
func startNode(t testing.TB, cfg Config, opts ...Option) *Node {
	t.Helper()
	n, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

// eventually polls cond every tick until it holds or timeout passes. It is
// for conditions with no event to wait on (mesh membership, peer counts).
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
