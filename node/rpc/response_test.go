package rpc

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
)

// capFixture is a server whose chain holds one block of 40 transactions
// (height 1), with the response cap set from the sizes of that block's
// answers: full is chain_blockByHeight [1, true] (transaction objects),
// ids the same with false (transaction ids, about a quarter of it).
type capFixture struct {
	*fixture
	full, ids int // answer sizes in bytes
}

// newCapFixture builds the fixture; capOf picks the cap from the two
// answer sizes.
func newCapFixture(t *testing.T, capOf func(full, ids int) int64) *capFixture {
	t.Helper()
	cf := &capFixture{}
	f := newFixture(t, func(c *Config, b *Backend) {
		st := b.Chain.(*store.Store)
		g := st.Genesis()
		var txs []*chain.Tx
		for nonce := range uint64(10) {
			for from := range 4 {
				txs = append(txs, signed(g, from, nonce))
			}
		}
		parent, _ := st.Tip()
		blk := g.BuildBlock(parent, time.Now(), chain.TestnetAuthorityKey(seed, 0), txs)
		if _, err := st.AddBlock(blk, time.Now()); err != nil {
			t.Fatal(err)
		}
		size := func(full bool) int {
			res, err := json.Marshal(blockJSON(blk, full))
			if err != nil {
				t.Fatal(err)
			}
			return envelopeBytes + len(`1`) + len(res)
		}
		cf.full, cf.ids = size(true), size(false)
		c.MaxResponseBytes = capOf(cf.full, cf.ids)
	})
	cf.fixture = f
	return cf
}

// blockCall is a chain_blockByHeight request for height 1 with id.
func blockCall(id int, full bool) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"chain_blockByHeight","params":[1,%v]}`, id, full)
}

// postBatch posts calls as one batch and returns the answers by id.
func (f *fixture) postBatch(t *testing.T, calls ...string) []rpcResponse {
	t.Helper()
	resp, b := post(t, f.url, "["+strings.Join(calls, ",")+"]")
	if resp.StatusCode != 200 {
		t.Fatalf("batch: HTTP %d %s", resp.StatusCode, b)
	}
	var rs []rpcResponse
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return rs
}

// checkCapped checks a batch's answers, in order: the first ok of them
// carry results, every later one is refused with CodeResponseTooLarge.
func checkCapped(t *testing.T, rs []rpcResponse, n, ok int) {
	t.Helper()
	if len(rs) != n {
		t.Fatalf("%d answers, want %d", len(rs), n)
	}
	for i, r := range rs {
		if string(r.ID) != fmt.Sprint(i+1) {
			t.Fatalf("answer %d has id %s", i, r.ID)
		}
		if i < ok {
			if r.Error != nil || len(r.Result) == 0 {
				t.Fatalf("answer %d: error %+v, want a result", i, r.Error)
			}
			continue
		}
		if r.Error == nil || r.Error.Code != int(CodeResponseTooLarge) || r.Error.Message != "response too large" {
			t.Fatalf("answer %d: %+v result %d bytes, want error %d", i, r.Error, len(r.Result), CodeResponseTooLarge)
		}
	}
}

// TestResponseCapSingle: a call whose answer alone is over the cap is
// refused with CodeResponseTooLarge, and a smaller call still answered.
// Without the cap the block comes back whole.
func TestResponseCapSingle(t *testing.T) {
	f := newCapFixture(t, func(full, _ int) int64 { return int64(full - 1) })
	wantCode(t, f.call(t, "chain_blockByHeight", 1, true), int(CodeResponseTooLarge))
	r := f.call(t, "chain_blockByHeight", 1, false)
	if r.Error != nil || len(r.Result) == 0 {
		t.Fatalf("ids-only block under the cap: %+v", r.Error)
	}
}

// TestResponseCapBatch: the cap counts a batch's answers together. Once a
// call's answer would pass it, that call and every later one of the batch
// get CodeResponseTooLarge (a small node_info too: the batch is over), in
// order and with their ids; the next message starts afresh. Without the
// cap every call is answered: 2 full blocks and more, past the cap.
func TestResponseCapBatch(t *testing.T) {
	f := newCapFixture(t, func(full, ids int) int64 { return int64(full + ids/2) })
	node := `{"jsonrpc":"2.0","id":3,"method":"node_info"}`

	// One full block fits; a second answer after it does not.
	checkCapped(t, f.postBatch(t, blockCall(1, true), blockCall(2, false), node), 3, 1)
	// Ids first: they fit, the full block after them does not.
	checkCapped(t, f.postBatch(t, blockCall(1, false), blockCall(2, true), node), 3, 1)
	// Under the cap together: all answered.
	checkCapped(t, f.postBatch(t, blockCall(1, false), blockCall(2, false)), 2, 2)
	// A new message has the whole cap again.
	if r := f.call(t, "chain_blockByHeight", 1, true); r.Error != nil {
		t.Fatalf("full block in a message of its own: %+v", r.Error)
	}
	// Notifications get no answer, but a refused batch does not run them.
	before := f.pool.Stats().Count
	tx := signed(f.g, 0, 10)
	send := fmt.Sprintf(`{"jsonrpc":"2.0","method":"tx_send","params":["%x"]}`, tx.Encode())
	checkCapped(t, f.postBatch(t, blockCall(1, true), blockCall(2, true), send), 2, 1)
	if got := f.pool.Stats().Count; got != before {
		t.Fatalf("a notification after the cap ran: pool %d -> %d", before, got)
	}
}

// TestResponseCapWebSocket: the same cap over WebSocket, where a client
// holds several messages open at once: each message counts its own.
func TestResponseCapWebSocket(t *testing.T) {
	f := newCapFixture(t, func(full, ids int) int64 { return int64(full + ids/2) })
	c := dialWS(t, f.fixture)
	c.send("[" + blockCall(1, true) + "," + blockCall(2, true) + "," + blockCall(3, false) + "]")
	checkCapped(t, c.readBatch(), 3, 1)
	c.send(blockCall(1, true))
	if m := c.read(); m["error"] != nil || len(m["result"]) == 0 {
		t.Fatalf("full block over WebSocket: %s", m["error"])
	}
	// Two messages of one full block each: both within their own cap.
	c.send(blockCall(1, true))
	c.send(blockCall(2, true))
	for range 2 {
		if m := c.read(); m["error"] != nil {
			t.Fatalf("full block in its own message: %s", m["error"])
		}
	}

	g := newCapFixture(t, func(full, _ int) int64 { return int64(full - 1) })
	d := dialWS(t, g.fixture)
	d.send(blockCall(1, true))
	if m := d.read(); !strings.Contains(string(m["error"]), fmt.Sprint(int(CodeResponseTooLarge))) {
		t.Fatalf("single answer over the cap over WebSocket: %v", m)
	}
}

// readBatch reads one WebSocket message holding a batch's answers.
func (c *wsClient) readBatch() []rpcResponse {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	var rs []rpcResponse
	if err := json.Unmarshal(b, &rs); err != nil {
		c.t.Fatalf("%v in %s", err, b)
	}
	return rs
}

// TestDefaultCapHoldsLargestBlock: the default cap lets a client fetch
// the largest block the wire format allows (chain.MaxBlockTxs transactions
// with the largest numbers) with transaction objects, in one call; the
// compile-time check in dispatch.go rests on maxTxJSONBytes, which this
// also checks.
func TestDefaultCapHoldsLargestBlock(t *testing.T) {
	var big chain.Address
	for i := range big {
		big[i] = 0xff
	}
	tx := &chain.Tx{From: big, To: big, Amount: math.MaxUint64, Fee: math.MaxUint64, Nonce: math.MaxUint64, Payload: make([]byte, chain.MaxPayloadSize)}
	one, err := json.Marshal(newTxJSON(tx, tx.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if len(one)+1 > maxTxJSONBytes {
		t.Fatalf("a transaction object takes %d bytes with its comma, maxTxJSONBytes is %d", len(one)+1, maxTxJSONBytes)
	}
	if testing.Short() {
		return
	}
	// Payloads would take the block past its byte cap: at MaxBlockTxs
	// they are empty.
	tx.Payload = nil
	blk := &chain.Block{Header: chain.Header{Height: math.MaxUint64, Time: math.MaxInt64}}
	for range chain.MaxBlockTxs {
		blk.Txs = append(blk.Txs, tx)
	}
	res, err := json.Marshal(blockJSON(blk, true))
	if err != nil {
		t.Fatal(err)
	}
	if n := envelopeBytes + len(`"some-client-id"`) + len(res); n > maxBlockJSONBytes || n > DefaultMaxResponseBytes {
		t.Fatalf("the largest block's answer takes %d bytes; maxBlockJSONBytes %d, default cap %d", n, maxBlockJSONBytes, DefaultMaxResponseBytes)
	}
}
