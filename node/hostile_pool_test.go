package node

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay/wire"
)

// deterTxs is the size of the DETER attack (CVE-2022-23327/23328: 5,120
// high-fee txs that can never all be mined purged geth's pool).
const deterTxs = 5000

// TestHostileDETER replays the DETER attack against a node whose pool is
// full of honest executable txs (MaxTxs 64): 5,000 txs paying 10,000 times
// the honest fee from one sender, with future nonces, relayed by a peer
// that announces and serves them; then 5,000 overdrafts from another
// sender through JSON-RPC. Not one honest tx is evicted or demoted; the
// relaying peer is not penalized (future nonces are not invalid, only
// useless); the pool never exceeds its bounds.
func TestHostileDETER(t *testing.T) {
	const honestSenders, perSender, attackerFee = 32, 2, 100_000
	g := chain.NewTestnetGenesis(testChainID, testSeed, 40, 1, time.Hour, time.Now().Add(-time.Second))
	cfg := testConfig(t, g)
	cfg.Mempool = mempool.Config{MaxTxs: honestSenders * perSender, MaxQueued: 8}
	cfg.RPCMaxBatch = 100
	n := startNode(t, cfg)

	var honest []chain.Hash
	for s := 1; s <= honestSenders; s++ {
		for nonce := range perSender {
			tx := signedTx(g, s, 0, uint64(nonce), uint64(5+s%10), 0)
			if _, _, err := n.Relay().SubmitTx(tx.Encode()); err != nil {
				t.Fatalf("honest tx: %v", err)
			}
			honest = append(honest, tx.ID())
		}
	}
	checkHonest := func(stage string) {
		t.Helper()
		exec := make(map[chain.Hash]bool)
		for _, tx := range n.Pool().Template(1<<30, 10*len(honest)) {
			exec[tx.ID()] = true
		}
		lost := 0
		for _, id := range honest {
			if !exec[id] {
				lost++
			}
		}
		st := n.Pool().Stats()
		if lost > 0 || st.Count > cfg.Mempool.MaxTxs {
			t.Fatalf("%s: %d of %d honest executable txs evicted or demoted; pool %+v", stage, lost, len(honest), st)
		}
		t.Logf("%s: pool %+v, all %d honest txs executable", stage, st, len(honest))
	}
	checkHonest("filled")

	// 1. Future nonces, high fees, relayed by a peer.
	bodies := make(map[chain.Hash][]byte, deterTxs)
	ids := make([]chain.Hash, 0, deterTxs)
	for i := range deterTxs {
		tx := signedTx(g, 0, 1, uint64(1+i), attackerFee, 0)
		bodies[tx.ID()] = tx.Encode()
		ids = append(ids, tx.ID())
	}
	var mu sync.Mutex
	served := 0
	m := newAttacker(t, g.ChainID, nil)
	m.serveTxs(func(q *wire.GetTxs) wire.Response {
		out := &wire.Txs{}
		for _, id := range q.IDs {
			out.Bodies = append(out.Bodies, bodies[chain.Hash(id)])
		}
		mu.Lock()
		served += len(q.IDs)
		mu.Unlock()
		return out
	})
	if err := m.connect(n); err != nil {
		t.Fatal(err)
	}
	m.joinGossip(n)
	// One announcement of 1,000 at a time, each fetched before the next:
	// all at once, the ids past the per-peer tracking cap would be dropped
	// before the pool ever saw them.
	before := n.Relay().Stats().BodiesReceived
	for i := 0; i < len(ids); i += wire.MaxAnnounceIDs {
		if err := m.announceTxs(ids[i:min(i+wire.MaxAnnounceIDs, len(ids))]); err != nil {
			t.Fatal(err)
		}
		want := uint64(min(i+wire.MaxAnnounceIDs, len(ids)))
		eventually(t, 20*time.Second, "the announced attack txs fetched and judged", func() bool {
			return n.Relay().Stats().BodiesReceived-before >= want
		})
	}
	checkHonest("after 5,000 future-nonce txs over the relay")
	if bd := n.PeerScore(m.id()); bd.Score < 0 {
		t.Fatalf("the relaying peer was penalized for txs that are only useless: %+v", bd)
	}

	// 2. Overdrafts through JSON-RPC, in batches.
	outcomes := map[string]int{}
	const batch = 100
	for start := 0; start < deterTxs; start += batch {
		reqs := make([]map[string]any, 0, batch)
		for i := start; i < start+batch; i++ {
			tx := signedTx(g, 33, 1, uint64(i%17), attackerFee, 0)
			tx.Amount = chain.TestnetBalance + uint64(i) // more than the sender has
			tx.Sign(g.ChainID, chain.TestnetAccountKey(testSeed, 33))
			reqs = append(reqs, map[string]any{"jsonrpc": "2.0", "id": i, "method": "tx_send", "params": []string{hex.EncodeToString(tx.Encode())}})
		}
		body, _ := json.Marshal(reqs)
		resp, err := http.Post("http://"+n.RPCAddr()+"/", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rs []struct {
			Error *struct {
				Code int `json:"code"`
				Data struct {
					Reason string `json:"reason"`
				} `json:"data"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &rs); err != nil || len(rs) != batch {
			t.Fatalf("batch answer: %v, %d replies: %.200s", err, len(rs), b)
		}
		for _, r := range rs {
			if r.Error == nil {
				outcomes["accepted"]++
			} else {
				outcomes[fmt.Sprintf("%d %s", r.Error.Code, r.Error.Data.Reason)]++
			}
		}
	}
	t.Logf("overdraft outcomes: %v", outcomes)
	if outcomes["accepted"] != 0 {
		t.Fatalf("overdrafts accepted: %v", outcomes)
	}
	checkHonest("after 5,000 overdrafts over JSON-RPC")
}
