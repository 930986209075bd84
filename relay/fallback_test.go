package relay

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/relay/wire"
)

// rogue is a misbehaving peer written for the tests: a plain GossipSub node
// on both topics (no validators, so it forwards whatever it receives at
// once) whose request handler is scripted.
type rogue struct {
	h  host.Host
	ps *pubsub.PubSub
	tx *pubsub.Topic
}

func newRogue(t testing.TB, h host.Host, cfg Config, serve func(ctx context.Context, s network.Stream, req wire.Request)) *rogue {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	rg := &rogue{h: h, ps: ps}
	for _, name := range []string{cfg.TxTopic(), cfg.BlockTopic()} {
		topic, err := ps.Join(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == cfg.TxTopic() {
			rg.tx = topic
		}
		sub, err := topic.Subscribe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if _, err := sub.Next(ctx); err != nil {
					return
				}
			}
		}()
	}
	h.SetStreamHandler(protocol.ID(cfg.RequestProtocol()), func(s network.Stream) {
		data, _, err := wire.ReadFrame(s, wire.MaxRequestFrame)
		if err != nil {
			_ = s.Reset()
			return
		}
		req, err := wire.DecodeRequest(data)
		if err != nil {
			_ = s.Reset()
			return
		}
		serve(ctx, s, req)
	})
	return rg
}

// withhold never answers: it holds the stream open until the test ends
// (the client resets it at its timeout).
func withhold(ctx context.Context, s network.Stream, _ wire.Request) {
	<-ctx.Done()
	_ = s.Reset()
}

// garbage answers every GetTxs with bodies that do not match their ids.
func garbage(_ context.Context, s network.Stream, req wire.Request) {
	q, ok := req.(*wire.GetTxs)
	if !ok {
		_ = s.Reset()
		return
	}
	out := &wire.Txs{}
	for range q.IDs {
		out.Bodies = append(out.Bodies, []byte("not the body you asked for"))
	}
	b, _ := out.Encode()
	_, _ = wire.WriteFrame(s, b)
	_ = s.Close()
}

func link(t testing.TB, mn mocknet.Mocknet, a, b peer.ID, latency time.Duration) {
	t.Helper()
	l, err := mn.LinkPeers(a, b)
	if err != nil {
		t.Fatal(err)
	}
	l.SetOptions(mocknet.LinkOptions{Latency: latency})
	if _, err := mn.ConnectPeers(a, b); err != nil {
		t.Fatal(err)
	}
}

// fallbackNet is origin A, receiver R and rogue W with A-W and W-R fast and
// A-R slow: R first gets A's announcement through W, which fails to serve,
// and learns of A only from the duplicate delivery over the slow link.
func fallbackNet(t *testing.T, cfg Config, serve func(context.Context, network.Stream, wire.Request)) (a, r *tnode, w *rogue) {
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	hs := make([]host.Host, 3)
	for i := range hs {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		hs[i] = h
	}
	a, r = newNode(t, hs[0], cfg), newNode(t, hs[1], cfg)
	w = newRogue(t, hs[2], cfg, serve)
	link(t, mn, hs[0].ID(), hs[2].ID(), 5*time.Millisecond)
	link(t, mn, hs[2].ID(), hs[1].ID(), 5*time.Millisecond)
	link(t, mn, hs[0].ID(), hs[1].ID(), 100*time.Millisecond)
	for _, nd := range []*tnode{a, r} {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitMesh(t, []*tnode{a, r})
	return a, r, w
}

// TestFallbackWithholdingAnnouncer: the announcer R hears first withholds;
// the tx arrives from the origin, learned from GossipSub's duplicate
// delivery, one FetchTimeout later, and the withholder is penalized.
func TestFallbackWithholdingAnnouncer(t *testing.T) {
	cfg := testConfig(BlockCompact)
	cfg.FetchTimeout = time.Second
	a, r, w := fallbackNet(t, cfg, withhold)
	ctx := waitCtx(t, 20*time.Second)

	tx := mkTx("withheld", 0, 120)
	start := time.Now()
	if _, v, err := a.r.SubmitTx(tx); v != Accepted {
		t.Fatal(v, err)
	}
	if err := r.pool.waitFor(ctx, func() bool { return r.pool.HasTx(txID(tx)) }); err != nil {
		t.Fatalf("tx never arrived: %v (offenses %v)", err, r.offs.all())
	}
	took := time.Since(start)
	t.Logf("delivered after %v with FetchTimeout %v", took, cfg.FetchTimeout)
	if took < cfg.FetchTimeout {
		t.Fatalf("arrived after %v, before the withholder's timeout: the test did not exercise fallback", took)
	}
	if took > cfg.FetchTimeout+2*time.Second {
		t.Fatalf("arrived after %v: withholding delayed it by more than one timeout", took)
	}
	if !r.offs.has(w.h.ID(), OffenseTimeout) {
		t.Fatalf("withholder not penalized: %v", r.offs.all())
	}
	eventually(t, 5*time.Second, func() error {
		if st := r.r.Stats(); st.DuplicateAnnouncements == 0 || st.FetchFailures == 0 || st.Accepted != 1 {
			return fmt.Errorf("stats: %+v", st)
		}
		return nil
	})
}

// TestFallbackWrongBody: the first announcer serves a body that does not
// hash to its id. The item waits (parked) for the duplicate delivery and
// arrives from the origin well within one timeout.
func TestFallbackWrongBody(t *testing.T) {
	cfg := testConfig(BlockCompact)
	cfg.FetchTimeout = time.Second
	a, r, w := fallbackNet(t, cfg, garbage)
	ctx := waitCtx(t, 20*time.Second)

	tx := mkTx("mismatch", 0, 120)
	start := time.Now()
	if _, v, err := a.r.SubmitTx(tx); v != Accepted {
		t.Fatal(v, err)
	}
	if err := r.pool.waitFor(ctx, func() bool { return r.pool.HasTx(txID(tx)) }); err != nil {
		t.Fatalf("tx never arrived: %v (offenses %v)", err, r.offs.all())
	}
	took := time.Since(start)
	t.Logf("delivered after %v", took)
	if took >= cfg.FetchTimeout {
		t.Fatalf("arrived after %v: a fast failure should not cost a timeout", took)
	}
	if !r.offs.has(w.h.ID(), OffenseBodyMismatch) {
		t.Fatalf("mismatching peer not penalized: %v", r.offs.all())
	}
}

// TestInvalidTxRejected: a peer announces and serves a tx the pool calls
// invalid: the announcement is rejected, nothing enters the pool, the peer
// is penalized.
func TestInvalidTxRejected(t *testing.T) {
	cfg := testConfig(BlockCompact)
	bad := append([]byte{0xFF}, mkTx("invalid", 0, 60)...)
	serveBad := func(_ context.Context, s network.Stream, req wire.Request) {
		q, ok := req.(*wire.GetTxs)
		if !ok {
			_ = s.Reset()
			return
		}
		out := &wire.Txs{}
		for _, id := range q.IDs {
			if id == txID(bad) {
				out.Bodies = append(out.Bodies, bad)
			} else {
				out.Bodies = append(out.Bodies, nil)
			}
		}
		b, _ := out.Encode()
		_, _ = wire.WriteFrame(s, b)
		_ = s.Close()
	}
	_, r, w := fallbackNet(t, cfg, serveBad)
	ctx := waitCtx(t, 20*time.Second)
	data, err := (&wire.TxAnnounce{IDs: []ID{txID(bad)}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.tx.Publish(ctx, data); err != nil {
		t.Fatal(err)
	}
	if err := r.offs.waitFor(ctx, func() bool { return r.offs.has(w.h.ID(), OffenseInvalidTx) }); err != nil {
		t.Fatalf("no penalty: %v", r.offs.all())
	}
	eventually(t, 5*time.Second, func() error {
		if r.r.Stats().Rejected == 0 {
			return io.ErrNoProgress
		}
		return nil
	})
	if r.pool.HasTx(txID(bad)) {
		t.Fatal("invalid tx entered the pool")
	}
}

// TestFallbackCompactBlockTxn: R hears a compact block first through the
// withholding W, lacks some of its txs, and asks W for them (getblocktxn).
// The duplicate delivery from the producer names another source; the block
// is completed from it one FetchTimeout later.
func TestFallbackCompactBlockTxn(t *testing.T) {
	cfg := testConfig(BlockCompact)
	cfg.FetchTimeout = time.Second
	a, r, w := fallbackNet(t, cfg, withhold)
	ctx := waitCtx(t, 20*time.Second)
	var txs [][]byte
	for i := range 3 {
		tx := mkTx("secret-fb", i, 90)
		a.pool.AddTx(tx)
		txs = append(txs, tx)
	}
	block, bid := a.chain.build(5, txs)
	if _, v, err := a.chain.AddBlock(block); v != Accepted {
		t.Fatal(v, err)
	}
	start := time.Now()
	if err := a.r.PublishBlock(block); err != nil {
		t.Fatal(err)
	}
	waitBlocks(t, ctx, []*tnode{r}, bid)
	took := time.Since(start)
	t.Logf("block completed after %v", took)
	if took < cfg.FetchTimeout || took > cfg.FetchTimeout+2*time.Second {
		t.Fatalf("completed after %v, want about one FetchTimeout (%v)", took, cfg.FetchTimeout)
	}
	if !r.offs.has(w.h.ID(), OffenseTimeout) {
		t.Fatalf("withholder not penalized: %v", r.offs.all())
	}
}
