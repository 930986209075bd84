package relay

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/relaytest"
	"github.com/rumor-relay/rumor/relay/wire"
)

// lineOfAuthNodes builds started relays a-b-c... in a line on a memnet with
// link latency l, each on a chain that authenticates headers (so blocks may
// be forwarded before they are stored).
func lineOfAuthNodes(t *testing.T, n int, l time.Duration, cfg Config) []*tnode {
	return lineOfAuthNodesWith(t, n, l, func(int) Config { return cfg })
}

// lineOfAuthNodesWith is lineOfAuthNodes with a configuration per node.
func lineOfAuthNodesWith(t *testing.T, n int, l time.Duration, cfg func(i int) Config) []*tnode {
	t.Helper()
	net := newNet(t, l)
	nodes := make([]*tnode, n)
	for i := range nodes {
		nodes[i] = newAuthNode(t, net, PeerID(string(rune('a'+i))), cfg(i))
	}
	for i := 1; i < n; i++ {
		net.Connect(nodes[i-1].id, nodes[i].id)
	}
	for _, nd := range nodes {
		if err := nd.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Let the gossip meshes form before anything is published.
	time.Sleep(2 * time.Second)
	return nodes
}

// noOffenses fails t for each node whose penalty hook heard anything.
func noOffenses(t *testing.T, nodes ...*tnode) {
	t.Helper()
	for _, nd := range nodes {
		if offs := nd.offs.all(); len(offs) > 0 {
			t.Errorf("node %s penalized: %v", nd.id, offs)
		}
	}
}

// newAuthNode is newNode on a relaytest.AuthChain.
func newAuthNode(t *testing.T, net *memnet.Network, id PeerID, cfg Config) *tnode {
	t.Helper()
	pool := relaytest.NewPool()
	n := &tnode{id: id, tr: net.Add(id), pool: pool, chain: relaytest.NewChain(pool), offs: &offenseLog{}}
	r, err := New(n.tr, relaytest.AuthChain{Chain: n.chain}, pool, cfg, WithPenaltyHook(n.offs.hook))
	if err != nil {
		t.Fatal(err)
	}
	n.r = r
	t.Cleanup(func() { _ = r.Close() })
	return n
}

// TestBlockCutThrough: on a line a-b-c with link latency L, a publishes a
// compact block of txs only it holds. b forwards the announcement as soon
// as the header verifies and serves c's getblocktxn once its own has
// come back, so c stores the block 4L after the publish: header 2L, its
// request reaches b at 3L, when b's own answer from a arrives, and b's
// answer reaches c at 4L. Store-and-forward takes 6L (b stores at 3L, c
// has the header at 4L and b's answer at 6L). A child published right
// half a latency behind its parent is forwarded while the parent is still coming in and
// is stored after it.
func TestBlockCutThrough(t *testing.T) {
	const l = 10 * time.Millisecond
	for _, tc := range []struct {
		name         string
		storeFirst   bool
		want, early  time.Duration
		wantForwards uint64
	}{
		{name: "cut-through", want: 4 * l, wantForwards: 2},
		{name: "store-and-forward", storeFirst: true, want: 6 * l},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(BlockCompact)
				cfg.StoreBeforeForward = tc.storeFirst
				nodes := lineOfAuthNodes(t, 3, l, cfg)
				a, b, c := nodes[0], nodes[1], nodes[2]
				ctx := waitCtx(t, 30*time.Second)

				var blocks [][]byte
				var ids []ID
				for k := range 2 {
					var txs [][]byte
					for i := range 3 {
						tx := mkTx("secret", 10*k+i, 200)
						if _, v, _ := a.pool.AddTx(tx); v != Accepted {
							t.Fatal("add")
						}
						txs = append(txs, tx)
					}
					blk, id := a.chain.Build(uint64(k+1), txs)
					if _, v, err := a.chain.AddBlock(blk); v != Accepted {
						t.Fatalf("producer add: %v %v", v, err)
					}
					blocks, ids = append(blocks, blk), append(ids, id)
				}
				start := time.Now()
				for k, blk := range blocks {
					if k > 0 {
						time.Sleep(l / 2) // the parent is in flight at b when the child comes
					}
					if err := a.r.PublishBlock(blk); err != nil {
						t.Fatal(err)
					}
				}
				if err := c.chain.WaitFor(ctx, func() bool { return c.chain.HasBlock(ids[0]) }); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != tc.want {
					t.Errorf("c stored the block %v after the publish, want %v (L = %v)", got, tc.want, l)
				}
				waitBlocks(t, ctx, nodes, ids...)
				if got := b.r.Stats().BlocksForwardedEarly; got != tc.wantForwards {
					t.Errorf("b forwarded %d blocks early, want %d", got, tc.wantForwards)
				}
				noOffenses(t, nodes...)
			})
		})
	}
}

// TestBlockCutThroughInvalidBody: a block whose header is authentic but
// whose body breaks a rule is forwarded before anyone finds out (that is
// the trade), every node then refuses to store it, and nobody is
// penalized: the relays passed on what the proposer signed. The last
// node stores before it forwards, and still does not charge the forwarder.
func TestBlockCutThroughInvalidBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := lineOfAuthNodesWith(t, 4, 10*time.Millisecond, func(i int) Config {
			c := testConfig(BlockPush)
			c.StoreBeforeForward = i == 3
			return c
		})
		a, c, d := nodes[0], nodes[2], nodes[3]
		bad := mkTx("bad", 0, 100)
		bad[0] = 0xFF // the test chain's invalid tx
		blk, id := a.chain.Build(1, [][]byte{bad})
		if err := a.r.PublishBlock(blk); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() error {
			if c.r.Stats().LateInvalidBlocks != 1 || d.r.Stats().Ignored+d.r.Stats().Rejected == 0 {
				return errNotYet
			}
			return nil
		})
		for _, nd := range nodes[1:] {
			if nd.chain.HasBlock(id) {
				t.Errorf("node %s stored the invalid block", nd.id)
			}
		}
		noOffenses(t, nodes[1:]...)
	})
}

// TestBlockCutThroughForgedHeader: a header that does not verify is never
// forwarded, and its sender pays.
func TestBlockCutThroughForgedHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nodes := lineOfAuthNodes(t, 3, 10*time.Millisecond, testConfig(BlockPush))
		a, b, c := nodes[0], nodes[1], nodes[2]
		blk, id := a.chain.Build(relaytest.ForgedSalt|1, [][]byte{mkTx("tx", 0, 100)})
		if err := a.r.PublishBlock(blk); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() error {
			if !b.offs.has(a.id, OffenseInvalidBlock) {
				return errNotYet
			}
			return nil
		})
		time.Sleep(time.Second)
		if b.chain.HasBlock(id) || c.chain.HasBlock(id) || c.r.Stats().AnnouncementsIn != 0 {
			t.Errorf("forged block went past b: b has %v, c has %v, c's announcements %d",
				b.chain.HasBlock(id), c.chain.HasBlock(id), c.r.Stats().AnnouncementsIn)
		}
	})
}

// TestFlightWaitBody covers what a request for a block in flight gets: the
// body once assembled, nothing (tracked) when the work ends without one or
// takes longer than the wait, and untracked for a block nobody works on.
func TestFlightWaitBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f blockFlight
		ctx := context.Background()
		x, y := ID{1}, ID{2}
		if b, tracked := f.waitBody(ctx, x, time.Second); b != nil || tracked {
			t.Fatalf("untracked block: %v %v", b, tracked)
		}
		f.begin(x)
		f.begin(y)
		go func() {
			time.Sleep(100 * time.Millisecond)
			f.assembled(x, []byte("block x"))
			time.Sleep(100 * time.Millisecond)
			f.end(y)
		}()
		if b, tracked := f.waitBody(ctx, x, time.Second); string(b) != "block x" || !tracked {
			t.Fatalf("assembled block: %q %v", b, tracked)
		}
		if b, tracked := f.waitBody(ctx, y, time.Second); b != nil || !tracked {
			t.Fatalf("failed block: %q %v", b, tracked)
		}
		f.end(x)
		f.begin(x)
		start := time.Now()
		if b, tracked := f.waitBody(ctx, x, 300*time.Millisecond); b != nil || !tracked || time.Since(start) != 300*time.Millisecond {
			t.Fatalf("slow block: %q %v after %v", b, tracked, time.Since(start))
		}
		f.end(x)
	})
}

// TestTxCutThrough: on a line a-b-c with link latency L, a tx submitted at
// a reaches c 4L after a announces it when b forwards the announcement
// before fetching the body (c's request waits at b for b's own fetch), and
// 6L after when b fetches first. Nobody is penalized either way.
func TestTxCutThrough(t *testing.T) {
	const l = 10 * time.Millisecond
	for _, tc := range []struct {
		name       string
		fetchFirst bool
		minRTT     time.Duration
		rtt        time.Duration // round trips b measured before
		noSync     bool          // no tip requests, so no round trips measured
		want       time.Duration
		early      uint64
	}{
		{name: "cut-through", minRTT: -1, want: 4 * l, early: 1},
		{name: "fetch-first", fetchFirst: true, minRTT: -1, want: 6 * l},
		// The default gate (20 ms): sync's tip requests at connection
		// measured 2L = 20 ms round trips; without them nothing says the
		// links are long.
		{name: "tip round trips measured", want: 4 * l, early: 1},
		{name: "no round trip measured", noSync: true, want: 6 * l},
		{name: "round trips under the gate", rtt: DefaultTxCutThroughMinRTT - time.Millisecond, want: 6 * l},
		{name: "round trips at the gate", rtt: DefaultTxCutThroughMinRTT, want: 4 * l, early: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(BlockCompact)
				cfg.TxFetchBeforeForward = tc.fetchFirst
				cfg.TxCutThroughMinRTT = tc.minRTT
				cfg.NoSync = tc.noSync
				nodes := lineOfAuthNodes(t, 3, l, cfg)
				a, b, c := nodes[0], nodes[1], nodes[2]
				if tc.rtt > 0 {
					for range RTTSamples {
						b.r.rtt.add(tc.rtt)
					}
				}
				ctx := waitCtx(t, 10*time.Second)
				tx := mkTx("cut", 0, 250)
				if _, v, err := a.r.SubmitTx(tx); v != Accepted {
					t.Fatalf("submit: %v %v", v, err)
				}
				start := time.Now()
				a.r.batch.flush(ctx)
				id := txID(tx)
				if err := c.pool.WaitFor(ctx, func() bool { return c.pool.HasTx(id) }); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got != tc.want {
					t.Errorf("c holds the tx %v after the announcement, want %v (L = %v)", got, tc.want, l)
				}
				if got := b.r.Stats().TxAnnouncementsEarly; got != tc.early {
					t.Errorf("b forwarded %d announcements early, want %d", got, tc.early)
				}
				noOffenses(t, nodes...)
			})
		})
	}
}

// alwaysCutThroughConfig is the withholder tests' relay config: txs cut
// through whatever the round trips, and no sync to repair behind them.
func alwaysCutThroughConfig() Config {
	cfg := testConfig(BlockCompact)
	cfg.NoSync = true
	cfg.TxCutThroughMinRTT = -1
	return cfg
}

// TestTxCutThroughWithheld: an announcer that never serves its tx gets its
// first announcement forwarded (that is the trade); the node behind the
// honest forwarder is answered busy, not charged anything against the
// forwarder, and the withholder pays its direct peer.
func TestTxCutThroughWithheld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := alwaysCutThroughConfig()
		net := newNet(t, 10*time.Millisecond)
		b := newNode(t, net, "b", cfg)
		c := newNode(t, net, "c", cfg)
		w := newRogue(t, net, "w", cfg, func(wire.Request) []byte {
			return encode(&wire.Txs{Bodies: [][]byte{nil}})
		})
		net.Connect(w.id, b.id)
		net.Connect(b.id, c.id)
		for _, nd := range []*tnode{b, c} {
			if err := nd.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		data, err := (&wire.TxAnnounce{IDs: []ID{txID([]byte("never served"))}}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.tx.Publish(context.Background(), data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * cfg.txValidateTimeout())
		if got := b.offs.all(); !slices.Equal(got, []offenseRec{{w.id, OffenseNotFound}}) {
			t.Errorf("b's offenses %v, want one not-found of the withholder", got)
		}
		if got := c.offs.all(); len(got) != 0 {
			t.Logf("b %+v\nc %+v", b.r.Stats(), c.r.Stats())
			t.Errorf("c charged %v to the honest forwarder", got)
		}
		if st := b.r.Stats(); st.TxAnnouncementsEarly != 1 || st.RequestsServed == 0 {
			t.Errorf("b: %d forwarded early, %d requests served; want 1 and c's request", st.TxAnnouncementsEarly, st.RequestsServed)
		}
	})
}

// TestBlockCutThroughBadShortIDs: a rogue that hears a block first passes
// it on re-encoded with short ids of the wrong txs, ahead of the honest
// announcement. The victim forwards it (the header is authentic), rebuilds
// a body that does not match the header and so never serves it, fetches
// the whole block (from the honest announcer, once the rogue refuses), and
// the node behind it stores the right block without charging the victim.
func TestBlockCutThroughBadShortIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const l = 10 * time.Millisecond
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		net := newNet(t, l)
		p := newAuthNode(t, net, "p", cfg)
		v := newAuthNode(t, net, "v", cfg)
		d := newAuthNode(t, net, "d", cfg)
		m := newRogue(t, net, "m", cfg, func(wire.Request) []byte { return encode(&wire.Block{}) })
		net.ConnectLatency(p.id, v.id, 4*l) // the honest announcement comes late
		net.Connect(m.id, v.id)
		net.Connect(v.id, d.id)
		for _, nd := range []*tnode{p, v, d} {
			if err := nd.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second)
		ctx := waitCtx(t, 20*time.Second)

		// Everyone holds the block's txs and some others.
		var txs, others [][]byte
		for i := range 6 {
			tx, other := mkTx("in-block", i, 120), mkTx("other", i, 120)
			for _, nd := range []*tnode{p, v, d} {
				nd.pool.AddTx(tx)
				nd.pool.AddTx(other)
			}
			txs, others = append(txs, tx), append(others, other)
		}
		block, bid := p.chain.Build(1, txs)
		if _, vd, err := p.chain.AddBlock(block); vd != Accepted {
			t.Fatalf("producer add: %v %v", vd, err)
		}
		honest, err := p.r.compactOf(block[:relaytest.HeaderSize], txs, nil)
		if err != nil {
			t.Fatal(err)
		}
		bad := &wire.CompactBlock{Header: honest.Header, Nonce: honest.Nonce + 1}
		key := wire.NewShortIDKey(bad.Header, bad.Nonce)
		for _, tx := range others {
			bad.ShortIDs = append(bad.ShortIDs, key.ShortID(txID(tx)))
		}
		data, err := bad.Encode()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := m.block.Publish(ctx, data); err != nil {
			t.Fatal(err)
		}
		if err := p.r.PublishBlock(block); err != nil {
			t.Fatal(err)
		}
		waitBlocks(t, ctx, []*tnode{v, d}, bid)
		// The honest announcement reaches v at 4L and names p as a source;
		// v has the whole block one round trip to p later (12L), d one
		// latency after that. Without the honest announcer as a source, v
		// would wait for the block validation timeout.
		if took := time.Since(start); took != 13*l {
			t.Errorf("v and d stored the block %v after the attack, want %v", took, 13*l)
		}
		if offs := d.offs.all(); len(offs) > 0 {
			t.Errorf("d charged %v to the honest forwarder", offs)
		}
	})
}

// TestPrefillYoungTxs: by default a compact block carries no tx whole by
// age, however young or however long the round trips (a far node still
// fetching one completes the block from its pool); with a prefill age it
// carries those first seen here within it.
func TestPrefillYoungTxs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		txs := [][]byte{mkTx("old", 0, 50), mkTx("mid", 1, 50), mkTx("new", 2, 50)}
		hdr := relaytest.EncodeHeader(1, ID{}, relaytest.TxRoot(txs), 0)
		r := &Relay{pool: relaytest.NewPool(), seen: newFirstSeen(16)}
		for i, ago := range []time.Duration{200, 100, 10} {
			r.seen.record(txID(txs[i]), time.Now().Add(-ago*time.Millisecond))
		}
		prefilled := func(batch map[ID]bool) []uint32 {
			c, err := r.compactOf(hdr, txs, batch)
			if err != nil {
				t.Fatal(err)
			}
			var idx []uint32
			for _, p := range c.Prefilled {
				idx = append(idx, p.Index)
			}
			if len(c.Prefilled)+len(c.ShortIDs) != len(txs) {
				t.Fatalf("%d prefilled and %d short ids for %d txs", len(c.Prefilled), len(c.ShortIDs), len(txs))
			}
			return idx
		}
		for i := range RTTSamples {
			r.rtt.add(time.Duration(100+i) * time.Millisecond)
		}
		if got := prefilled(nil); len(got) != 0 {
			t.Errorf("default: prefilled %v, want none", got)
		}
		if got := prefilled(map[ID]bool{txID(txs[0]): true}); !slices.Equal(got, []uint32{0}) {
			t.Errorf("default with tx 0 unannounced: prefilled %v, want [0]", got)
		}
		r.cfg.PrefillAge = 150 * time.Millisecond
		if got := prefilled(nil); !slices.Equal(got, []uint32{1, 2}) {
			t.Errorf("150ms: prefilled %v, want [1 2]", got)
		}
		r.cfg.PrefillAge = time.Second
		if got := prefilled(nil); !slices.Equal(got, []uint32{0, 1, 2}) {
			t.Errorf("1s: prefilled %v, want all", got)
		}
		r.cfg.PrefillAge = -1
		if got := prefilled(nil); len(got) != 0 {
			t.Errorf("negative: prefilled %v, want none", got)
		}
	})
}

// collidingPool is a pool whose short-id lookup answers one position with
// the wrong tx, as a 48-bit short-id collision would.
type collidingPool struct {
	*relaytest.Pool
	wrong []byte
}

func (p collidingPool) LookupShortIDs(shortID func(ID) uint64, short []uint64) [][]byte {
	got := p.Pool.LookupShortIDs(shortID, short)
	if len(got) > 0 {
		got[0] = p.wrong
	}
	return got
}

// TestShortIDCollision: a receiver whose pool resolves a short id to the
// wrong tx rebuilds a block that does not match its header. With or
// without cut-through and with or without a body check, it fetches the
// whole block from the announcer, stores the right one and blames nobody
// (BIP152: a collision is nobody's fault).
func TestShortIDCollision(t *testing.T) {
	for _, tc := range []struct {
		name       string
		auth       bool
		storeFirst bool
	}{
		{name: "cut-through, body check", auth: true},
		{name: "store-and-forward, body check", auth: true, storeFirst: true},
		{name: "no header or body check", auth: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(BlockCompact)
				cfg.NoSync = true
				cfg.StoreBeforeForward = tc.storeFirst
				net := newNet(t, 10*time.Millisecond)
				p := newNode(t, net, "p", cfg)
				wrong := mkTx("wrong", 0, 120)
				pool := relaytest.NewPool()
				pool.AddTx(wrong)
				v := &tnode{id: "v", tr: net.Add("v"), pool: pool, chain: relaytest.NewChain(pool), offs: &offenseLog{}}
				var ch Chain = v.chain
				if tc.auth {
					ch = relaytest.AuthChain{Chain: v.chain}
				}
				r, err := New(v.tr, ch, collidingPool{Pool: pool, wrong: wrong}, cfg, WithPenaltyHook(v.offs.hook))
				if err != nil {
					t.Fatal(err)
				}
				v.r = r
				t.Cleanup(func() { _ = r.Close() })
				net.Connect(p.id, v.id)
				for _, nd := range []*tnode{p, v} {
					if err := nd.r.Start(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
				time.Sleep(2 * time.Second)
				ctx := waitCtx(t, 10*time.Second)
				var txs [][]byte
				for i := range 4 {
					tx := mkTx("in-block", i, 120)
					p.pool.AddTx(tx)
					pool.AddTx(tx)
					txs = append(txs, tx)
				}
				block, bid := p.chain.Build(1, txs)
				if _, vd, err := p.chain.AddBlock(block); vd != Accepted {
					t.Fatalf("producer add: %v %v", vd, err)
				}
				if err := p.r.PublishBlock(block); err != nil {
					t.Fatal(err)
				}
				waitBlocks(t, ctx, []*tnode{v}, bid)
				if got, _ := v.chain.GetBlock(bid); string(got) != string(block) {
					t.Fatal("stored a different block")
				}
				if offs := v.offs.all(); len(offs) > 0 {
					t.Errorf("a collision blamed someone: %v", offs)
				}
				if got := v.chain.Adds(); got != 1 {
					t.Errorf("%d blocks stored, want 1", got)
				}
			})
		})
	}
}

// TestTxCutThroughBusyWithholder: an announcer that answers every fetch
// busy commits no offense, but its early-forwarded announcement delivered
// nothing, so its next ones are fetched before they go further: its junk
// crosses the network once, and a replay naming the same ids is not news.
func TestTxCutThroughBusyWithholder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := alwaysCutThroughConfig()
		net := newNet(t, 10*time.Millisecond)
		b := newNode(t, net, "b", cfg)
		w := newRogue(t, net, "w", cfg, func(wire.Request) []byte {
			return encode(&wire.Error{Code: wire.ErrCodeBusy})
		})
		net.Connect(w.id, b.id)
		if err := b.r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		for i := range 3 {
			data, err := (&wire.TxAnnounce{IDs: []ID{txID(mkTx("junk", i, 100))}}).Encode()
			if err != nil {
				t.Fatal(err)
			}
			if err := w.tx.Publish(context.Background(), data); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * cfg.txValidateTimeout())
		}
		if st := b.r.Stats(); st.TxAnnouncementsEarly != 1 || st.Accepted != 1 {
			t.Errorf("%d forwarded early, %d accepted; want 1 and 1 (the first only)", st.TxAnnouncementsEarly, st.Accepted)
		}
	})
}

// TestTxFlightBound: no more than MaxEarlyTxIDs ids are in flight behind
// early forwards; ids whose fetch failed lately are not news.
func TestTxFlightBound(t *testing.T) {
	var f txFlight
	now := time.Unix(1000, 0)
	ids := make([]ID, MaxEarlyTxIDs+1)
	for i := range ids {
		ids[i] = ID{byte(i), byte(i >> 8)}
	}
	if got := f.begin(ids, now); got != nil {
		t.Fatalf("%d ids taken past the bound", len(got))
	}
	mine := f.begin(ids[:MaxEarlyTxIDs], now)
	if len(mine) != MaxEarlyTxIDs || f.begin(ids[MaxEarlyTxIDs:], now) != nil {
		t.Fatalf("bound: took %d, then more", len(mine))
	}
	f.end(mine, mine[:1], now)
	if got := f.begin(mine[:2], now.Add(-time.Second)); len(got) != 1 || got[0] != mine[1] {
		t.Fatalf("a lately failed id was news again: %v", got)
	}
	if got := f.begin(mine[:1], now.Add(time.Second)); len(got) != 1 {
		t.Fatalf("an id that failed long ago is news again: got %v", got)
	}
}

// TestServeOwedItems: what a node answers for items it announced before
// holding them (cut-through). A GetTxs answer stops before the first tx
// still on its way (busy when that is the first asked); a block whose
// early import failed lately is answered busy; anything never announced
// is not found, as before.
func TestServeOwedItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newNode(t, newNet(t, 0), "n", testConfig(BlockCompact))
		r := n.r
		held, owed, unknown := mkTx("held", 0, 100), mkTx("owed", 0, 100), mkTx("unknown", 0, 100)
		n.pool.AddTx(held)
		mine := r.txFlight.begin([]ID{txID(owed)}, time.Now())
		bodies := func(resp any) [][]byte {
			txs, ok := resp.(*wire.Txs)
			if !ok {
				t.Fatalf("answer %T, want txs", resp)
			}
			return txs.Bodies
		}
		if got := bodies(r.serve("p", &wire.GetTxs{IDs: []ID{txID(held), txID(owed), txID(held)}})); len(got) != 1 || string(got[0]) != string(held) {
			t.Errorf("held then owed: %d bodies, want the held one only", len(got))
		}
		if e, ok := r.serve("p", &wire.GetTxs{IDs: []ID{txID(owed), txID(held)}}).(*wire.Error); !ok || e.Code != wire.ErrCodeBusy {
			t.Errorf("owed first: want busy")
		}
		r.txFlight.end(mine, mine, time.Now()) // its fetch failed
		if e, ok := r.serve("p", &wire.GetTxs{IDs: []ID{txID(owed)}}).(*wire.Error); !ok || e.Code != wire.ErrCodeBusy {
			t.Errorf("failed lately: want busy")
		}
		if got := bodies(r.serve("p", &wire.GetTxs{IDs: []ID{txID(unknown)}})); len(got) != 1 || got[0] != nil {
			t.Errorf("never announced: want not found")
		}

		failed, never := ID{1}, ID{2}
		r.flight.begin(failed)
		r.flight.failed(failed, time.Now())
		r.flight.end(failed)
		if e, ok := r.serve("p", &wire.GetBlockTxn{Block: failed, Indexes: []uint32{0}}).(*wire.Error); !ok || e.Code != wire.ErrCodeBusy {
			t.Errorf("failed early import: want busy")
		}
		if bt, ok := r.serve("p", &wire.GetBlockTxn{Block: never, Indexes: []uint32{0}}).(*wire.BlockTxn); !ok || bt.Found {
			t.Errorf("unknown block: want not found")
		}
		time.Sleep(r.cfg.BlockFetchTimeout + time.Second)
		if bt, ok := r.serve("p", &wire.GetBlockTxn{Block: failed, Indexes: []uint32{0}}).(*wire.BlockTxn); !ok || bt.Found {
			t.Errorf("import failed long ago: want not found")
		}
	})
}

// TestDuplicateBlockAnnouncementsOneJob: b and c both hold a block and
// announce it at the same instant, each in a compact message of its own
// (different nonces, so gossip cannot tell the two apart), to r, which
// lacks its txs. One job brings the block in; the other announcement waits
// for it and lends its sender as a further source. So r asks for the
// missing txs once, stores the block once, and penalizes no one.
func TestDuplicateBlockAnnouncementsOneJob(t *testing.T) {
	const l = 10 * time.Millisecond
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.NoSync = true
		net := newNet(t, l)
		b, c := newAuthNode(t, net, "b", cfg), newAuthNode(t, net, "c", cfg)
		pool := relaytest.NewPool()
		r := &tnode{id: "r", tr: net.Add("r"), pool: pool, chain: relaytest.NewChain(pool), offs: &offenseLog{}}
		counted := &addCounter{AuthChain: relaytest.AuthChain{Chain: r.chain}}
		relay, err := New(r.tr, counted, pool, cfg, WithPenaltyHook(r.offs.hook))
		if err != nil {
			t.Fatal(err)
		}
		r.r = relay
		t.Cleanup(func() { _ = relay.Close() })
		nodes := []*tnode{b, c, r}
		net.Connect(b.id, r.id)
		net.Connect(c.id, r.id)
		for _, nd := range nodes {
			if err := nd.r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(2 * time.Second) // meshes form
		ctx := waitCtx(t, 30*time.Second)
		var txs [][]byte
		for i := range 4 {
			txs = append(txs, mkTx("diamond", i, 200))
		}
		var blk []byte
		var id ID
		for _, nd := range []*tnode{b, c} {
			for _, tx := range txs {
				if _, v, _ := nd.pool.AddTx(tx); v != Accepted {
					t.Fatal("add tx")
				}
			}
			blk, id = nd.chain.Build(1, txs)
			if _, v, err := nd.chain.AddBlock(blk); v != Accepted {
				t.Fatalf("add block: %v %v", v, err)
			}
		}
		for _, nd := range []*tnode{b, c} {
			if err := nd.r.PublishBlock(blk); err != nil {
				t.Fatal(err)
			}
		}
		waitBlocks(t, ctx, []*tnode{r}, id)
		synctest.Wait()
		served := b.r.Stats().RequestsServed + c.r.Stats().RequestsServed
		if served != 1 {
			t.Errorf("b and c served r %d requests, want 1 (one getblocktxn)", served)
		}
		if got := counted.calls.Load(); got != 1 {
			t.Errorf("r's relay offered the block to its chain %d times, want 1", got)
		}
		noOffenses(t, nodes...)
	})
}

// addCounter counts AddBlock calls on an AuthChain.
type addCounter struct {
	relaytest.AuthChain
	calls atomic.Int64
}

// AddBlock implements relay.Chain.
func (c *addCounter) AddBlock(b []byte) (ID, Verdict, error) {
	c.calls.Add(1)
	return c.AuthChain.AddBlock(b)
}
