package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/testnet/keyfile"
)

// fakeTxNode answers the calls `tx send` makes; tx_get answers the
// next of getReplies each time (the last one forever).
type fakeTxNode struct {
	mu         sync.Mutex
	getReplies []string
	gets       int
}

func (f *fakeTxNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var result string
	switch req.Method {
	case "node_info":
		result = `{"chain_id":"c"}`
	case "account_get":
		result = `{"pending_nonce":0}`
	case "tx_send":
		result = `{"id":"` + chain.Hash{1}.String() + `"}`
	case "tx_get":
		f.mu.Lock()
		result = f.getReplies[min(f.gets, len(f.getReplies)-1)]
		f.gets++
		f.mu.Unlock()
	default:
		result = "null"
	}
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":` + result + `}`))
}

// TestTxSendWait: --wait=delivered returns once tx_get reports the tx
// confirmed (or included); --wait alone still waits for inclusion, past a
// confirmed delivery; "--wait delivered" (no '=') and unknown values are
// refused with a hint; a node that does not report delivery is an error,
// not a wait until the timeout.
func TestTxSendWait(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "k.json")
	k, err := keyfile.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := keyfile.Save(keyPath, k, false); err != nil {
		t.Fatal(err)
	}
	to := keyfile.Address(k).String()
	const (
		pending1  = `{"status":"pending","own":true,"seen_by":1,"confirmed":false}`
		delivered = `{"status":"pending","own":true,"seen_by":2,"confirmed":true}`
		included  = `{"status":"included","block_id":"` + "0200000000000000000000000000000000000000000000000000000000000000" + `","height":7,"own":true,"seen_by":2,"confirmed":true}`
		oldNode   = `{"status":"pending"}`
	)
	for _, c := range []struct {
		name    string
		wait    []string
		replies []string
		want    string // in the output
		wantErr string
		gets    int // tx_get calls, at least
	}{
		{"delivered", []string{"--wait=delivered"}, []string{pending1, pending1, delivered}, "delivered: held by 2 peers", "", 3},
		{"delivered by inclusion", []string{"--wait=delivered"}, []string{"null", pending1, included}, "included in block 02", "", 3},
		{"inclusion past delivery", []string{"--wait"}, []string{delivered, delivered, included}, "included in block 02", "", 3},
		{"inclusion explicit", []string{"--wait=included"}, []string{delivered, included}, "at height 7", "", 2},
		{"no wait", nil, []string{pending1}, chain.Hash{1}.String(), "", 0},
		{"without =", []string{"--wait", "delivered"}, []string{delivered}, "", "write --wait=delivered", 0},
		{"bad value", []string{"--wait=soon"}, []string{delivered}, "", "want included or delivered", 0},
		{"old node", []string{"--wait=delivered"}, []string{oldNode}, "", "does not report delivery", 1},
		{"timeout", []string{"--wait=delivered", "--timeout=300ms"}, []string{pending1}, "", "held by 1 peers", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := &fakeTxNode{getReplies: c.replies}
			srv := httptest.NewServer(node)
			defer srv.Close()
			var out bytes.Buffer
			root := newRootCmd()
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(append([]string{"tx", "send", "--rpc", srv.URL, "--key", keyPath, "--to", to}, c.wait...))
			start := time.Now()
			err := root.Execute()
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("error %v; output %s", err, out.String())
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			case !strings.Contains(out.String(), c.want):
				t.Fatalf("output %q lacks %q", out.String(), c.want)
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			if node.gets < c.gets {
				t.Fatalf("%d tx_get calls, want at least %d", node.gets, c.gets)
			}
			if c.gets == 0 && node.gets != 0 {
				t.Fatalf("%d tx_get calls, want none", node.gets)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
		})
	}
}
