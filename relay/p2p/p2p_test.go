package p2p_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/p2p"
	"github.com/rumor-relay/rumor/relay/relaytest"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// These tests run relays on real libp2p hosts (TCP, Noise, Yamux on
// loopback): the adapter's framing, streams, GossipSub validators and
// duplicate reports. The protocol logic is tested in virtual time in
// package relay.

type node struct {
	h     host.Host
	tr    *p2p.Transport
	r     *relay.Relay
	chain *relaytest.Chain
	pool  *relaytest.Pool

	mu   sync.Mutex
	offs []relay.Offense
}

func (n *node) offenses() []relay.Offense {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.offs)
}

func config(mode relay.BlockMode) relay.Config {
	cfg := relay.DefaultConfig("p2p-test")
	cfg.BlockMode = mode
	cfg.MaxTxBytes, cfg.MaxBlockBytes, cfg.MaxBlockTxs = relaytest.MaxTxBytes, relaytest.MaxBlockBytes, relaytest.MaxBlockTxs
	return cfg
}

func newNode(t *testing.T, cfg relay.Config) *node {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	tr, err := p2p.New(h, p2p.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	n := &node{h: h, tr: tr, pool: relaytest.NewPool()}
	n.chain = relaytest.NewChain(n.pool)
	hook := func(_ relay.PeerID, o relay.Offense) {
		n.mu.Lock()
		n.offs = append(n.offs, o)
		n.mu.Unlock()
	}
	r, err := relay.New(tr, n.chain, n.pool, cfg, relay.WithPenaltyHook(hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	n.r = r
	return n
}

func dial(ctx context.Context, from, to host.Host) error {
	return from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()})
}

// TestTCPLoopback runs four relays in a line 0-1-2-3: a tx reaches every
// pool, a compact block from node 0, a pull-mode block from node 3 and a
// push-mode block from node 1 reach every chain. Every GossipSub mesh holds
// the connected neighbours, and duplicate deliveries are reported.
func TestTCPLoopback(t *testing.T) {
	const n = 4
	modes := []relay.BlockMode{relay.BlockCompact, relay.BlockPush, relay.BlockCompact, relay.BlockPull}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = newNode(t, config(modes[i]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 1; i < n; i++ {
		if err := dial(ctx, nodes[i].h, nodes[i-1].h); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range nodes {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	relaytest.Eventually(t, 10*time.Second, func() error {
		for i, nd := range nodes {
			tx, blk := nd.r.MeshPeers()
			for _, p := range nd.h.Network().Peers() {
				if !slices.Contains(tx, p2p.ID(p)) || !slices.Contains(blk, p2p.ID(p)) {
					return fmt.Errorf("node %d: mesh tx %d block %d", i, len(tx), len(blk))
				}
			}
		}
		return nil
	})

	var txs [][]byte
	var ids []relay.ID
	for i := range 10 {
		tx := fmt.Appendf(nil, "tcp-%d-%0300d", i, i)
		if _, v, err := nodes[i%n].r.SubmitTx(tx); v != relay.Accepted {
			t.Fatal(v, err)
		}
		txs = append(txs, tx)
		ids = append(ids, relaytest.TxID(tx))
	}
	for i, nd := range nodes {
		if err := nd.pool.WaitFor(ctx, func() bool { return nd.pool.Has(ids...) }); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	publish := func(prod *node, salt uint64, txs [][]byte) relay.ID {
		t.Helper()
		b, id := prod.chain.Build(salt, txs)
		if _, v, err := prod.chain.AddBlock(b); v != relay.Accepted {
			t.Fatal(v, err)
		}
		if err := prod.r.PublishBlock(b); err != nil {
			t.Fatal(err)
		}
		return id
	}
	waitBlock := func(id relay.ID) {
		t.Helper()
		for i, nd := range nodes {
			if err := nd.chain.WaitFor(ctx, func() bool { return nd.chain.HasBlock(id) }); err != nil {
				t.Fatalf("node %d lacks block %s: %v", i, id.Short(), err)
			}
		}
	}
	waitBlock(publish(nodes[0], 1, txs[:5]))
	waitBlock(publish(nodes[3], 2, txs[5:]))
	b3 := publish(nodes[1], 3, [][]byte{[]byte("tcp-push-block-tx")})
	waitBlock(b3)
	for i, nd := range nodes {
		if h, tip := nd.chain.Tip(); h != 3 || tip != b3 {
			t.Fatalf("node %d at height %d", i, h)
		}
		if offs := nd.offenses(); len(offs) != 0 {
			t.Fatalf("node %d reported offenses among honest peers: %v", i, offs)
		}
	}
	if st := nodes[1].r.Stats(); st.Protocols["gossipsub"].In == 0 || st.Classes["overhead"].In == 0 {
		t.Fatalf("gossip traffic not counted: %+v", st)
	}
}

// TestFramesOnStreams checks the request framing on real streams: a frame
// over the cap is refused and reported without being read, a frame that
// decodes to nothing known gets an error answer, and a half-sent request
// holds a serving slot only until the read timeout's reset.
// connectedPair returns a server node and a client node connected to it,
// and a context for the test's calls.
func connectedPair(t *testing.T) (s, c *node, ctx context.Context) {
	s, c = newNode(t, config(relay.BlockCompact)), newNode(t, config(relay.BlockCompact))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if err := dial(ctx, c.h, s.h); err != nil {
		t.Fatal(err)
	}
	return s, c, ctx
}

func TestFramesOnStreams(t *testing.T) {
	s, c, ctx := connectedPair(t)
	if err := s.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	proto := protocol.ID(s.r.Config().RequestProtocol())

	st, err := c.h.NewStream(ctx, s.h.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	msg := binary.AppendUvarint(nil, wire.MaxRequestFrame+1)
	if _, err := st.Write(append(msg, make([]byte, 1024)...)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, err := st.Read(buf); err == nil {
		t.Fatalf("oversize request answered with %d bytes", n)
	}
	_ = st.Reset()
	if !slices.Contains(s.offenses(), relay.OffenseOversize) {
		t.Fatalf("oversize request not reported: %v", s.offenses())
	}

	data, err := c.tr.Request(ctx, p2p.ID(s.h.ID()), string(proto), []byte{0x42, 1, 2, 3}, wire.MaxResponseFrame)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wire.DecodeResponse(data)
	if e, ok := resp.(*wire.Error); err != nil || !ok || e.Code != wire.ErrCodeBadRequest {
		t.Fatalf("want a bad-request answer, got %#v %v", resp, err)
	}

	// A client asking a peer that sends a frame over the response cap.
	s.tr.Serve("/oversize", func(_ transport.PeerID, read transport.ReadRequest) ([]byte, func()) {
		if _, err := read(wire.MaxRequestFrame); err != nil {
			return nil, nil
		}
		return make([]byte, 2048), nil
	})
	if _, err := c.tr.Request(ctx, p2p.ID(s.h.ID()), "/oversize", []byte{1}, 1024); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("oversize response: %v", err)
	}
	// sent runs once per exchange, after the answer is written or the
	// exchange reset: a handler releases what it held for the answer there.
	sent := make(chan string, 4)
	s.tr.Serve("/sent", func(_ transport.PeerID, read transport.ReadRequest) ([]byte, func()) {
		req, err := read(16)
		if err != nil || req[0] == 0 {
			return nil, func() { sent <- "reset" }
		}
		return []byte("answer"), func() { sent <- "written" }
	})
	for _, tc := range []struct {
		req  byte
		want string
	}{{1, "written"}, {0, "reset"}} {
		_, _ = c.tr.Request(ctx, p2p.ID(s.h.ID()), "/sent", []byte{tc.req}, 1024)
		select {
		case got := <-sent:
			if got != tc.want {
				t.Fatalf("sent after %q, want %q", got, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("sent not called after the %s exchange", tc.want)
		}
	}
	if len(sent) != 0 {
		t.Fatal("sent called more than once")
	}
	// A peer that is not connected is not dialled.
	other := newNode(t, config(relay.BlockCompact))
	if _, err := c.tr.Request(ctx, p2p.ID(other.h.ID()), string(proto), []byte{1}, 1024); !errors.Is(err, transport.ErrNotConnected) {
		t.Fatalf("request to an unconnected peer: %v", err)
	}
}

// TestWriteTimeoutFollowsSize: a small answer must be read within a few
// seconds, a large one gets time at 1 MiB/s, and none more than
// WriteTimeout: a slow reader cannot hold a small answer (and the server's
// byte reservation for it) for the whole WriteTimeout.
func TestWriteTimeoutFollowsSize(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, p2p.MinWriteTime},
		{64 << 10, p2p.MinWriteTime + time.Second/16},
		{8 << 20, p2p.MinWriteTime + 8*time.Second},
		{64 << 20, p2p.WriteTimeout},
	} {
		if got := p2p.WriteTimeoutFor(tc.n); got != tc.want {
			t.Errorf("%d bytes: %v, want %v", tc.n, got, tc.want)
		}
	}
}

// TestRequestTimeoutIsDeadlineExceeded: a peer that never answers makes
// Request fail with an error that says timeout (context.DeadlineExceeded),
// whichever of the stream's deadline and the context's timer fires first;
// the relay penalizes a withholding announcer only for a timeout.
func TestRequestTimeoutIsDeadlineExceeded(t *testing.T) {
	s, c, ctx := connectedPair(t)
	hold := make(chan struct{})
	defer close(hold)
	s.tr.Serve("/hold", func(_ transport.PeerID, read transport.ReadRequest) ([]byte, func()) {
		_, _ = read(16)
		<-hold
		return nil, nil
	})
	for range 20 {
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := c.tr.Request(rctx, p2p.ID(s.h.ID()), "/hold", []byte{1}, 1024)
		rcancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unanswered request: %v, want a context.DeadlineExceeded", err)
		}
	}
}
