package node

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rumor-relay/rumor/chain"
)

// TestRPCEndToEnd drives every JSON-RPC method and error code through a
// real node (relay, store, pool) over real HTTP and WebSocket.
func TestRPCEndToEnd(t *testing.T) {
	g := testGenesis(200 * time.Millisecond)
	cfg := testConfig(t, g)
	cfg.ProducerKey = authorityKey()
	cfg.MetricsAddr = "127.0.0.1:0"
	n := startNode(t, cfg)
	addr := n.RPCAddr()

	// WebSocket subscriptions first, so the events below are seen.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	wsCall := func(id int, method string, params ...any) map[string]json.RawMessage {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		// Skip notifications of an earlier subscription (a block may be
		// produced between two calls) until this call's answer arrives.
		for {
			m := wsRead(t, ws)
			if _, isNote := m["params"]; !isNote {
				return m
			}
		}
	}
	var headsSub, txsSub string
	json.Unmarshal(wsCall(1, "subscribe", "newHeads")["result"], &headsSub)
	json.Unmarshal(wsCall(2, "subscribe", "newPendingTxs")["result"], &txsSub)
	if headsSub == "" || txsSub == "" {
		t.Fatal("subscribe returned no ids")
	}

	// tx_send: accepted, then the same again (idempotent), then invalid.
	tx := signedTx(g, 0, 1, 0, 10, 32)
	res, rerr := rpcCall(t, addr, "tx_send", "0x"+hex.EncodeToString(tx.Encode()))
	if rerr != nil || !strings.Contains(string(res), tx.ID().String()) {
		t.Fatalf("tx_send: %s %+v", res, rerr)
	}
	if _, rerr := rpcCall(t, addr, "tx_send", hex.EncodeToString(tx.Encode())); rerr != nil {
		t.Fatalf("tx_send again: %+v", rerr)
	}
	bad := signedTx(g, 1, 2, 0, 10, 0)
	bad.Fee = 11
	_, rerr = rpcCall(t, addr, "tx_send", hex.EncodeToString(bad.Encode()))
	if rerr == nil || rerr.Code != -32000 {
		t.Fatalf("bad signature: %+v", rerr)
	}
	var data struct {
		Reason string `json:"reason"`
		Code   int    `json:"code"`
	}
	json.Unmarshal(rerr.Data, &data)
	if data.Reason != "bad-signature" || data.Code != int(chain.ReasonBadSignature) {
		t.Fatalf("bad signature data: %s", rerr.Data)
	}
	queued := signedTx(g, 2, 1, 3, 10, 0)
	if res, rerr := rpcCall(t, addr, "tx_send", hex.EncodeToString(queued.Encode())); rerr != nil || !strings.Contains(string(res), `"queued":true`) {
		t.Fatalf("future nonce: %s %+v", res, rerr)
	}
	for _, p := range []any{"nothex", 42} {
		if _, rerr := rpcCall(t, addr, "tx_send", p); rerr == nil || rerr.Code != -32602 {
			t.Fatalf("tx_send(%v): %+v", p, rerr)
		}
	}
	if _, rerr := rpcCall(t, addr, "no_such_method"); rerr == nil || rerr.Code != -32601 {
		t.Fatalf("unknown method: %+v", rerr)
	}
	resp, err := http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"jsonrpc"`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "-32700") {
		t.Fatalf("parse error: %s", b)
	}
	resp, err = http.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"params":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "-32600") {
		t.Fatalf("invalid request: %s", b)
	}

	// The pending-tx notification, then the tx's block.
	sawTx, sawHead := false, false
	for deadline := time.Now().Add(15 * time.Second); !(sawTx && sawHead) && time.Now().Before(deadline); {
		m := wsRead(t, ws)
		var p struct {
			Subscription string          `json:"subscription"`
			Result       json.RawMessage `json:"result"`
		}
		json.Unmarshal(m["params"], &p)
		switch p.Subscription {
		case txsSub:
			sawTx = sawTx || string(p.Result) == `"`+tx.ID().String()+`"`
		case headsSub:
			_, included := n.Store().TxLocation(tx.ID())
			sawHead = sawHead || included
		}
	}
	if !sawTx || !sawHead {
		t.Fatalf("notifications: pending tx %v, head with tx %v", sawTx, sawHead)
	}

	// tx_get, blocks, head, account, mempool.
	got, _ := rpcCall(t, addr, "tx_get", tx.ID())
	var txr struct {
		Status string `json:"status"`
		Height uint64 `json:"height"`
		Tx     struct {
			PayloadSize int `json:"payload_size"`
		} `json:"tx"`
	}
	json.Unmarshal(got, &txr)
	if txr.Status != "included" || txr.Height == 0 || txr.Tx.PayloadSize != 32 {
		t.Fatalf("tx_get: %s", got)
	}
	got, _ = rpcCall(t, addr, "tx_get", queued.ID())
	if !strings.Contains(string(got), `"status":"pending"`) {
		t.Fatalf("tx_get queued: %s", got)
	}
	got, _ = rpcCall(t, addr, "chain_blockByHeight", txr.Height, true)
	if !strings.Contains(string(got), tx.ID().String()) || !strings.Contains(string(got), `"payload_size":32`) {
		t.Fatalf("chain_blockByHeight full: %s", got)
	}
	var head struct {
		Height uint64     `json:"height"`
		ID     chain.Hash `json:"id"`
	}
	got, _ = rpcCall(t, addr, "chain_head")
	json.Unmarshal(got, &head)
	if head.Height < txr.Height {
		t.Fatalf("chain_head %s below tx height %d", got, txr.Height)
	}
	got, _ = rpcCall(t, addr, "chain_blockByID", head.ID)
	if !strings.Contains(string(got), head.ID.String()) {
		t.Fatalf("chain_blockByID: %s", got)
	}
	got, _ = rpcCall(t, addr, "account_get", tx.From)
	if !strings.Contains(string(got), `"nonce":1`) || !strings.Contains(string(got), `"pending_nonce":1`) {
		t.Fatalf("account_get: %s", got)
	}
	got, _ = rpcCall(t, addr, "mempool_summary")
	if !strings.Contains(string(got), `"count":1`) || !strings.Contains(string(got), `"queued":1`) {
		t.Fatalf("mempool_summary: %s", got)
	}
	got, _ = rpcCall(t, addr, "node_info")
	if !strings.Contains(string(got), n.ID().String()) || !strings.Contains(string(got), `"block_relay":"compact"`) ||
		!strings.Contains(string(got), "/p2p/") || !strings.Contains(string(got), `"version":"`+Version) {
		t.Fatalf("node_info: %s", got)
	}
	if got, rerr := rpcCall(t, addr, "net_peers"); rerr != nil || string(got) != "[]" {
		t.Fatalf("net_peers: %s %+v", got, rerr)
	}
	if got, rerr := rpcCall(t, addr, "net_mesh"); rerr != nil || !strings.Contains(string(got), "/tx/3") {
		t.Fatalf("net_mesh: %s %+v", got, rerr)
	}
	got, _ = rpcCall(t, addr, "measure_firstSeen", map[string]any{"txs": []chain.Hash{tx.ID()}, "blocks": []chain.Hash{head.ID}})
	if !strings.Contains(string(got), tx.ID().String()) || !strings.Contains(string(got), head.ID.String()) {
		t.Fatalf("measure_firstSeen: %s", got)
	}
	got, _ = rpcCall(t, addr, "measure_stats")
	if !strings.Contains(string(got), `"announcements_out"`) {
		t.Fatalf("measure_stats: %s", got)
	}

	// Metrics and pprof beside them.
	for path, want := range map[string]string{"/metrics": "rumor_chain_height", "/debug/pprof/": "goroutine"} {
		resp, err := http.Get("http://" + n.MetricsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: HTTP %d, no %q", path, resp.StatusCode, want)
		}
	}
}

func wsRead(t *testing.T, ws *websocket.Conn) map[string]json.RawMessage {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return m
}

// TestRPCCookieWhenNotLoopback binds RPC to every interface without a token:
// the node writes a 0600 cookie, demands it, and removes it on Close.
func TestRPCCookieWhenNotLoopback(t *testing.T) {
	cfg := testConfig(t, testGenesis(time.Hour))
	cfg.RPCAddr = "0.0.0.0:0"
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	cookie := filepath.Join(cfg.DataDir, CookieFile)
	if n.RPCCookiePath() != cookie {
		t.Fatalf("cookie path %q", n.RPCCookiePath())
	}
	st, err := os.Stat(cookie)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("cookie: %v mode %v", err, st.Mode())
	}
	token, _ := os.ReadFile(cookie)
	_, port, _ := strings.Cut(n.RPCAddr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(n.RPCAddr(), ":")
	}
	url := "http://127.0.0.1:" + port + "/"
	body := `{"jsonrpc":"2.0","id":1,"method":"node_info"}`
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with cookie token: HTTP %d", resp.StatusCode)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cookie); !os.IsNotExist(err) {
		t.Fatalf("cookie left after Close: %v", err)
	}
}

// TestRestartKeepsIdentityChainAndMempool runs a producing node on disk,
// stops it, and starts it again from the same data dir.
func TestRestartKeepsIdentityChainAndMempool(t *testing.T) {
	g := testGenesis(100 * time.Millisecond)
	cfg := testConfig(t, g)
	cfg.InMemory = false
	cfg.ProducerKey = authorityKey()
	cfg.Mempool.PersistPath = DefaultMempoolFile

	n1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	heads, cancel := n1.Feed().Subscribe("newHeads")
	if err := n1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		waitEvent(t, heads, 10*time.Second, "a produced block", func(any) bool { return true })
	}
	cancel()
	// A queued tx stays in the pool (no block can include it): it must
	// survive the restart through the mempool file.
	queued := signedTx(g, 5, 1, 2, 10, 0)
	if _, v, err := n1.Relay().SubmitTx(queued.Encode()); err == nil {
		t.Fatalf("queued tx verdict %v without error", v)
	}
	id1 := n1.ID()
	h1, _ := n1.Store().Tip()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(cfg.DataDir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, st.Mode())
	}

	cfg.ProducerKey = nil
	n2 := startNode(t, cfg)
	if n2.ID() != id1 || n2.Host().ID() != id1 {
		t.Fatalf("peer id changed across restart: %s -> %s", id1, n2.ID())
	}
	if h2, _ := n2.Store().Tip(); h2.Height < h1.Height || h1.Height < 3 {
		t.Fatalf("tip height %d after restart, was %d", h2.Height, h1.Height)
	}
	if !n2.Pool().Has(queued.ID()) {
		t.Fatal("queued tx lost across restart")
	}
}
