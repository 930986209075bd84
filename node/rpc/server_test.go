package rpc

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"go.uber.org/goleak"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay"
)

const seed = "rpc-test"

// fakeRelay answers SubmitTx by the first byte of the body, so each tx_send
// outcome can be provoked; real transactions (decodable) go to the pool.
type fakeRelay struct {
	pool *mempool.Pool
	mu   sync.Mutex
	seen map[relay.ID]time.Time
}

type queuedErr struct{}

func (queuedErr) Error() string { return "queued" }
func (queuedErr) Queued() bool  { return true }

type policyErr struct{}

func (policyErr) Error() string        { return "pool full" }
func (policyErr) RejectReason() string { return "pool-full" }

func (f *fakeRelay) SubmitTx(body []byte) (relay.ID, relay.Verdict, error) {
	switch body[0] {
	case 0xf1:
		return relay.ID{1}, relay.Invalid, &chain.RuleError{Reason: chain.ReasonBadSignature, TxIndex: -1}
	case 0xf2:
		return relay.ID{2}, relay.Ignored, queuedErr{}
	case 0xf3:
		return relay.ID{3}, relay.Ignored, policyErr{}
	}
	tx, err := chain.DecodeTx(body)
	if err != nil {
		return relay.ID{}, relay.Invalid, &chain.RuleError{Reason: chain.ReasonMalformed, TxIndex: -1, Err: err}
	}
	res := f.pool.Add(tx, time.Now())
	if !res.Code.Held() {
		return relay.ID(res.ID), relay.Ignored, res.Err
	}
	f.mu.Lock()
	f.seen[relay.ID(res.ID)] = time.UnixMicro(1_700_000_000_000_000)
	f.mu.Unlock()
	return relay.ID(res.ID), relay.Accepted, nil
}

func (f *fakeRelay) FirstSeen(id relay.ID) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.seen[id]
	return t, ok
}

type fixture struct {
	g     *chain.Genesis
	st    *store.Store
	pool  *mempool.Pool
	srv   *Server
	url   string
	relay *fakeRelay
}

func newFixture(t *testing.T, mod func(*Config, *Backend)) *fixture {
	t.Helper()
	g := chain.NewTestnetGenesis("rpc-chain", seed, 4, 1, time.Second, time.Now().Add(-time.Minute))
	st, err := store.Open(g, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mempool.New(mempool.DefaultConfig(), g, st)
	if err != nil {
		t.Fatal(err)
	}
	mn := mocknet.New()
	h, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	fr := &fakeRelay{pool: pool, seen: map[relay.ID]time.Time{}}
	cfg := Config{Addr: "127.0.0.1:0", MaxBodyBytes: 1 << 20, MaxBatch: 5, MaxWSConns: 2}
	b := Backend{
		ChainID: g.ChainID, Version: "test", BlockRelay: "compact", Host: h, Relay: fr,
		Tip:   func() (uint64, chain.Hash) { hd, id := st.Tip(); return hd.Height, id },
		Stats: func() any { return map[string]int{"fetches": 7} },
		Chain: st, Pool: pool, Feed: NewFeed(),
	}
	if mod != nil {
		mod(&cfg, &b)
	}
	srv, err := New(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		srv.Close()
		mn.Close()
		st.Close()
	})
	return &fixture{g: g, st: st, pool: pool, srv: srv, url: "http://" + srv.Addr() + "/", relay: fr}
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func post(t *testing.T, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (f *fixture) call(t *testing.T, method string, params ...any) rpcResponse {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, b := post(t, f.url, string(body))
	if resp.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d %s", method, resp.StatusCode, b)
	}
	var r rpcResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v in %s", method, err, b)
	}
	return r
}

func wantCode(t *testing.T, r rpcResponse, code int) {
	t.Helper()
	if r.Error == nil || r.Error.Code != code {
		t.Fatalf("want error %d, got %+v result %s", code, r.Error, r.Result)
	}
}

func decode[T any](t *testing.T, r rpcResponse) T {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("unexpected error %+v", r.Error)
	}
	var v T
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("%v in %s", err, r.Result)
	}
	return v
}

func signed(g *chain.Genesis, from int, nonce uint64) *chain.Tx {
	k := chain.TestnetAccountKey(seed, from)
	tx := &chain.Tx{From: chain.AddressOf(k), To: chain.AddressOf(chain.TestnetAccountKey(seed, 3)), Amount: 5, Fee: 2, Nonce: nonce, Payload: []byte("hi")}
	tx.Sign(g.ChainID, k)
	return tx
}

// TestMain checks that no server goroutine outlives its test. The test's own
// HTTP client keeps pooled connections (persistConn loops): those are not
// the server's and are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
}

func TestTxSendOutcomes(t *testing.T) {
	f := newFixture(t, nil)
	tx := signed(f.g, 0, 0)
	got := decode[map[string]any](t, f.call(t, "tx_send", "0x"+hex.EncodeToString(tx.Encode())))
	if got["id"] != tx.ID().String() {
		t.Fatalf("tx_send id %v, want %v", got["id"], tx.ID())
	}

	r := f.call(t, "tx_send", "f1")
	wantCode(t, r, -32000)
	var data txRejectData
	json.Unmarshal(r.Error.Data, &data)
	if data.Reason != "bad-signature" || data.Code != int(chain.ReasonBadSignature) || data.Verdict != "invalid" {
		t.Fatalf("invalid tx data %+v", data)
	}
	r = f.call(t, "tx_send", "f3")
	wantCode(t, r, -32000)
	json.Unmarshal(r.Error.Data, &data)
	if data.Reason != "pool-full" || data.Code != 0 || data.Verdict != "ignored" {
		t.Fatalf("pool-full data %+v", data)
	}
	if q := decode[map[string]any](t, f.call(t, "tx_send", "f2")); q["queued"] != true {
		t.Fatalf("queued tx: %v", q)
	}
	r = f.call(t, "tx_send", "00")
	wantCode(t, r, -32000)
	json.Unmarshal(r.Error.Data, &data)
	if data.Reason != "malformed" {
		t.Fatalf("malformed data %+v", data)
	}
	wantCode(t, f.call(t, "tx_send", "zz"), -32602)
	wantCode(t, f.call(t, "tx_send"), -32602)
	wantCode(t, f.call(t, "tx_send", 5), -32602)
	wantCode(t, f.call(t, "tx_send", strings.Repeat("00", chain.MaxTxSize+1)), -32602)
}

func TestChainMethods(t *testing.T) {
	f := newFixture(t, nil)
	tx := signed(f.g, 0, 0)
	if res := f.pool.Add(tx, time.Now()); !res.Code.Held() {
		t.Fatal(res.Err)
	}
	pend := signed(f.g, 1, 0)
	f.pool.Add(pend, time.Now())
	genesis, gid := f.st.Tip()
	blk := f.g.BuildBlock(genesis, time.Now(), chain.TestnetAuthorityKey(seed, 0), []*chain.Tx{tx})
	if _, err := f.st.AddBlock(blk, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.pool.BlockConnected(blk, time.Now())

	head := decode[chainHeadResult](t, f.call(t, "chain_head"))
	if head.Height != 1 || head.ID != blk.ID() || head.Parent != gid || head.TimeMs != blk.Header.Time {
		t.Fatalf("chain_head %+v", head)
	}
	wantCode(t, f.call(t, "chain_head", 1), -32602)

	byH := decode[blockResult](t, f.call(t, "chain_blockByHeight", 1))
	if byH.ID != blk.ID() || byH.Size != blk.Size() || len(byH.Txs) != 1 || byH.Txs[0] != tx.ID().String() {
		t.Fatalf("chain_blockByHeight %+v", byH)
	}
	full := f.call(t, "chain_blockByID", blk.ID(), true)
	var fb struct {
		Header HeaderJSON `json:"header"`
		Txs    []TxJSON   `json:"txs"`
	}
	json.Unmarshal(full.Result, &fb)
	if fb.Header.Height != 1 || len(fb.Txs) != 1 || fb.Txs[0].Amount != 5 || fb.Txs[0].PayloadSize != 2 {
		t.Fatalf("chain_blockByID full %s", full.Result)
	}
	if r := f.call(t, "chain_blockByID", chain.Hash{9}); string(r.Result) != "null" || r.Error != nil {
		t.Fatalf("unknown block: %s %+v", r.Result, r.Error)
	}
	if r := f.call(t, "chain_blockByHeight", 99); string(r.Result) != "null" {
		t.Fatalf("unknown height: %s", r.Result)
	}
	wantCode(t, f.call(t, "chain_blockByID", "xyz"), -32602)
	wantCode(t, f.call(t, "chain_blockByHeight", -1), -32602)

	inc := decode[txGetResult](t, f.call(t, "tx_get", tx.ID()))
	if inc.Status != "included" || *inc.BlockID != blk.ID() || *inc.Height != 1 || *inc.Index != 0 ||
		inc.Raw != hex.EncodeToString(tx.Encode()) || inc.Tx.From != tx.From || inc.Tx.Nonce != 0 {
		t.Fatalf("tx_get included %+v", inc)
	}
	p := decode[txGetResult](t, f.call(t, "tx_get", pend.ID()))
	if p.Status != "pending" || p.BlockID != nil {
		t.Fatalf("tx_get pending %+v", p)
	}
	if r := f.call(t, "tx_get", chain.Hash{7}); string(r.Result) != "null" {
		t.Fatalf("unknown tx: %s", r.Result)
	}

	acct := decode[accountResult](t, f.call(t, "account_get", tx.From))
	if acct.Nonce != 1 || acct.PendingNonce != 1 || acct.Balance != chain.TestnetBalance-7 {
		t.Fatalf("account_get %+v", acct)
	}
	acct1 := decode[accountResult](t, f.call(t, "account_get", pend.From))
	if acct1.Nonce != 0 || acct1.PendingNonce != 1 {
		t.Fatalf("account_get pending %+v", acct1)
	}
	wantCode(t, f.call(t, "account_get", "0x12"), -32602)

	mp := decode[mempoolResult](t, f.call(t, "mempool_summary"))
	if mp.Count != 1 || mp.Senders != 1 || mp.Bytes != pend.Size() {
		t.Fatalf("mempool_summary %+v", mp)
	}
}

func TestNetAndMeasureMethods(t *testing.T) {
	f := newFixture(t, nil)
	info := decode[nodeInfoResult](t, f.call(t, "node_info"))
	if info.ChainID != "rpc-chain" || info.Version != "test" || info.Height != 0 || info.BlockRelay != "compact" || info.PeerID == "" {
		t.Fatalf("node_info %+v", info)
	}
	if len(info.ListenAddrs) == 0 || !strings.Contains(info.ListenAddrs[0], "/p2p/"+info.PeerID.String()) {
		t.Fatalf("node_info listen addrs %v", info.ListenAddrs)
	}
	if r := f.call(t, "net_peers"); string(r.Result) != "[]" {
		t.Fatalf("net_peers with no peers: %s", r.Result)
	}
	if r := f.call(t, "net_mesh"); string(r.Result) != "{}" {
		t.Fatalf("net_mesh without tracker: %s", r.Result)
	}

	tx := signed(f.g, 0, 0)
	f.call(t, "tx_send", hex.EncodeToString(tx.Encode()))
	fs := decode[FirstSeenResult](t, f.call(t, "measure_firstSeen", map[string]any{"txs": []chain.Hash{tx.ID(), {5}}, "blocks": []chain.Hash{{6}}}))
	if len(fs.Txs) != 1 || fs.Txs[tx.ID().String()] != 1_700_000_000_000_000 || len(fs.Blocks) != 0 {
		t.Fatalf("measure_firstSeen %+v", fs)
	}
	many := make([]chain.Hash, MaxFirstSeenIDs+1)
	wantCode(t, f.call(t, "measure_firstSeen", map[string]any{"txs": many}), -32602)
	wantCode(t, f.call(t, "measure_firstSeen", map[string]any{"txs": []string{"nothex"}}), -32602)
	if st := decode[map[string]int](t, f.call(t, "measure_stats")); st["fetches"] != 7 {
		t.Fatalf("measure_stats %v", st)
	}
}

func TestProtocolErrors(t *testing.T) {
	f := newFixture(t, nil)
	check := func(name, body string, code int) {
		t.Helper()
		resp, b := post(t, f.url, body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d", name, resp.StatusCode)
		}
		var r rpcResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v in %s", name, err, b)
		}
		wantCode(t, r, code)
	}
	check("parse error", `{"jsonrpc":"2.0",`, -32700)
	check("not json", `hello`, -32700)
	check("empty batch", `[]`, -32600)
	check("no method", `{"jsonrpc":"2.0","id":1}`, -32600)
	check("wrong version", `{"jsonrpc":"1.0","id":1,"method":"node_info"}`, -32600)
	check("unknown method", `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`, -32601)
	check("subscribe over http", `{"jsonrpc":"2.0","id":1,"method":"subscribe","params":["newHeads"]}`, -32601)
	check("object params", `{"jsonrpc":"2.0","id":1,"method":"tx_get","params":{"id":"00"}}`, -32602)
	batch := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"node_info"}`, i)
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	check("batch over limit", batch(6), -32600)

	// A batch at the limit answers every request, in order.
	resp, b := post(t, f.url, batch(5))
	var rs []rpcResponse
	if err := json.Unmarshal(b, &rs); err != nil || resp.StatusCode != 200 || len(rs) != 5 {
		t.Fatalf("batch of 5: HTTP %d, %v, %s", resp.StatusCode, err, b)
	}
	for i, r := range rs {
		if string(r.ID) != fmt.Sprint(i) || r.Error != nil {
			t.Fatalf("batch reply %d: id %s err %+v", i, r.ID, r.Error)
		}
	}
	// Notifications alone get 204.
	if resp, _ := post(t, f.url, `{"jsonrpc":"2.0","method":"node_info"}`); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("notification: HTTP %d", resp.StatusCode)
	}
}

func TestHTTPTransportLimits(t *testing.T) {
	f := newFixture(t, nil)
	resp, _ := post(t, f.url, `{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["`+strings.Repeat("ab", 600<<10)+`"]}`)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversize body: HTTP %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", f.url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "text/plain")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %v %v", r.StatusCode, err)
	}
	if r, err := http.Get(f.url); err != nil || r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", r.StatusCode, err)
	}
	if r, _ := post(t, f.url, `{}`, "Origin", "https://evil.example"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: HTTP %d", r.StatusCode)
	}
	if r, _ := post(t, strings.TrimSuffix(f.url, "/")+"/other", `{}`); r.StatusCode != http.StatusNotFound {
		t.Fatalf("other path: HTTP %d", r.StatusCode)
	}
	// Nothing changed: the pool is still empty.
	if f.pool.Stats().Count != 0 {
		t.Fatal("rejected requests changed the pool")
	}
}

func TestTokenAndCORS(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Backend) {
		c.Token = "s3cret"
		c.AllowedOrigins = []string{"https://wallet.example"}
	})
	body := `{"jsonrpc":"2.0","id":1,"method":"node_info"}`
	if r, _ := post(t, f.url, body); r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: HTTP %d", r.StatusCode)
	}
	if r, _ := post(t, f.url, body, "Authorization", "Bearer wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: HTTP %d", r.StatusCode)
	}
	r, b := post(t, f.url, body, "Authorization", "Bearer s3cret", "Origin", "https://wallet.example")
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://wallet.example" || !bytes.Contains(b, []byte("peer_id")) {
		t.Fatalf("good token + allowed origin: HTTP %d %q %s", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"), b)
	}
	req, _ := http.NewRequest("OPTIONS", f.url, nil)
	req.Header.Set("Origin", "https://wallet.example")
	pre, err := http.DefaultClient.Do(req)
	if err != nil || pre.StatusCode != http.StatusNoContent || !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %v %v", pre.StatusCode, err)
	}
	if _, _, err := websocket.DefaultDialer.Dial("ws://"+f.srv.Addr()+"/ws", nil); err == nil {
		t.Fatal("WebSocket upgrade without token accepted")
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+f.srv.Addr()+"/ws", http.Header{"Authorization": {"Bearer s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestEmbeddedModeHidesChainMethods(t *testing.T) {
	f := newFixture(t, func(_ *Config, b *Backend) { b.Chain, b.Pool = nil, nil })
	for _, m := range []string{"chain_head", "chain_blockByID", "chain_blockByHeight", "tx_get", "account_get", "mempool_summary"} {
		wantCode(t, f.call(t, m), -32601)
	}
	decode[nodeInfoResult](t, f.call(t, "node_info"))
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, f *fixture) *wsClient {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+f.srv.Addr()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wsClient{t: t, conn: c}
}

func (c *wsClient) send(msg string) {
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *wsClient) read() map[string]json.RawMessage {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%v in %s", err, b)
	}
	return m
}

func TestWebSocketSubscriptions(t *testing.T) {
	f := newFixture(t, nil)
	c := dialWS(t, f)

	c.send(`{"jsonrpc":"2.0","id":1,"method":"subscribe","params":["newHeads"]}`)
	var headsID string
	json.Unmarshal(c.read()["result"], &headsID)
	c.send(`{"jsonrpc":"2.0","id":2,"method":"subscribe","params":["newPendingTxs"]}`)
	var txsID string
	json.Unmarshal(c.read()["result"], &txsID)
	if headsID == "" || txsID == "" || headsID == txsID {
		t.Fatalf("subscription ids %q %q", headsID, txsID)
	}

	hdr, id := f.st.Tip()
	f.srv.backend.Feed.Publish(TopicNewHeads, NewHeaderJSON(hdr, id))
	f.srv.backend.Feed.Publish(TopicNewPendingTxs, chain.Hash{0xaa})
	got := map[string]json.RawMessage{}
	for range 2 {
		m := c.read()
		var method string
		json.Unmarshal(m["method"], &method)
		if method != "subscription" {
			t.Fatalf("notification method %q", method)
		}
		var p struct {
			Subscription string          `json:"subscription"`
			Result       json.RawMessage `json:"result"`
		}
		json.Unmarshal(m["params"], &p)
		got[p.Subscription] = p.Result
	}
	var h HeaderJSON
	json.Unmarshal(got[headsID], &h)
	if h.ID != id || h.Height != 0 {
		t.Fatalf("newHeads event %s", got[headsID])
	}
	if string(got[txsID]) != `"`+(chain.Hash{0xaa}).String()+`"` {
		t.Fatalf("newPendingTxs event %s", got[txsID])
	}

	// Ordinary methods work over WebSocket too, and errors carry codes.
	c.send(`{"jsonrpc":"2.0","id":3,"method":"subscribe","params":["logs"]}`)
	if m := c.read(); !bytes.Contains(m["error"], []byte("-32602")) {
		t.Fatalf("bad topic: %v", m)
	}
	c.send(`{"jsonrpc":"2.0","id":4,"method":"unsubscribe","params":["` + txsID + `"]}`)
	if m := c.read(); string(m["result"]) != "true" {
		t.Fatalf("unsubscribe: %s", m["result"])
	}
	c.send(`[` + strings.Repeat(`{"jsonrpc":"2.0","id":5,"method":"node_info"},`, 5) + `{"jsonrpc":"2.0","id":6,"method":"node_info"}]`)
	if m := c.read(); !bytes.Contains(m["error"], []byte("-32600")) {
		t.Fatalf("oversize WS batch: %v", m)
	}
	c.send(`{"jsonrpc":"2.0",`)
	if m := c.read(); !bytes.Contains(m["error"], []byte("-32700")) {
		t.Fatalf("WS parse error: %v", m)
	}
	c.send(`{"jsonrpc":"2.0","id":7,"method":"chain_head"}`)
	if m := c.read(); !bytes.Contains(m["result"], []byte(`"height":0`)) {
		t.Fatalf("chain_head over WS: %v", m)
	}
}

func TestWebSocketConnectionCapAndClose(t *testing.T) {
	f := newFixture(t, nil)
	a, b := dialWS(t, f), dialWS(t, f)
	a.send(`{"jsonrpc":"2.0","id":1,"method":"subscribe","params":["newHeads"]}`)
	a.read()
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+f.srv.Addr()+"/ws", nil)
	if err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third client over cap of 2: %v", err)
	}
	// Close ends live sessions: their reads fail.
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a, b} {
		c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.conn.ReadMessage(); err == nil {
			t.Fatal("session survived Close")
		}
	}
}

func TestFeedDropsSlowSubscriber(t *testing.T) {
	feed := NewFeed()
	ch, cancel := feed.Subscribe(TopicNewHeads)
	defer cancel()
	other, cancel2 := feed.Subscribe(TopicNewPendingTxs)
	defer cancel2()
	for i := range feedBuffer + 1 {
		feed.Publish(TopicNewHeads, i)
	}
	n := 0
	for range ch {
		n++
	}
	if n != feedBuffer {
		t.Fatalf("slow subscriber got %d events before being dropped, want %d", n, feedBuffer)
	}
	feed.Publish(TopicNewPendingTxs, "x")
	if v := <-other; v != "x" {
		t.Fatalf("other topic got %v", v)
	}
}

// blockingRelay holds every tx_send until release is closed.
type blockingRelay struct {
	*fakeRelay
	started chan struct{}
	release chan struct{}
}

func (b *blockingRelay) SubmitTx(body []byte) (relay.ID, relay.Verdict, error) {
	b.started <- struct{}{}
	<-b.release
	return b.fakeRelay.SubmitTx(body)
}

// TestWebSocketPendingCap: a client that writes calls faster than they
// complete is read only up to wsMaxPending unfinished messages; the rest
// wait in its own socket, and every call is answered once the node
// catches up. Notifications hold a place only while they run.
func TestWebSocketPendingCap(t *testing.T) {
	br := &blockingRelay{started: make(chan struct{}, 1000), release: make(chan struct{})}
	f := newFixture(t, func(_ *Config, b *Backend) {
		br.fakeRelay = b.Relay.(*fakeRelay)
		b.Relay = br
	})
	// Runs before the fixture's cleanup, which waits for running calls.
	unblock := sync.OnceFunc(func() { close(br.release) })
	t.Cleanup(unblock)
	c := dialWS(t, f)
	// Notifications first: no answer, and their places come back as soon
	// as they have run.
	for range 2 * wsMaxPending {
		c.send(`{"jsonrpc":"2.0","method":"chain_head"}`)
	}
	const calls = 3 * wsMaxPending
	for i := range calls {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tx_send","params":["0x00"]}`, i+1))
	}
	var ch *wsChannel
	waitFor(t, "the session's channel", func() bool {
		f.srv.mu.Lock()
		defer f.srv.mu.Unlock()
		for ws := range f.srv.sessions {
			ws.mu.Lock()
			ch = ws.ch
			ws.mu.Unlock()
		}
		return ch != nil
	})
	waitFor(t, "the pending cap to fill", func() bool { return len(ch.pending) == wsMaxPending })
	// Nothing more is read while every place is held.
	if holdsWithin(200*time.Millisecond, func() bool { return len(ch.pending) > wsMaxPending }) {
		t.Fatal("read past the cap")
	}
	if n := len(br.started); n > wsConcurrency {
		t.Fatalf("%d calls running, want at most %d", n, wsConcurrency)
	}
	unblock()
	seen := map[string]bool{}
	for range calls {
		m := c.read()
		seen[string(m["id"])] = true
	}
	if len(seen) != calls {
		t.Fatalf("%d distinct answers, want %d", len(seen), calls)
	}
	// The reader holds one place for the message it waits for next.
	waitFor(t, "every place to be given back", func() bool { return len(ch.pending) <= 1 })
}

// waitFor polls cond every millisecond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !holdsWithin(10*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// holdsWithin reports whether cond held at some poll within d.
func holdsWithin(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// TestPrepareTxsSeesBatchedSends: the transactions of a batch's tx_send
// calls reach PrepareTxs together before the calls run (each call is then
// answered as usual); a lone call, other methods and params that are not
// one hex string are left out.
func TestPrepareTxsSeesBatchedSends(t *testing.T) {
	var mu sync.Mutex
	var got [][][]byte
	f := newFixture(t, func(_ *Config, b *Backend) {
		b.PrepareTxs = func(bodies [][]byte) {
			mu.Lock()
			got = append(got, bodies)
			mu.Unlock()
		}
	})
	tx0, tx1 := signed(f.g, 0, 0), signed(f.g, 1, 0)
	batch := fmt.Sprintf(`[
		{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["%x"]},
		{"jsonrpc":"2.0","id":2,"method":"chain_head","params":[]},
		{"jsonrpc":"2.0","id":3,"method":"tx_send","params":["0x%x"]},
		{"jsonrpc":"2.0","id":4,"method":"tx_send","params":["zz"]},
		{"jsonrpc":"2.0","id":5,"method":"tx_send","params":[7]}]`, tx0.Encode(), tx1.Encode())
	resp, body := post(t, f.url, batch)
	var answers []rpcResponse
	if err := json.Unmarshal(body, &answers); err != nil || resp.StatusCode != 200 || len(answers) != 5 {
		t.Fatalf("batch answer %s: %v", body, err)
	}
	for _, a := range answers[:3] {
		if a.Error != nil {
			t.Fatalf("call %s failed: %+v", a.ID, a.Error)
		}
	}
	f.call(t, "tx_send", hex.EncodeToString(signed(f.g, 2, 0).Encode())) // alone: not prepared
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || len(got[0]) != 2 || !bytes.Equal(got[0][0], tx0.Encode()) || !bytes.Equal(got[0][1], tx1.Encode()) {
		t.Fatalf("PrepareTxs saw %d calls: %x", len(got), got)
	}
	if !f.pool.Has(tx0.ID()) || !f.pool.Has(tx1.ID()) {
		t.Fatal("batched txs not pooled")
	}
}
