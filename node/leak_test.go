package node

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// TestCloseLeavesNoGoroutines starts two connected nodes with every
// subsystem on (producer, RPC with a WebSocket subscriber, metrics, pex,
// bootstrap, mDNS), closes them, and checks that nothing the node started
// is still running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	opts := []goleak.Option{
		goleak.IgnoreCurrent(),
		// The test's own HTTP client connection pool.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	}
	g := testGenesis(100 * time.Millisecond)
	func() {
		cfg0 := testConfig(t, g)
		cfg0.ProducerKey = authorityKey()
		cfg0.MetricsAddr = "127.0.0.1:0"
		cfg0.MDNS = true
		n0, err := New(cfg0)
		if err != nil {
			t.Fatal(err)
		}
		defer n0.Close()
		if err := n0.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		cfg1 := testConfig(t, g)
		for _, a := range n0.Addrs() {
			cfg1.Bootstrap = append(cfg1.Bootstrap, a.String())
		}
		n1, err := New(cfg1)
		if err != nil {
			t.Fatal(err)
		}
		defer n1.Close()
		if err := n1.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+n1.RPCAddr()+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"subscribe","params":["newHeads"]}`))
		wsRead(t, ws) // the subscription id
		wsRead(t, ws) // a head relayed from n0
		rpcCall(t, n0.RPCAddr(), "node_info")
		if err := n1.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n0.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, opts...)
}
