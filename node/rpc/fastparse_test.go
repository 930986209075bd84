package rpc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/creachadair/jrpc2"

	"github.com/rumor-relay/rumor/chain"
)

// plainCases are messages parsePlain reads (the first plainRead of them)
// and near misses it must hand to jrpc2.
var plainCases = []string{
	// read by the plain parser
	`{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["0xab"]}`,
	`[{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["ab"]},{"jsonrpc":"2.0","id":"x-2","method":"tx_send","params":["cd"]}]`,
	" [ { \"params\" : [ \"ab\" , \"cd\" ] ,\n\"method\":\"m.x\",\t\"id\":-0,\"jsonrpc\":\"2.0\" } ]\r\n",
	`{"jsonrpc":"2.0","id":0,"method":"chain_head","params":[]}`,
	`[{"jsonrpc":"2.0","id":12345678901234567890123,"method":"tx_send","params":[""]}]`,
	// handed to jrpc2
	`{"jsonrpc":"2.0","method":"tx_send","params":["ab"]}`,               // no id: a notification
	`{"jsonrpc":"2.0","id":null,"method":"tx_send","params":["ab"]}`,     // null id
	`{"jsonrpc":"2.0","id":1.5,"method":"tx_send","params":["ab"]}`,      // fraction
	`{"jsonrpc":"2.0","id":1e3,"method":"tx_send","params":["ab"]}`,      // exponent
	`{"jsonrpc":"2.0","id":01,"method":"tx_send","params":["ab"]}`,       // leading zero
	`{"jsonrpc":"2.0","id":1,"method":"tx_send"}`,                        // no params
	`{"jsonrpc":"2.0","id":1,"method":"tx_send","params":{"tx":"ab"}}`,   // object params
	`{"jsonrpc":"2.0","id":1,"method":"tx_send","params":[1]}`,           // number param
	`{"jsonrpc":"2.0","id":1,"method":"tx_s\u0065nd","params":["ab"]}`,   // escape
	`{"jsonrpc":"2.0","id":"a\"b","method":"tx_send","params":["ab"]}`,   // escaped quote
	`{"jsonrpc":"1.0","id":1,"method":"tx_send","params":["ab"]}`,        // version
	`{"jsonrpc":"2.0","id":1,"id":2,"method":"tx_send","params":["ab"]}`, // repeated key
	`{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["ab"],"x":1}`,  // extra key
	`{"jsonrpc":"2.0","id":1,"method":"","params":["ab"]}`,               // empty method
	`{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["ab"]} x`,      // trailing bytes
	`{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["ab"],}`,       // trailing comma
	`[{"jsonrpc":"2.0","id":1,"method":"tx_send","params":["ab"]},]`,     // trailing comma
	`[]`, `[1]`, `{}`, ``, `null`, `[{"jsonrpc":"2.0","id":1,"method":"m","params":["ab"]}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tx_send\",\"params\":[\"a\x01b\"]}",   // control byte
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tx_send\",\"params\":[\"\xc3\xa9\"]}", // non-ASCII
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tx_send\",\"params\":[\"ab\"]}\v",     // not JSON space
}

// plainRead is how many of plainCases come first and are read by parsePlain.
const plainRead = 5

// TestParsePlainAgreesWithJRPC2: the plain parser reads the shapes tx
// senders write, exactly as jrpc2 reads them, and declines everything else.
func TestParsePlainAgreesWithJRPC2(t *testing.T) {
	for i, msg := range plainCases {
		_, ok := parsePlain([]byte(msg))
		if ok != (i < plainRead) {
			t.Errorf("case %d %q: read %v, want %v", i, msg, ok, i < plainRead)
		}
		checkPlain(t, []byte(msg))
	}
}

// checkPlain fails when parsePlain reads msg other than jrpc2 does.
func checkPlain(t *testing.T, msg []byte) {
	t.Helper()
	got, ok := parsePlain(msg)
	if !ok {
		return
	}
	want, err := jrpc2.ParseRequests(msg)
	if err != nil {
		t.Fatalf("%q: the plain parser read it, jrpc2 refused it: %v", msg, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %d requests, jrpc2 %d", msg, len(got), len(want))
	}
	for i := range got {
		g, w := *got[i], *want[i]
		if w.Error != nil {
			t.Fatalf("%q: request %d read, jrpc2 found it faulty: %v", msg, i, w.Error)
		}
		if g.ID != w.ID || g.Method != w.Method || g.Batch != w.Batch || string(g.Params) != string(w.Params) || !reflect.DeepEqual(g.Error, w.Error) {
			t.Fatalf("%q: request %d read as %+v, jrpc2 %+v", msg, i, g, w)
		}
	}
}

// FuzzParsePlain: go test -fuzz FuzzParsePlain ./node/rpc
func FuzzParsePlain(f *testing.F) {
	for _, msg := range plainCases {
		f.Add([]byte(msg))
	}
	f.Fuzz(func(t *testing.T, msg []byte) { checkPlain(t, msg) })
}

// BenchmarkParseBatch compares reading a batch of 64 tx_send calls (250-byte
// txs) with the plain parser and with jrpc2's.
func BenchmarkParseBatch(b *testing.B) {
	call := `{"jsonrpc":"2.0","id":7,"method":"tx_send","params":["` + strings.Repeat("ab", 250) + `"]}`
	msg := []byte("[" + strings.Repeat(call+",", 63) + call + "]")
	b.Run("plain", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, ok := parsePlain(msg); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("jrpc2", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := jrpc2.ParseRequests(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTxSendResultJSON: tx_send's hand-written result is what
// encoding/json writes for it.
func TestTxSendResultJSON(t *testing.T) {
	for _, r := range []txSendResult{{}, {ID: chain.Hash{1, 2, 0xff}}, {ID: chain.Hash{31: 9}, Queued: true}} {
		got, err := marshalResult(r)
		if err != nil {
			t.Fatal(err)
		}
		type plain txSendResult // the same fields without the method
		want, err := json.Marshal(plain(r))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%+v: wrote %s, want %s", r, got, want)
		}
	}
}
