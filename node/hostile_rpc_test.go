package node

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHostileRPCInput sends a node's JSON-RPC server malformed JSON, an
// unknown method, wrong params (count, type, hex, length), a body over the
// limit and a batch over the limit, and checks each answer (JSON-RPC error
// code or HTTP status) and that nothing changed: the pool, the chain and
// the peers are as before, and a well-formed call still works. The
// oversized batch carries a valid tx_send that must not run. Then the
// binding rules: the default address is loopback, a non-loopback bind needs
// a token (or a cookie, TestRPCCookieWhenNotLoopback), and with a token set
// a request without it gets 401. Package rpc's TestProtocolErrors and
// TestHTTPTransportLimits cover the same cases on the bare server.
func TestHostileRPCInput(t *testing.T) {
	g := testGenesis(time.Hour)
	cfg := testConfig(t, g)
	cfg.RPCMaxBodyBytes = 64 << 10
	cfg.RPCMaxBatch = 10
	n := startNode(t, cfg)
	url := "http://" + n.RPCAddr() + "/"
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tx := signedTx(g, 1, 2, 0, 10, 0)
	txHex := hex.EncodeToString(tx.Encode())
	call := func(method string, params string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, method, params)
	}
	head0, _ := rpcCall(t, n.RPCAddr(), "chain_head")
	peers0, _ := rpcCall(t, n.RPCAddr(), "net_peers")

	batch := make([]string, cfg.RPCMaxBatch+1)
	batch[0] = call("tx_send", `["`+txHex+`"]`)
	for i := 1; i < len(batch); i++ {
		batch[i] = call("node_info", "[]")
	}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   int // JSON-RPC error code; 0 when the status says it all
	}{
		{"truncated JSON", `{"jsonrpc":"2.0","id":1,"method":"node_info"`, 200, -32700},
		{"not JSON", `\x00\x01garbage`, 200, -32700},
		{"not a request", `{"jsonrpc":"2.0","id":1}`, 200, -32600},
		{"unknown method", call("eth_sendRawTransaction", `["00"]`), 200, -32601},
		{"too many params", call("chain_head", `[1]`), 200, -32602},
		{"missing params", call("tx_get", `[]`), 200, -32602},
		{"wrong type", call("chain_blockByHeight", `["ten", false]`), 200, -32602},
		{"bad hex", call("tx_send", `["zz"]`), 200, -32602},
		{"short address", call("account_get", `["0x1234"]`), 200, -32602},
		{"object params", call("tx_get", `{"id":"00"}`), 200, -32602},
		{"batch over the limit", "[" + strings.Join(batch, ",") + "]", 200, -32600},
		{"body over the limit", call("tx_send", `["`+strings.Repeat("ab", int(cfg.RPCMaxBodyBytes))+`"]`), http.StatusRequestEntityTooLarge, 0},
	} {
		status, body := post(tc.body)
		if status != tc.status {
			t.Fatalf("%s: HTTP %d, want %d (%.200s)", tc.name, status, tc.status, body)
		}
		if tc.code == 0 {
			continue
		}
		var r struct {
			Error *struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.Error == nil || r.Error.Code != tc.code {
			t.Fatalf("%s: want JSON-RPC error %d, got %.200s", tc.name, tc.code, body)
		}
	}

	// Nothing changed.
	if n.Pool().Stats().Count != 0 || n.Pool().Has(tx.ID()) {
		t.Fatalf("rejected requests changed the pool: %+v", n.Pool().Stats())
	}
	if head, _ := rpcCall(t, n.RPCAddr(), "chain_head"); string(head) != string(head0) {
		t.Fatalf("chain head changed: %s -> %s", head0, head)
	}
	if p, _ := rpcCall(t, n.RPCAddr(), "net_peers"); string(p) != string(peers0) {
		t.Fatalf("peers changed: %s -> %s", peers0, p)
	}
	if _, rerr := rpcCall(t, n.RPCAddr(), "tx_send", txHex); rerr != nil || !n.Pool().Has(tx.ID()) {
		t.Fatalf("a well-formed tx_send after the garbage: %+v", rerr)
	}

	// Binding.
	if d := DefaultConfig(); !isLoopbackAddr(d.RPCAddr) {
		t.Fatalf("default RPC address %s is not loopback", d.RPCAddr)
	}
	public := testConfig(t, g)
	public.RPCAddr, public.DataDir, public.InMemory = "0.0.0.0:0", "", true
	if err := public.Validate(); err == nil {
		t.Fatal("a non-loopback RPC address without a token or a data dir for the cookie was accepted")
	}
	public.RPCToken = "s3cret"
	pn := startNode(t, public)
	_, port, err := net.SplitHostPort(pn.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	purl := "http://127.0.0.1:" + port + "/"
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret"} {
		req, _ := http.NewRequest("POST", purl, strings.NewReader(call("node_info", "[]")))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusUnauthorized
		if auth == "Bearer s3cret" {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Fatalf("token %q: HTTP %d, want %d", auth, resp.StatusCode, want)
		}
	}
}
