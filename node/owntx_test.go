package node

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/mempool"
)

// journalNodeConfig is a node with an on-disk store in dir, the own-tx
// journal on and no pool file: a restart stands for a crash, where Close
// never saved the pool.
func journalNodeConfig(t *testing.T, g *chain.Genesis, dir string) Config {
	cfg := testConfig(t, g)
	cfg.DataDir = dir
	cfg.InMemory = false
	cfg.Mempool.PersistPath = ""
	cfg.Mempool.JournalPath = DefaultJournalFile
	return cfg
}

// startStop runs fn on a started node and closes it, failing on errors.
func startStop(t *testing.T, cfg Config, fn func(n *Node)) {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	fn(n)
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestOwnTxJournalReplay: what tx_send acknowledged comes back after a
// restart that lost the pool (executable and queued txs, and a tx a peer
// sent before the client did); what it refused does not; txs a block
// included while they were journaled are dropped from the journal on the
// next replay, and the sweep drops txs the pool no longer holds.
func TestOwnTxJournalReplay(t *testing.T) {
	g := testGenesis(200 * time.Millisecond)
	dir := t.TempDir()
	cfg := journalNodeConfig(t, g, dir)

	a0, a1 := signedTx(g, 0, 1, 0, 10, 0), signedTx(g, 0, 1, 1, 10, 0)
	queued := signedTx(g, 2, 1, 3, 10, 0) // nonce gap: held, not announced
	known := signedTx(g, 3, 1, 0, 10, 0)  // in the pool before the client sends it
	bad := signedTx(g, 4, 1, 0, 10, 0)
	bad.Fee++ // breaks the signature
	acked := []*chain.Tx{a0, a1, queued, known}

	startStop(t, cfg, func(n *Node) {
		if res := n.Pool().Add(known, time.Now()); !res.Code.Held() {
			t.Fatalf("adding the peer's tx: %v", res.Code)
		}
		for _, tx := range acked {
			if _, rerr := rpcCall(t, n.RPCAddr(), "tx_send", hex.EncodeToString(tx.Encode())); rerr != nil {
				t.Fatalf("tx_send: %+v", rerr)
			}
		}
		if _, rerr := rpcCall(t, n.RPCAddr(), "tx_send", hex.EncodeToString(bad.Encode())); rerr == nil {
			t.Fatal("bad tx accepted")
		}
	})

	// Restarted as a producer: the replayed txs are back, then mined.
	cfg.ProducerKey = authorityKey()
	startStop(t, cfg, func(n *Node) {
		for _, tx := range acked {
			if !n.Pool().Has(tx.ID()) && !inChain(n, tx) {
				t.Fatalf("acknowledged tx nonce %d lost in the restart", tx.Nonce)
			}
		}
		if n.Pool().Has(bad.ID()) {
			t.Fatal("a refused tx came back")
		}
		eventually(t, 10*time.Second, "the replayed txs in a block", func() bool {
			return inChain(n, a0) && inChain(n, a1) && inChain(n, known)
		})
		// No sweep ran yet (journalSweepInterval): the mined txs are
		// still journaled, for the next replay to drop.
	})

	cfg.ProducerKey = nil
	startStop(t, cfg, func(n *Node) {
		st, err := n.own.j.Stats(context.Background())
		if err != nil || st.Txs != 1 {
			t.Fatalf("journal after a replay with 3 txs in the chain: %+v, %v; want only the queued tx", st, err)
		}
		if !n.Pool().Has(queued.ID()) {
			t.Fatal("queued tx lost")
		}
		// The sweep drops what the pool let go of (here: expired).
		n.Pool().Expire(time.Now().Add(n.Pool().Config().TTL + time.Minute))
		n.own.sweep(context.Background())
		if st, _ := n.own.j.Stats(context.Background()); st.Txs != 0 {
			t.Fatalf("sweep left %d txs", st.Txs)
		}
	})
	_, entries, err := mempool.OpenJournal(mempool.JournalConfig{Path: filepath.Join(dir, DefaultJournalFile)})
	if err != nil || len(entries) != 0 {
		t.Fatalf("journal file after the sweep: %d entries, %v", len(entries), err)
	}
}

func inChain(n *Node, tx *chain.Tx) bool {
	_, ok := n.Store().TxLocation(tx.ID())
	return ok
}

// TestOwnTxJournalOff: without a JournalPath, or with an in-memory chain,
// no journal is kept and tx_send goes straight to the relay.
func TestOwnTxJournalOff(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g) // InMemory
	cfg.Mempool.JournalPath = DefaultJournalFile
	n := startNode(t, cfg)
	if n.own != nil {
		t.Fatal("journal kept for an in-memory chain")
	}
	if _, ok := (&Config{DataDir: "/x", Mempool: mempool.Config{}}).journalConfig(n.Pool()); ok {
		t.Fatal("journal kept without a path")
	}
	jc, ok := (&Config{DataDir: "/x", Mempool: mempool.Config{JournalPath: "j", JournalSync: true}}).journalConfig(n.Pool())
	if !ok || jc.Path != filepath.Join("/x", "j") || !jc.Sync || jc.MaxTxs != n.Pool().Config().MaxTxs {
		t.Fatalf("journal config %+v", jc)
	}
}
