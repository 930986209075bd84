package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay"
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
	startStopOpts(t, cfg, nil, fn)
}

// startStopOpts is startStop with node options.
func startStopOpts(t *testing.T, cfg Config, opts []Option, fn func(n *Node)) {
	t.Helper()
	n, err := New(cfg, opts...)
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
// no journal is kept (own txs are still tracked for delivery).
func TestOwnTxJournalOff(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g) // InMemory
	cfg.Mempool.JournalPath = DefaultJournalFile
	n := startNode(t, cfg)
	if n.own == nil || n.own.j != nil {
		t.Fatal("journal kept for an in-memory chain (or no own-tx tracking)")
	}
	if _, ok := (&Config{DataDir: "/x", Mempool: mempool.Config{}}).journalConfig(n.Pool(), nil); ok {
		t.Fatal("journal kept without a path")
	}
	jc, ok := (&Config{DataDir: "/x", Mempool: mempool.Config{JournalPath: "j", JournalSync: true}}).journalConfig(n.Pool(), nil)
	if !ok || jc.Path != filepath.Join("/x", "j") || !jc.Sync || jc.MaxTxs != n.Pool().Config().MaxTxs {
		t.Fatalf("journal config %+v", jc)
	}
}

// ownTxGet is what the delivery tests read of tx_get.
type ownTxGet struct {
	Status    string `json:"status"`
	Own       bool   `json:"own"`
	SeenBy    *int   `json:"seen_by"`
	Confirmed bool   `json:"confirmed"`
}

// seen returns seen_by, -1 when absent.
func (g ownTxGet) seen() int {
	if g.SeenBy == nil {
		return -1
	}
	return *g.SeenBy
}

// txGetOwn calls tx_get on n; false when it answers null.
func txGetOwn(t *testing.T, n *Node, id chain.Hash) (ownTxGet, bool) {
	t.Helper()
	res, rerr := rpcCall(t, n.RPCAddr(), "tx_get", id)
	if rerr != nil {
		t.Fatalf("tx_get: %+v", rerr)
	}
	var g ownTxGet
	if string(res) == "null" {
		return g, false
	}
	if err := json.Unmarshal(res, &g); err != nil {
		t.Fatalf("tx_get %s: %v", res, err)
	}
	return g, true
}

// sendTx submits tx to n over tx_send.
func sendTx(t *testing.T, n *Node, tx *chain.Tx) {
	t.Helper()
	if _, rerr := rpcCall(t, n.RPCAddr(), "tx_send", hex.EncodeToString(tx.Encode())); rerr != nil {
		t.Fatalf("tx_send: %+v", rerr)
	}
}

// peersOf starts count nodes that know only n's addresses.
func peersOf(t *testing.T, n *Node, g *chain.Genesis, count int) []*Node {
	t.Helper()
	var seed []string
	for _, a := range n.Addrs() {
		seed = append(seed, a.String())
	}
	var out []*Node
	for range count {
		cfg := testConfig(t, g)
		cfg.Bootstrap = seed
		out = append(out, startNode(t, cfg))
	}
	return out
}

// metricValue scrapes n's /metrics for the sample line of name; "" when
// absent.
func metricValue(t *testing.T, n *Node, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + n.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestOwnTxDeliveryConfirmed: a tx submitted at A, whose two peers B and
// C fetch it, is reported by A's tx_get as own, seen by 2 peers and
// confirmed, and leaves the unconfirmed count; a tx A got from a peer is
// not own at A, and is own at the node it was submitted to. Without the
// relay's held hook wired to the tracker, A never learns that its peers
// hold the tx and the first wait times out.
func TestOwnTxDeliveryConfirmed(t *testing.T) {
	g := testGenesis(time.Hour) // no producer: txs stay pending
	a := startNode(t, testConfig(t, g))
	peers := peersOf(t, a, g, 2)
	b := peers[0]
	eventually(t, 20*time.Second, "B and C in A's tx mesh", func() bool {
		tx, _ := a.MeshPeers()
		return len(tx) >= 2
	})

	tx := signedTx(g, 0, 1, 0, 10, 0)
	sendTx(t, a, tx)
	if st, ok := txGetOwn(t, a, tx.ID()); !ok || !st.Own || st.Status != "pending" || st.seen() < 0 || st.seen() > DeliveryConfirmPeers {
		t.Fatalf("tx_get at A right after tx_send: %+v %v", st, ok)
	}
	eventually(t, 20*time.Second, "A's tx confirmed delivered", func() bool {
		st, _ := txGetOwn(t, a, tx.ID())
		return st.Confirmed
	})
	st, _ := txGetOwn(t, a, tx.ID())
	if !st.Own || st.seen() != DeliveryConfirmPeers || st.Status != "pending" {
		t.Fatalf("tx_get at A once delivered: %+v", st)
	}
	if n := a.own.Unconfirmed(); n != 0 {
		t.Fatalf("%d own txs unconfirmed at A", n)
	}

	// A tx from a peer: own where it was submitted, not at A.
	other := signedTx(g, 1, 2, 0, 10, 0)
	sendTx(t, b, other)
	eventually(t, 20*time.Second, "B's tx in A's pool", func() bool { return a.Pool().Has(other.ID()) })
	if st, _ := txGetOwn(t, a, other.ID()); st.Own || st.SeenBy != nil || st.Confirmed {
		t.Fatalf("a peer's tx at A: %+v", st)
	}
	if st, _ := txGetOwn(t, b, other.ID()); !st.Own || st.seen() < 0 {
		t.Fatalf("B's own tx at B: %+v", st)
	}
}

// TestOwnTxDeliveryRestart: a node with no peers accepts a tx, which no
// peer can confirm; closed and reopened on its data dir, it still reports
// the tx own and unconfirmed (tx_get, rumor_own_txs_unconfirmed), and
// confirms it once two peers connect and fetch it. Without tracking the
// journal's txs on replay, tx_get after the restart reports own: false.
func TestOwnTxDeliveryRestart(t *testing.T) {
	g := testGenesis(time.Hour)
	dir := t.TempDir()
	cfg := journalNodeConfig(t, g, dir)
	cfg.MetricsAddr = "127.0.0.1:0"
	tx := signedTx(g, 0, 1, 0, 10, 0)
	unconfirmed := func(n *Node, when string) {
		t.Helper()
		st, ok := txGetOwn(t, n, tx.ID())
		if !ok || !st.Own || st.Confirmed || st.seen() != 0 || st.Status != "pending" {
			t.Fatalf("%s: tx_get %+v (known %v), want own, pending, unconfirmed, seen by 0", when, st, ok)
		}
		if v := metricValue(t, n, "rumor_own_txs_unconfirmed"); v != "1" {
			t.Fatalf("%s: rumor_own_txs_unconfirmed %q, want 1", when, v)
		}
	}
	startStop(t, cfg, func(n *Node) {
		sendTx(t, n, tx)
		unconfirmed(n, "before the restart")
	})

	n := startNode(t, cfg)
	unconfirmed(n, "after the restart")
	peersOf(t, n, g, 2)
	eventually(t, 30*time.Second, "the replayed tx confirmed delivered", func() bool {
		st, _ := txGetOwn(t, n, tx.ID())
		return st.Confirmed && st.Own && st.seen() == DeliveryConfirmPeers
	})
	if v := metricValue(t, n, "rumor_own_txs_unconfirmed"); v != "0" {
		t.Fatalf("rumor_own_txs_unconfirmed %q once delivered, want 0", v)
	}
}

// richState is a mempool state view in which every account is funded.
type richState struct{}

func (richState) Account(chain.Address) chain.Account { return chain.Account{Balance: 1 << 50} }

// TestOwnTxLoopReannounces runs the own-tx loop in virtual time with a
// fake Announce: an unconfirmed own tx is re-announced 2 s after it was
// tracked, then 4 s later, and no more once two peers are reported to
// hold it (the held hook); a queued own tx (nonce gap) is never
// re-announced; a tracked tx the pool does not hold is forgotten when it
// falls due; the unconfirmed count follows. Without re-announcement no
// Announce call comes; without the hook the tx stays due.
func TestOwnTxLoopReannounces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGenesis(time.Second)
		pool, err := mempool.New(mempool.DefaultConfig(), g, richState{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		o := newOwnTxs(ctx, pool)
		type call struct {
			at  time.Duration
			ids []relay.ID
		}
		var mu sync.Mutex
		var calls []call
		start := time.Now()
		o.announce = func(ids []relay.ID) int {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{time.Since(start), append([]relay.ID(nil), ids...)})
			return len(ids)
		}
		var wg sync.WaitGroup
		o.start(&wg)
		defer func() {
			cancel()
			wg.Wait()
		}()
		takeCalls := func() []call {
			mu.Lock()
			defer mu.Unlock()
			c := calls
			calls = nil
			return c
		}

		own := signedTx(g, 0, 1, 0, 10, 0)
		queued := signedTx(g, 1, 1, 3, 10, 0)
		gone := signedTx(g, 2, 1, 0, 10, 0) // tracked, never in the pool
		for _, tx := range []*chain.Tx{own, queued} {
			if res := pool.Add(tx, time.Now()); !res.Code.Held() {
				t.Fatalf("pool refused nonce %d: %v", tx.Nonce, res.Code)
			}
		}
		for _, tx := range []*chain.Tx{own, queued, gone} {
			if !o.track(tx.ID()) {
				t.Fatal("not tracked")
			}
		}
		if o.track(own.ID()) {
			t.Fatal("tracked twice")
		}
		synctest.Wait()
		if n := o.Unconfirmed(); n != 3 {
			t.Fatalf("%d unconfirmed, want 3", n)
		}

		wantCall := func(at time.Duration) {
			t.Helper()
			c := takeCalls()
			if len(c) != 1 || c[0].at != at || len(c[0].ids) != 1 || c[0].ids[0] != relay.ID(own.ID()) {
				t.Fatalf("announce calls %+v, want one of the own tx at %v", c, at)
			}
		}
		time.Sleep(ownTxReannounceFirst - time.Millisecond)
		synctest.Wait()
		if c := takeCalls(); len(c) != 0 {
			t.Fatalf("announced early: %+v", c)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		wantCall(2 * time.Second)
		if n := o.Unconfirmed(); n != 2 {
			t.Fatalf("%d unconfirmed after the gone tx fell due, want 2", n)
		}
		if _, ok := o.status(gone.ID()); ok {
			t.Fatal("a tx the pool does not hold is still tracked")
		}
		time.Sleep(4 * time.Second)
		synctest.Wait()
		wantCall(6 * time.Second)

		// Peers hold it: one is not enough, the same one twice neither.
		o.noteHeld("peer-a", []relay.ID{relay.ID(own.ID())})
		o.noteHeld("peer-a", []relay.ID{{9}, relay.ID(own.ID())})
		synctest.Wait()
		if st, ok := o.status(own.ID()); !ok || st.SeenBy != 1 || st.Confirmed {
			t.Fatalf("after one peer: %+v %v", st, ok)
		}
		o.noteHeld("peer-b", []relay.ID{relay.ID(own.ID())})
		synctest.Wait()
		if st, ok := o.status(own.ID()); !ok || st.SeenBy != 2 || !st.Confirmed {
			t.Fatalf("after two peers: %+v %v", st, ok)
		}
		if n := o.Unconfirmed(); n != 1 {
			t.Fatalf("%d unconfirmed, want 1 (the queued tx)", n)
		}
		if n := o.watching.Load(); n != 1 {
			t.Fatalf("hook watches %d ids, want only the queued tx", n)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if c := takeCalls(); len(c) != 0 {
			t.Fatalf("announced a confirmed or queued tx: %+v", c)
		}
		var st ownTxStatus
		var ok bool
		o.do(func(tr *ownTracker) { st, ok = tr.status(queued.ID()) })
		if !ok || st.Reannounced < 5 || st.Confirmed {
			t.Fatalf("queued tx: %+v %v (still tracked, due, never announced)", st, ok)
		}
	})
}
