package rpcclient

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

type rpcReq struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

func server(t *testing.T, h func(req rpcReq) (result any, rerr *Error)) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req rpcReq
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.JSONRPC != "2.0" || req.Params == nil {
			t.Errorf("bad request: %v %+v", err, req)
		}
		res, rerr := h(req)
		m := map[string]any{"jsonrpc": "2.0", "id": req.ID}
		if rerr != nil {
			m["error"] = rerr
		} else {
			m["result"] = res
		}
		_ = json.NewEncoder(w).Encode(m)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8545":           "http://127.0.0.1:8545/",
		"http://127.0.0.1:8545":    "http://127.0.0.1:8545/",
		"http://127.0.0.1:8545/":   "http://127.0.0.1:8545/",
		"https://node.example/rpc": "https://node.example/rpc",
	} {
		if got := NormalizeURL(in); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

func TestCallResultAndAppError(t *testing.T) {
	srv := server(t, func(req rpcReq) (any, *Error) {
		switch req.Method {
		case "chain_head":
			return map[string]any{"height": 7, "id": chain.Hash{1}}, nil
		case "tx_send":
			return nil, &Error{Code: ErrCodeApp, Message: "transaction rejected", Data: json.RawMessage(`{"reason":"nonce-too-low","code":6}`)}
		}
		return nil, &Error{Code: -32601, Message: "method not found"}
	})
	c := New(srv.URL, nil)
	h, err := c.ChainHead(context.Background())
	if err != nil || h.Height != 7 || h.ID != (chain.Hash{1}) {
		t.Fatalf("head %+v err %v", h, err)
	}
	_, err = c.SendTx(context.Background(), []byte{1, 2})
	var e *Error
	if !errors.As(err, &e) || e.Reason() != "nonce-too-low" || !IsAppError(err) {
		t.Fatalf("app error: %v", err)
	}
	err = c.Call(context.Background(), "nope", nil, nil)
	if !errors.As(err, &e) || e.Code != -32601 || IsAppError(err) {
		t.Fatalf("method not found: %v", err)
	}
}

func TestCallRejectsMismatchedID(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":"999","result":1}`))
	}))
	defer srv.Close()
	var v int
	if err := New(srv.URL, nil).Call(context.Background(), "x", nil, &v); err == nil {
		t.Fatal("reply to another request accepted")
	}
}

func TestCallTransportErrorIsNotAppError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "gateway", http.StatusBadGateway)
	}))
	defer srv.Close()
	err := New(srv.URL, nil).Call(context.Background(), "x", nil, nil)
	var e *Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
}

// TestFirstSeenTimesBatches: more ids than one call may carry are split
// into calls of at most MaxFirstSeenIDs, txs and blocks together.
func TestFirstSeenTimesBatches(t *testing.T) {
	var calls atomic.Int32
	srv := server(t, func(req rpcReq) (any, *Error) {
		calls.Add(1)
		var q struct {
			Txs    []chain.Hash `json:"txs"`
			Blocks []chain.Hash `json:"blocks"`
		}
		if err := json.Unmarshal(req.Params[0], &q); err != nil {
			return nil, &Error{Code: -32602, Message: err.Error()}
		}
		if q.Txs == nil || q.Blocks == nil || len(q.Txs)+len(q.Blocks) > MaxFirstSeenIDs {
			return nil, &Error{Code: -32602, Message: "bad batch"}
		}
		out := map[string]map[string]int64{"txs": {}, "blocks": {}}
		for i, id := range q.Txs {
			if i%2 == 0 { // the node knows every other tx
				out["txs"][id.String()] = 1000 + int64(i)
			}
		}
		for _, id := range q.Blocks {
			out["blocks"][id.String()] = 5
		}
		return out, nil
	})
	txs := make([]chain.Hash, MaxFirstSeenIDs+10)
	for i := range txs {
		txs[i][0], txs[i][1], txs[i][2] = byte(i), byte(i>>8), 1
	}
	blocks := []chain.Hash{{9}, {8}}
	fs, err := New(srv.URL, nil).FirstSeenTimes(context.Background(), txs, blocks)
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls, want 2", calls.Load())
	}
	if len(fs.Blocks) != 2 || len(fs.Txs) < len(txs)/2-1 {
		t.Fatalf("got %d txs %d blocks", len(fs.Txs), len(fs.Blocks))
	}
}

// FuzzFirstSeenJSON: a node's measure_firstSeen reply never panics the
// decoder, and whatever decodes has only valid ids.
func FuzzFirstSeenJSON(f *testing.F) {
	f.Add([]byte(`{"txs":{"` + chain.Hash{1}.String() + `":1700000000000000},"blocks":{}}`))
	f.Add([]byte(`{"txs":{"00":"12"}}`))
	f.Add([]byte(`{"blocks":{"` + chain.Hash{2}.String() + `":"1.5"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fs FirstSeen
		if json.Unmarshal(data, &fs) != nil {
			return
		}
		if fs.Txs == nil || fs.Blocks == nil {
			t.Fatal("decoded maps must be non-nil")
		}
	})
}

// TestSendTxsBatch: one POST carries a JSON-RPC batch of tx_send calls;
// answers, which the server may send in any order, are matched to txs by
// id, each with its own result or error; a reply missing an answer fails
// the whole batch.
func TestSendTxsBatch(t *testing.T) {
	var posts atomic.Int32
	drop := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		var reqs []rpcReq
		if err := json.NewDecoder(r.Body).Decode(&reqs); err != nil {
			t.Errorf("not a batch: %v", err)
		}
		var out []map[string]any
		for i := len(reqs) - 1; i >= 0; i-- { // reversed
			q := reqs[i]
			var hexTx string
			_ = json.Unmarshal(q.Params[0], &hexTx)
			m := map[string]any{"jsonrpc": "2.0", "id": q.ID}
			if hexTx == "ff" {
				m["error"] = &Error{Code: ErrCodeApp, Message: "transaction rejected", Data: json.RawMessage(`{"reason":"bad-signature","code":4}`)}
			} else {
				m["result"] = map[string]any{"id": chain.Hash{byte(i)}}
			}
			out = append(out, m)
		}
		if drop {
			out = out[1:]
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	c := New(srv.URL, nil)
	res, errs, err := c.SendTxs(context.Background(), [][]byte{{0}, {0xff}, {2}})
	if err != nil || posts.Load() != 1 {
		t.Fatalf("batch: %v after %d posts", err, posts.Load())
	}
	if errs[0] != nil || res[0].ID != (chain.Hash{0}) || errs[2] != nil || res[2].ID != (chain.Hash{2}) {
		t.Fatalf("results %+v errors %v", res, errs)
	}
	var e *Error
	if !errors.As(errs[1], &e) || e.Reason() != "bad-signature" {
		t.Fatalf("refused tx: %v", errs[1])
	}
	drop = true
	if _, _, err := c.SendTxs(context.Background(), [][]byte{{0}, {1}}); err == nil {
		t.Fatal("a reply missing an answer was accepted")
	}
}

// TestTxSendBatchIsJSON: the hand-written tx_send batch is what
// encoding/json writes for the same requests.
func TestTxSendBatchIsJSON(t *testing.T) {
	encoded := [][]byte{{0x01, 0xab}, {}, bytes.Repeat([]byte{0xff}, 300)}
	for _, first := range []uint64{1, 99, math.MaxUint64 - 2} {
		reqs := make([]request, len(encoded))
		for i, e := range encoded {
			reqs[i] = request{JSONRPC: "2.0", ID: strconv.FormatUint(first+uint64(i), 10), Method: "tx_send", Params: []any{hex.EncodeToString(e)}}
		}
		want, err := json.Marshal(reqs)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTxSendBatch(nil, first, encoded); string(got) != string(want) {
			t.Fatalf("first id %d:\n got %s\nwant %s", first, got, want)
		}
	}
}
