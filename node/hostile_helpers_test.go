package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/node/rpc"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/wire"
)

// attacker is a misbehaving peer written for the hostile-input tests: a
// plain libp2p host on loopback TCP (so the node's gater and resource
// manager apply) that speaks GossipSub's wire protocol and the relay's
// request protocol raw. It speaks the relay's wire format from
// package wire, and breaks it on purpose.
type attacker struct {
	t     testing.TB
	h     host.Host
	ctx   context.Context // ends when the test ends: releases held streams
	proto protocol.ID

	txTopic, blockTopic string
	gossipMu            sync.Mutex
	gossip              network.Stream // raw GossipSub stream to the node
}

// newAttacker starts an attacker for chainID; key may be nil (fresh
// identity). extra libp2p options come last.
func newAttacker(t testing.TB, chainID string, key crypto.PrivKey, extra ...libp2p.Option) *attacker {
	t.Helper()
	opts := []libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics()}
	if key != nil {
		opts = append(opts, libp2p.Identity(key))
	}
	h, err := libp2p.New(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		h.Close()
	})
	rc := relay.DefaultConfig(chainID)
	return &attacker{t: t, h: h, ctx: ctx, proto: protocol.ID(rc.RequestProtocol())}
}

func (a *attacker) id() peer.ID { return a.h.ID() }

// connect dials n.
func (a *attacker) connect(n *Node) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()})
}

// connectIdentified connects m to n and waits until identify has completed
// on both ends: the work a new connection sets off (identify, and what
// GossipSub and the relay do with its result) is then done, so that, for
// instance, a goroutine count taken next is the connection's steady state.
// The dialler's side is done when connect returns (libp2p's Connect waits
// for its identify); n's side is awaited on n's event bus. Pex rounds run
// on their own timer throughout and have no settled point to wait for.
func connectIdentified(t testing.TB, m *attacker, n *Node) {
	t.Helper()
	w := watchBus(t, n.Host(), new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerIdentificationFailed))
	if err := m.connect(n); err != nil {
		t.Fatal(err)
	}
	failed := func(e any) bool {
		ev, ok := e.(event.EvtPeerIdentificationFailed)
		return ok && ev.Peer == m.id()
	}
	w.until(t, 10*time.Second, "the node to identify the attacker", func() bool {
		return w.count(identifiedBy(m.id())) > 0 || w.count(failed) > 0
	})
	if w.count(failed) > 0 {
		t.Fatal("the node failed to identify the attacker")
	}
}

// joinGossip makes the attacker a GossipSub peer of n that speaks the
// protocol raw: it accepts n's stream (and drains it), opens its own and
// subscribes to both relay topics. Its publishes are RPC frames written
// straight onto that stream, signed as n's StrictSign policy demands: no
// router of its own stands between the attack and the wire (a GossipSub
// router would queue, batch and, right after joining, drop them). It
// returns once n counts the attacker as a peer on both topics.
func (a *attacker) joinGossip(n *Node) {
	a.t.Helper()
	a.joinGossipWith(n, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		s.Reset()
	})
}

// joinGossipWith is joinGossip with onStream handling the node's stream to
// the attacker.
func (a *attacker) joinGossipWith(n *Node, onStream network.StreamHandler) {
	a.t.Helper()
	a.h.SetStreamHandler(pubsub.GossipSubID_v11, onStream)
	a.txTopic, a.blockTopic = n.Topics()
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	s, err := a.h.NewStream(ctx, n.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		a.t.Fatal(err)
	}
	a.gossip = s
	sub := func(topic string) *pb.RPC_SubOpts {
		return &pb.RPC_SubOpts{Subscribe: proto.Bool(true), Topicid: proto.String(topic)}
	}
	if err := a.writeRPC(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{sub(a.txTopic), sub(a.blockTopic)}}); err != nil {
		a.t.Fatal(err)
	}
	nps := n.PubSub()
	eventually(a.t, 10*time.Second, "the node to see the attacker on both topics", func() bool {
		return contains(nps.ListPeers(a.txTopic), a.id()) && contains(nps.ListPeers(a.blockTopic), a.id())
	})
}

// writeRPC writes one RPC frame (uvarint length, protobuf) on the
// attacker's GossipSub stream.
func (a *attacker) writeRPC(rpc *pb.RPC) error {
	b, err := proto.Marshal(rpc)
	if err != nil {
		return err
	}
	a.gossipMu.Lock()
	defer a.gossipMu.Unlock()
	_ = a.gossip.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = a.gossip.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

func contains(ps []peer.ID, p peer.ID) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// publish sends data as one GossipSub message on topic, unsigned and
// without author as the relay's topics require (a message's id is a hash
// of its content, so sending the same bytes twice is one message). It
// returns the stream's error: once the node has cut the attacker off, its
// messages go nowhere, as a real attacker's would.
func (a *attacker) publish(topic string, data []byte) error {
	m := &pb.Message{Data: data, Topic: proto.String(topic)}
	return a.writeRPC(&pb.RPC{Publish: []*pb.Message{m}})
}

// announceTxs publishes well-formed tx announcements of ids, at most
// wire.MaxAnnounceIDs per message. It stops at the first write error (the
// node has cut the attacker off) and returns it.
func (a *attacker) announceTxs(ids []chain.Hash) error {
	a.t.Helper()
	for len(ids) > 0 {
		k := min(len(ids), wire.MaxAnnounceIDs)
		wids := make([]wire.ID, k)
		for i, id := range ids[:k] {
			wids[i] = wire.ID(id)
		}
		if err := a.publish(a.txTopic, encode(a.t, &wire.TxAnnounce{IDs: wids})); err != nil {
			return err
		}
		ids = ids[k:]
	}
	return nil
}

// serveTxs installs a handler for the request protocol that hands each
// GetTxs request to handle and sends back what it returns; a nil response
// holds the stream open until the test ends, as a withholding peer would.
// Every other request (sync's tip and pool-id requests, block requests) is
// refused as a bad request, which costs the attacker nothing and keeps the
// node's other subsystems out of the test.
func (a *attacker) serveTxs(handle func(q *wire.GetTxs) wire.Response) {
	a.h.SetStreamHandler(a.proto, func(s network.Stream) {
		data, _, err := wire.ReadFrame(s, wire.MaxRequestFrame)
		if err != nil {
			s.Reset()
			return
		}
		var resp wire.Response = &wire.Error{Code: wire.ErrCodeBadRequest}
		if q, ok := mustDecodeRequest(data).(*wire.GetTxs); ok {
			resp = handle(q)
		}
		if resp == nil {
			<-a.ctx.Done()
			s.Reset()
			return
		}
		out, err := resp.Encode()
		if err != nil {
			s.Reset()
			return
		}
		if _, err := wire.WriteFrame(s, out); err != nil {
			s.Reset()
			return
		}
		s.Close()
	})
}

func mustDecodeRequest(b []byte) wire.Request {
	req, _ := wire.DecodeRequest(b)
	return req
}

// rawRequest sends payload as one frame on a fresh request stream to n and
// returns the decoded response.
func (a *attacker) rawRequest(n *Node, payload []byte) (wire.Response, error) {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	s, err := a.h.NewStream(ctx, n.ID(), a.proto)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := wire.WriteFrame(s, payload); err != nil {
		return nil, err
	}
	_ = s.CloseWrite()
	data, _, err := wire.ReadFrame(s, wire.MaxResponseFrame)
	if err != nil {
		return nil, err
	}
	return wire.DecodeResponse(data)
}

// encode is Encode that fails the test on error.
func encode(t testing.TB, m interface{ Encode() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fullAddrStrings returns n's addresses as Bootstrap takes them.
func fullAddrStrings(n *Node) []string {
	var out []string
	for _, a := range n.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// honestPair starts node a (configured by modA, options optsA) and an
// honest node b bootstrapped to it, and waits until they share both
// meshes.
func honestPair(t *testing.T, g *chain.Genesis, modA func(*Config), optsA ...Option) (a, b *Node) {
	t.Helper()
	cfgA := testConfig(t, g)
	if modA != nil {
		modA(&cfgA)
	}
	a = startNode(t, cfgA, optsA...)
	cfgB := testConfig(t, g)
	cfgB.Bootstrap = fullAddrStrings(a)
	b = startNode(t, cfgB)
	eventually(t, 15*time.Second, "a and b in each other's meshes", func() bool {
		ta, ba := a.MeshPeers()
		tb, bb := b.MeshPeers()
		return contains(ta, b.ID()) && contains(ba, b.ID()) && contains(tb, a.ID()) && contains(bb, a.ID())
	})
	return a, b
}

// waitPending waits until n's pool holds id, which must be executable, and
// returns when it did. It waits on n's newPendingTxs feed, which the node
// publishes to once the pool has taken an executable tx.
func waitPending(t testing.TB, n *Node, id chain.Hash, timeout time.Duration) time.Time {
	t.Helper()
	pending, stop := n.Feed().Subscribe(rpc.TopicNewPendingTxs)
	defer stop()
	if !waitOn(timeout, pending, func() bool { return n.Pool().Has(id) }) {
		t.Fatalf("tx %s not in the pool after %v", id.Short(), timeout)
	}
	return time.Now()
}

// gaugeValue reads a gauge (or counter) of n's metrics registry; labels
// select one series. ok is false when it does not exist.
func gaugeValue(t testing.TB, n *Node, name string, labels ...string) (float64, bool) {
	t.Helper()
	fams, err := n.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == labels[i] && l.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			}
		}
	}
	return 0, false
}

// goroutineWatch samples runtime.NumGoroutine until stopped and reports the
// peak: the bound a flood must not break.
type goroutineWatch struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak int
}

func watchGoroutines() *goroutineWatch {
	w := &goroutineWatch{stop: make(chan struct{}), done: make(chan struct{}), peak: runtime.NumGoroutine()}
	go func() {
		defer close(w.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				n := runtime.NumGoroutine()
				w.mu.Lock()
				w.peak = max(w.peak, n)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *goroutineWatch) Peak() int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// settleGoroutines waits until the goroutine count is at most limit, and
// fails with the count otherwise: what a flood started must end.
func settleGoroutines(t testing.TB, limit int, timeout time.Duration) {
	t.Helper()
	var n int
	if !poll(timeout, func() bool { n = runtime.NumGoroutine(); return n <= limit }) {
		t.Fatalf("%d goroutines after the flood, want <= %d", n, limit)
	}
}

// banned reports whether n holds a ban on p.
func banned(n *Node, p peer.ID) bool {
	for _, b := range n.Bans() {
		if b.Peer == p {
			return true
		}
	}
	return false
}

func describeResp(r wire.Response) string {
	switch m := r.(type) {
	case *wire.Error:
		return "error " + m.Code.String()
	case *wire.Blocks:
		return fmt.Sprintf("%d blocks", len(m.Blocks))
	case *wire.Headers:
		return fmt.Sprintf("%d headers", len(m.Headers))
	}
	return fmt.Sprintf("%T", r)
}
