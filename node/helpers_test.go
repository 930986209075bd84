package node

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"

	"github.com/rumor-relay/rumor/chain"
)

const (
	testChainID = "rumor-node-test"
	testSeed    = "node-test-seed"
)

// testGenesis returns a testnet genesis with 8 funded accounts and one
// authority (TestnetAuthorityKey(testSeed, 0)).
func testGenesis(interval time.Duration) *chain.Genesis {
	return chain.NewTestnetGenesis(testChainID, testSeed, 8, 1, interval, time.Now().Add(-time.Second))
}

func authorityKey() ed25519.PrivateKey { return chain.TestnetAuthorityKey(testSeed, 0) }

// testConfig is a node on loopback TCP with an in-memory store, RPC on a
// free port, no mDNS and no metrics.
func testConfig(t testing.TB, g *chain.Genesis) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Genesis = g
	cfg.InMemory = true
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	cfg.RPCAddr = "127.0.0.1:0"
	return cfg
}

// signedTx builds a transfer from testnet account from to account to.
func signedTx(g *chain.Genesis, from, to int, nonce, fee uint64, payload int) *chain.Tx {
	k := chain.TestnetAccountKey(testSeed, from)
	tx := &chain.Tx{
		From:   chain.AddressOf(k),
		To:     chain.AddressOf(chain.TestnetAccountKey(testSeed, to)),
		Amount: 1,
		Fee:    fee,
		Nonce:  nonce,
	}
	if payload > 0 {
		tx.Payload = make([]byte, payload)
	}
	tx.Sign(g.ChainID, k)
	return tx
}

// startNode creates and starts a node, closing it when the test ends.
func startNode(t testing.TB, cfg Config, opts ...Option) *Node {
	t.Helper()
	n, err := New(cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

// pollInterval is how often poll re-checks its condition.
const pollInterval = 20 * time.Millisecond

// poll checks cond now and on every tick of a pollInterval ticker until it
// holds (true) or timeout has passed (false; cond is checked once more at
// the deadline). It is the node tests' one polling wait, for conditions no
// event announces (mesh membership, peer and goroutine counts, gauges);
// waits with an event use waitOn or a busWatch instead. Inside a synctest
// bubble the ticker runs on virtual time.
func poll(timeout time.Duration, cond func() bool) bool {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	return waitOn(timeout, tick.C, cond)
}

// waitOn checks cond now and each time wake delivers (or is closed) until
// it holds (true) or timeout has passed (false; cond is checked once more at
// the deadline).
func waitOn[T any](timeout time.Duration, wake <-chan T, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-deadline.C:
			return cond()
		case _, ok := <-wake:
			if cond() {
				return true
			}
			if !ok {
				wake = nil // closed: only the deadline is left
			}
		}
	}
}

// eventually polls cond (see poll) until it holds, and fails the test if it
// does not within timeout.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// busWatch records the events of chosen types that a host's event bus
// emits and wakes waiters on each. Its goroutine drains the subscription as
// events come, so a watch never holds up the host's emitters, however
// little the test waits on it.
type busWatch struct {
	wake chan struct{} // capacity 1: wake-ups coalesce

	mu     sync.Mutex
	events []any
}

// watchBus subscribes to h's events of evtTypes (pointers, as
// event.Bus.Subscribe takes them) until the test ends.
func watchBus(t testing.TB, h host.Host, evtTypes ...any) *busWatch {
	t.Helper()
	sub, err := h.EventBus().Subscribe(evtTypes, eventbus.BufSize(256), eventbus.Name("node-test"))
	if err != nil {
		t.Fatalf("subscribing to host events: %v", err)
	}
	w := &busWatch{wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range sub.Out() {
			w.mu.Lock()
			w.events = append(w.events, e)
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		sub.Close()
		<-done
	})
	return w
}

// until checks cond now and after every event until it holds, and fails the
// test if it does not within timeout. cond reads state (a connectedness,
// or w.count), so no event that came before the call is missed.
func (w *busWatch) until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !waitOn(timeout, w.wake, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// count returns how many of the recorded events match.
func (w *busWatch) count(match func(e any) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.events {
		if match(e) {
			n++
		}
	}
	return n
}

// identifiedBy reports whether e is the completion of identify of p.
func identifiedBy(p peer.ID) func(e any) bool {
	return func(e any) bool {
		ev, ok := e.(event.EvtPeerIdentificationCompleted)
		return ok && ev.Peer == p
	}
}

// waitNotConnected waits, on h's connectedness events, until h holds no
// connection to p, and fails the test if it still does after timeout.
func waitNotConnected(t testing.TB, h host.Host, p peer.ID, timeout time.Duration, what string) {
	t.Helper()
	w := watchBus(t, h, new(event.EvtPeerConnectednessChanged))
	w.until(t, timeout, what, func() bool { return h.Network().Connectedness(p) != network.Connected })
}
