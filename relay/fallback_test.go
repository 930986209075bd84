package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// rogue is a misbehaving peer written for the tests: a bare memnet node on
// both topics (no validators, so it forwards whatever it receives at once)
// whose request handler is scripted.
type rogue struct {
	id        PeerID
	tx, block transport.Topic
}

// rogueServe answers one decoded request; nil resets the exchange.
type rogueServe func(req wire.Request) []byte

func newRogue(t testing.TB, net *memnet.Network, id PeerID, cfg Config, serve rogueServe) *rogue {
	t.Helper()
	nd := net.Add(id)
	rg := &rogue{id: id}
	for _, name := range []string{cfg.TxTopic(), cfg.BlockTopic()} {
		topic, err := nd.Join(name, transport.TopicConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if name == cfg.TxTopic() {
			rg.tx = topic
		} else {
			rg.block = topic
		}
	}
	nd.Serve(cfg.RequestProtocol(), func(_ PeerID, read transport.ReadRequest) ([]byte, func()) {
		data, err := read(wire.MaxRequestFrame)
		if err != nil {
			return nil, nil
		}
		req, err := wire.DecodeRequest(data)
		if err != nil {
			return nil, nil
		}
		return serve(req), nil
	})
	return rg
}

// serveTxBodies answers GetTxs with the given bodies by id and not-found
// for every other id, counting into asked (when not nil) each body served.
func serveTxBodies(asked *atomic.Int64, bodies ...[]byte) rogueServe {
	byID := make(map[ID][]byte)
	for _, b := range bodies {
		byID[txID(b)] = b
	}
	return func(req wire.Request) []byte {
		q, ok := req.(*wire.GetTxs)
		if !ok {
			return nil
		}
		out := &wire.Txs{}
		for _, id := range q.IDs {
			b := byID[id]
			if b != nil && asked != nil {
				asked.Add(1)
			}
			out.Bodies = append(out.Bodies, b)
		}
		return encode(out)
	}
}

// serveBodies is serveTxBodies without counting.
func serveBodies(bodies ...[]byte) rogueServe { return serveTxBodies(nil, bodies...) }

// serveOnly answers GetTxs with body for its id and not-found for every
// other id, counting into asked (when not nil) each time body is served.
func serveOnly(body []byte, asked *atomic.Int64) rogueServe { return serveTxBodies(asked, body) }

// withhold never answers in time: it holds the exchange for an hour of
// virtual time (the client gives up at its timeout).
func withhold(wire.Request) []byte {
	time.Sleep(time.Hour)
	return nil
}

// encode is a test helper: the encoding of a response.
func encode(m wire.Response) []byte {
	b, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// garbage answers every GetTxs with bodies that do not match their ids.
func garbage(req wire.Request) []byte {
	q, ok := req.(*wire.GetTxs)
	if !ok {
		return nil
	}
	out := &wire.Txs{}
	for range q.IDs {
		out.Bodies = append(out.Bodies, []byte("not the body you asked for"))
	}
	return encode(out)
}

// fallbackNet is origin A, receiver R and rogue W with A-W and W-R fast and
// A-R slow: R first gets A's announcement through W, which fails to serve,
// and learns of A only from the duplicate delivery over the slow link.
//
// Sync is off: these tests are about gossip, and mempool sync with A would
// deliver the tx around the rogue.
func fallbackNet(t *testing.T, cfg Config, serve rogueServe) (a, r *tnode, w *rogue) {
	cfg.NoSync = true
	net := newNet(t, 0)
	a, r = newNode(t, net, "A", cfg), newNode(t, net, "R", cfg)
	w = newRogue(t, net, "W", cfg, serve)
	net.ConnectLatency(a.id, w.id, 5*time.Millisecond)
	net.ConnectLatency(w.id, r.id, 5*time.Millisecond)
	net.ConnectLatency(a.id, r.id, 100*time.Millisecond)
	for _, nd := range []*tnode{a, r} {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return a, r, w
}

// submitTimed submits tx at a and returns how long it took to reach r's
// pool.
func submitTimed(t *testing.T, ctx context.Context, a, r *tnode, tx []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, v, err := a.r.SubmitTx(tx); v != Accepted {
		t.Fatal(v, err)
	}
	if err := r.pool.WaitFor(ctx, func() bool { return r.pool.HasTx(txID(tx)) }); err != nil {
		t.Fatalf("tx never arrived: %v (offenses %v)", err, r.offs.all())
	}
	return time.Since(start)
}

// TestFallbackWithholdingAnnouncer: the announcer R hears first withholds;
// the tx arrives from the origin, learned from GossipSub's duplicate
// delivery, one FetchTimeout later, and the withholder is penalized.
func TestFallbackWithholdingAnnouncer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.FetchTimeout = time.Second
		a, r, w := fallbackNet(t, cfg, withhold)
		ctx := waitCtx(t, 20*time.Second)

		took := submitTimed(t, ctx, a, r, mkTx("withheld", 0, 120))
		t.Logf("delivered after %v with FetchTimeout %v", took, cfg.FetchTimeout)
		// Virtual time is exact: batch window, then the withholder's
		// timeout, then one round trip on the slow link to the origin.
		if took < cfg.FetchTimeout {
			t.Fatalf("arrived after %v, before the withholder's timeout: the test did not exercise fallback", took)
		}
		if took > cfg.FetchTimeout+300*time.Millisecond {
			t.Fatalf("arrived after %v: withholding delayed it by more than one timeout", took)
		}
		if !r.offs.has(w.id, OffenseTimeout) {
			t.Fatalf("withholder not penalized: %v", r.offs.all())
		}
		eventually(t, 5*time.Second, func() error {
			if st := r.r.Stats(); st.DuplicateAnnouncements == 0 || st.FetchFailures == 0 || st.Accepted != 1 {
				return fmt.Errorf("stats: %+v", st)
			}
			return nil
		})
	})
}

// TestFallbackWrongBody: the first announcer serves a body that does not
// hash to its id. The item waits (parked) for the duplicate delivery and
// arrives from the origin well within one timeout.
func TestFallbackWrongBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.FetchTimeout = time.Second
		a, r, w := fallbackNet(t, cfg, garbage)
		ctx := waitCtx(t, 20*time.Second)

		took := submitTimed(t, ctx, a, r, mkTx("mismatch", 0, 120))
		t.Logf("delivered after %v", took)
		if took >= cfg.FetchTimeout {
			t.Fatalf("arrived after %v: a fast failure should not cost a timeout", took)
		}
		if !r.offs.has(w.id, OffenseBodyMismatch) {
			t.Fatalf("mismatching peer not penalized: %v", r.offs.all())
		}
	})
}

// TestInvalidTxRejected: a peer announces and serves a tx the pool calls
// invalid: nothing enters the pool and the peer is penalized. Fetching
// first, the announcement is rejected. With cut-through the first one was
// forwarded before its body came; the offense then puts the peer on the
// fetch-first path, so its next junk announcement is rejected here.
func TestInvalidTxRejected(t *testing.T) {
	for _, fetchFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("fetch-first=%v", fetchFirst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(BlockCompact)
				cfg.TxFetchBeforeForward = fetchFirst
				cfg.TxCutThroughMinRTT = -1
				bad := append([]byte{0xFF}, mkTx("invalid", 0, 60)...)
				bad2 := append([]byte{0xFF}, mkTx("invalid", 1, 60)...)
				_, r, w := fallbackNet(t, cfg, serveBodies(bad, bad2))
				ctx := waitCtx(t, 20*time.Second)
				for i, tx := range [][]byte{bad, bad2} {
					data, err := (&wire.TxAnnounce{IDs: []ID{txID(tx)}}).Encode()
					if err != nil {
						t.Fatal(err)
					}
					if err := w.tx.Publish(ctx, data); err != nil {
						t.Fatal(err)
					}
					if err := r.offs.WaitFor(ctx, func() bool { return len(r.offs.all()) > i }); err != nil {
						t.Fatalf("no penalty: %v", r.offs.all())
					}
				}
				if got := r.offs.all(); !slices.Equal(got, []offenseRec{{w.id, OffenseInvalidTx}, {w.id, OffenseInvalidTx}}) {
					t.Fatalf("offenses %v, want two invalid-tx offenses of %s", got, w.id)
				}
				eventually(t, 5*time.Second, func() error {
					st := r.r.Stats()
					want := uint64(2)
					if !fetchFirst {
						want = 1
					}
					if st.Rejected != want {
						return fmt.Errorf("%d rejected, want %d: %+v", st.Rejected, want, st)
					}
					if !fetchFirst && st.TxAnnouncementsEarly != 1 {
						return fmt.Errorf("%d forwarded early, want 1", st.TxAnnouncementsEarly)
					}
					return nil
				})
				if r.pool.HasTx(txID(bad)) || r.pool.HasTx(txID(bad2)) {
					t.Fatal("invalid tx entered the pool")
				}
			})
		})
	}
}

// TestFetchedBatchAddedTogether: the bodies of one announcement, fetched in
// one answer, reach a batch-taking pool in one call (where the node checks
// their signatures together), and each gets its own verdict: the valid
// ones enter the pool, the invalid one costs its server one offense.
func TestFetchedBatchAddedTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.TxFetchBeforeForward = true
		good1, good2 := mkTx("good", 0, 60), mkTx("good", 1, 60)
		bad := append([]byte{0xFF}, mkTx("invalid", 0, 60)...)
		_, r, w := fallbackNet(t, cfg, serveBodies(good1, bad, good2))
		ctx := waitCtx(t, 20*time.Second)
		data, err := (&wire.TxAnnounce{IDs: []ID{txID(good1), txID(bad), txID(good2)}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.tx.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		if err := r.offs.WaitFor(ctx, func() bool { return len(r.offs.all()) > 0 }); err != nil {
			t.Fatalf("no penalty: %v", r.offs.all())
		}
		eventually(t, 5*time.Second, func() error {
			if !r.pool.HasTx(txID(good1)) || !r.pool.HasTx(txID(good2)) {
				return errors.New("valid txs of the batch not pooled")
			}
			return nil
		})
		if got := r.offs.all(); !slices.Equal(got, []offenseRec{{w.id, OffenseInvalidTx}}) {
			t.Fatalf("offenses %v, want one invalid-tx offense of %s", got, w.id)
		}
		if r.pool.HasTx(txID(bad)) {
			t.Fatal("invalid tx entered the pool")
		}
		if n := r.pool.Batches(); n != 1 {
			t.Fatalf("pool took %d batches, want the 3 bodies in 1", n)
		}
	})
}

// TestFallbackCompactBlockTxn: R hears a compact block first through the
// withholding W, lacks some of its txs, and asks W for them (getblocktxn).
// The duplicate delivery from the producer names another source; the block
// is completed from it one FetchTimeout later.
func TestFallbackCompactBlockTxn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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
		block, bid := a.chain.Build(5, txs)
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
		if !r.offs.has(w.id, OffenseTimeout) {
			t.Fatalf("withholder not penalized: %v", r.offs.all())
		}
	})
}

// TestReplayedAnnouncementsDieAtFirstHop: a peer that signs new messages
// naming a tx every node already announced (a replay, fresh enough to
// pass the validator's age check) gets them dropped by its neighbour;
// they never cross the network.
func TestReplayedAnnouncementsDieAtFirstHop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		net := newNet(t, 5*time.Millisecond)
		var nodes []*tnode
		for i := range 4 {
			nodes = append(nodes, newNode(t, net, PeerID(fmt.Sprintf("n%d", i)), cfg))
		}
		w := newRogue(t, net, "W", cfg, func(wire.Request) []byte { return nil })
		for i := range 3 {
			net.Connect(nodes[i].id, nodes[i+1].id)
		}
		net.Connect(w.id, nodes[0].id)
		for _, nd := range nodes {
			if err := nd.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ctx := waitCtx(t, 10*time.Second)
		tx := mkTx("replayed", 0, 100)
		if _, v, err := nodes[1].r.SubmitTx(tx); v != Accepted {
			t.Fatal(v, err)
		}
		waitPools(t, ctx, nodes, []ID{txID(tx)})
		time.Sleep(100 * time.Millisecond)
		before := nodes[3].r.Stats().AnnouncementsIn
		data, err := (&wire.TxAnnounce{IDs: []ID{txID(tx)}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			if err := w.tx.Publish(ctx, data); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		if got := nodes[3].r.Stats().AnnouncementsIn - before; got != 0 {
			t.Fatalf("%d replayed announcements crossed the network to n3", got)
		}
		if st := nodes[0].r.Stats(); st.Ignored < 50 {
			t.Fatalf("first hop did not drop the replays: %+v", st)
		}
	})
}
