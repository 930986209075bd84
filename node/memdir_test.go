package node

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// TestMemDataDirRestart: a node on a memory data dir that is closed (its
// pool lost, as in a crash: no pool file) and started again on the same
// dir keeps its chain and its acknowledged own txs, which come back
// tracked and unconfirmed; the dir stays usable after each Close; a dir of
// another genesis, or one beside a data dir on disk, is refused.
func TestMemDataDirRestart(t *testing.T) {
	g := testGenesis(100 * time.Millisecond)
	dir, err := NewMemDataDir(g)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cfg := testConfig(t, g)
	cfg.DataDir, cfg.InMemory = "", true
	cfg.Mempool.PersistPath = ""
	cfg.Mempool.JournalPath = DefaultJournalFile
	tx := signedTx(g, 0, 1, 0, 10, 0)

	var height uint64
	prod := cfg
	prod.ProducerKey = authorityKey()
	startStopOpts(t, prod, []Option{WithMemDataDir(dir)}, func(n *Node) {
		eventually(t, 10*time.Second, "three blocks", func() bool {
			h, _ := n.Store().Tip()
			return h.Height >= 3
		})
	})
	h, _ := dir.Store().Tip()
	height = h.Height
	startStopOpts(t, cfg, []Option{WithMemDataDir(dir)}, func(n *Node) {
		if h, _ := n.Store().Tip(); h.Height != height {
			t.Fatalf("restarted at height %d, want %d", h.Height, height)
		}
		if _, rerr := rpcCall(t, n.RPCAddr(), "tx_send", hex.EncodeToString(tx.Encode())); rerr != nil {
			t.Fatalf("tx_send: %+v", rerr)
		}
	})
	startStopOpts(t, cfg, []Option{WithMemDataDir(dir)}, func(n *Node) {
		if !n.Pool().Has(tx.ID()) {
			t.Fatal("acknowledged tx lost in the restart")
		}
		st, ok := txGetOwn(t, n, tx.ID())
		if !ok || !st.Own || st.Confirmed || st.Status != "pending" {
			t.Fatalf("tx_get after the restart: %+v (known %v), want own, pending, unconfirmed", st, ok)
		}
	})

	other := testGenesis(time.Second)
	other.ChainID += "-other"
	if _, err := New(testConfigInMem(t, other), WithMemDataDir(dir)); !errors.Is(err, ErrConfig) {
		t.Fatalf("a dir of another genesis: %v, want ErrConfig", err)
	}
	disk := cfg
	disk.DataDir, disk.InMemory = t.TempDir(), false
	if _, err := New(disk, WithMemDataDir(dir)); !errors.Is(err, ErrConfig) {
		t.Fatalf("beside a data dir on disk: %v, want ErrConfig", err)
	}
}

func testConfigInMem(t *testing.T, g *chain.Genesis) Config {
	cfg := testConfig(t, g)
	cfg.DataDir, cfg.InMemory = "", true
	return cfg
}
