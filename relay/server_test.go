package relay

import (
	"context"
	"errors"
	"github.com/rumor-relay/rumor/relay/relaytest"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/wire"
)

// serverNet is a server relay S with a 10-block chain and clients C1, C2,
// all connected to S.
func serverNet(t *testing.T) (net *memnet.Network, s, c1, c2 *tnode, blocks [][]byte) {
	t.Helper()
	// Sync off: its requests would take serving slots the tests count.
	net, nodes := simNet(t, 3, [][2]int{{0, 1}, {0, 2}}, 0, func(int) Config {
		c := testConfig(BlockCompact)
		c.NoSync = true
		return c
	})
	s, c1, c2 = nodes[0], nodes[1], nodes[2]
	for i := range 10 {
		txs := [][]byte{mkTx("blk", i*2, 100), mkTx("blk", i*2+1, 100)}
		b, _ := s.chain.Build(uint64(i), txs)
		if _, v, err := s.chain.AddBlock(b); v != Accepted {
			t.Fatal(v, err)
		}
		blocks = append(blocks, b)
	}
	return net, s, c1, c2, blocks
}

func TestServeTxsSoftLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s, c, _, _ := serverNet(t)
		ctx := waitCtx(t, 10*time.Second)
		big := [][]byte{mkTx("big", 0, 100<<10), mkTx("big", 1, 100<<10)}
		for _, tx := range big {
			s.pool.AddTx(tx)
		}
		unknown := txID([]byte("nobody has this"))
		got, err := c.r.RequestTxs(ctx, s.id, []ID{txID(big[0]), txID(big[1]), unknown})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || string(got[0]) != string(big[0]) {
			t.Fatalf("want the first body only (soft limit), got %d bodies", len(got))
		}
		got, err = c.r.RequestTxs(ctx, s.id, []ID{unknown, txID(big[1])})
		if err != nil || len(got) != 2 || got[0] != nil || string(got[1]) != string(big[1]) {
			t.Fatalf("got %d bodies, err %v", len(got), err)
		}
	})
}

func TestServeBlocksHeadersAndRanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s, c, _, blocks := serverNet(t)
		ctx := waitCtx(t, 10*time.Second)
		sp := s.id
		idAt := func(h uint64) ID { id, _ := s.chain.BlockIDAt(h); return id }

		b, err := c.r.RequestBlock(ctx, sp, idAt(4))
		if err != nil || string(b) != string(blocks[3]) {
			t.Fatalf("block: %v", err)
		}
		if b, err := c.r.RequestBlock(ctx, sp, ID{1}); err != nil || b != nil {
			t.Fatalf("unknown block: %v %v", b, err)
		}

		txs, found, err := c.r.RequestBlockTxn(ctx, sp, idAt(2), []uint32{1})
		if err != nil || !found || len(txs) != 1 || string(txs[0]) != string(mkTx("blk", 3, 100)) {
			t.Fatalf("blocktxn: %v %v %d", err, found, len(txs))
		}
		if _, found, err := c.r.RequestBlockTxn(ctx, sp, ID{2}, []uint32{0}); err != nil || found {
			t.Fatalf("blocktxn of unknown block: %v %v", found, err)
		}
		// An index past the block's end is a bad request: refused, penalized.
		if _, _, err := c.r.RequestBlockTxn(ctx, sp, idAt(2), []uint32{0, 2}); !errors.Is(err, ErrRefused) {
			t.Fatalf("out-of-range index: %v", err)
		}
		if !s.offs.has(c.id, OffenseBadRequest) {
			t.Fatal("bad request not penalized")
		}

		hdrOf := func(h uint64) string { return string(blocks[h-1][:relaytest.HeaderSize]) }
		for _, tc := range []struct {
			name    string
			locator []ID
			stop    ID
			max     int
			from    uint64
			n       int
		}{
			{"after height 5", []ID{idAt(5), idAt(0)}, ID{}, 0, 6, 5},
			{"unknown locator starts at genesis", []ID{{9}}, ID{}, 0, 1, 10},
			{"max", []ID{idAt(0)}, ID{}, 3, 1, 3},
			{"stop", []ID{idAt(5)}, idAt(7), 0, 6, 2},
			{"at tip", []ID{idAt(10)}, ID{}, 0, 11, 0},
		} {
			hs, err := c.r.RequestHeaders(ctx, sp, tc.locator, tc.stop, tc.max)
			if err != nil || len(hs) != tc.n {
				t.Fatalf("%s: %d headers, err %v", tc.name, len(hs), err)
			}
			for i, h := range hs {
				if string(h) != hdrOf(tc.from+uint64(i)) {
					t.Fatalf("%s: header %d wrong", tc.name, i)
				}
			}
		}

		for _, tc := range []struct {
			start uint64
			count int
			n     int
		}{{2, 4, 4}, {9, 5, 2}, {11, 1, 0}, {1<<64 - 1, wire.MaxBlocksPerRange, 0}} {
			bs, err := c.r.RequestBlocks(ctx, sp, tc.start, tc.count)
			if err != nil || len(bs) != tc.n {
				t.Fatalf("range %d+%d: %d blocks, err %v", tc.start, tc.count, len(bs), err)
			}
			for i, b := range bs {
				if string(b) != string(blocks[tc.start-1+uint64(i)]) {
					t.Fatalf("range %d+%d: block %d wrong", tc.start, tc.count, i)
				}
			}
		}
		if _, err := c.r.RequestBlocks(ctx, sp, 0, wire.MaxBlocksPerRange+1); err == nil {
			t.Fatal("range over the cap was sent")
		}
	})
}

// TestFrameOverCapRejected sends a request one byte over the cap: the
// server refuses it and reports the sender. (Framing on real streams is
// tested in package relay/p2p; the allocation bound in package wire.)
func TestFrameOverCapRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s, c, _, _ := serverNet(t)
		ctx := waitCtx(t, 10*time.Second)
		if _, err := c.tr.Request(ctx, s.id, s.r.proto, make([]byte, wire.MaxRequestFrame+1), wire.MaxResponseFrame); err == nil {
			t.Fatal("oversize request answered")
		}
		if !s.offs.has(c.id, OffenseOversize) {
			t.Fatalf("no oversize penalty: %v", s.offs.all())
		}

		// A request that decodes to nothing known is answered with an error.
		data, err := c.tr.Request(ctx, s.id, s.r.proto, []byte{0x42, 1, 2, 3}, wire.MaxResponseFrame)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := wire.DecodeResponse(data)
		if e, ok := resp.(*wire.Error); err != nil || !ok || e.Code != wire.ErrCodeBadRequest {
			t.Fatalf("want a bad-request error, got %#v %v", resp, err)
		}
		if !s.offs.has(c.id, OffenseMalformed) {
			t.Fatal("malformed request not penalized")
		}
	})
}

// TestServeConcurrencyLimit holds MaxServePerPeer requests from one peer in
// the server (its store is slow): the peer's next request is refused as
// busy and penalized, another peer is still served, and the peer is served
// again once its requests end.
func TestServeConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, s, c1, c2, _ := serverNet(t)
		ctx := waitCtx(t, 20*time.Second)
		sp := s.id
		gate := make(chan struct{})
		s.chain.SetGate(gate)
		held := make(chan error, MaxServePerPeer)
		for range MaxServePerPeer {
			go func() {
				_, err := c1.r.RequestBlock(ctx, sp, ID{})
				held <- err
			}()
		}
		synctest.Wait() // every request is parked in the server's store
		served := func(p PeerID) int {
			s.r.limiter.mu.Lock()
			defer s.r.limiter.mu.Unlock()
			return s.r.limiter.per[p]
		}
		if n := served(c1.id); n != MaxServePerPeer {
			t.Fatalf("%d requests being served, want %d", n, MaxServePerPeer)
		}
		if _, err := c1.r.RequestTxs(ctx, sp, []ID{{1}}); !errors.Is(err, ErrRefused) {
			t.Fatalf("request past the limit: %v", err)
		}
		if !s.offs.has(c1.id, OffenseRequestFlood) {
			t.Fatal("flood not penalized")
		}
		if _, err := c2.r.RequestTxs(ctx, sp, []ID{{1}}); err != nil {
			t.Fatalf("other peer not served: %v", err)
		}
		close(gate)
		for range MaxServePerPeer {
			if err := <-held; err != nil {
				t.Fatalf("held request: %v", err)
			}
		}
		synctest.Wait()
		if n := served(c1.id); n != 0 {
			t.Fatalf("%d requests still held", n)
		}
		if _, err := c1.r.RequestBlock(ctx, sp, ID{}); err != nil {
			t.Fatalf("not served after the flood ended: %v", err)
		}
	})
}

// TestClientRejectsOversizeResponse: an answer over the response cap, or
// carrying a body over the chain's tx limit, is a bad response naming the
// oversize offense; the client itself reports nothing (its caller decides).
func TestClientRejectsOversizeResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig(BlockCompact)
		cfg.MaxTxBytes = 1 << 10
		huge := func(req wire.Request) []byte {
			if _, ok := req.(*wire.GetBlock); ok {
				return make([]byte, cfg.maxResponseFrame()+1)
			}
			return encode(&wire.Txs{Bodies: [][]byte{make([]byte, cfg.MaxTxBytes+1)}})
		}
		_, r, w := fallbackNet(t, cfg, huge)
		ctx := waitCtx(t, 10*time.Second)
		for _, ask := range []func() error{
			func() error { _, err := r.r.RequestTxs(ctx, w.id, []ID{{1}}); return err },
			func() error { _, err := r.r.RequestBlock(ctx, w.id, ID{1}); return err },
		} {
			err := ask()
			if o, ok := offenseOfErr(err); !errors.Is(err, ErrBadResponse) || !ok || o != OffenseOversize {
				t.Fatalf("oversize response: %v", err)
			}
		}
		if offs := r.offs.all(); len(offs) != 0 {
			t.Fatalf("the client reported offenses itself: %v", offs)
		}
	})
}

// TestOneBadResponseOneOffense: a peer announces a tx and answers the fetch
// with bytes that do not decode. The whole path (client, scheduler,
// validator) reports exactly one offense for that one bad answer, whether
// the announcement waits for the fetch (and is then ignored) or was
// forwarded before it (cut-through).
func TestOneBadResponseOneOffense(t *testing.T) {
	for _, tc := range []struct {
		name       string
		answer     []byte
		want       Offense
		fetchFirst bool
	}{
		{"malformed", []byte{0x81, 0xFF}, OffenseMalformed, true},
		{"unrequested", encode(&wire.Txs{Bodies: [][]byte{nil, nil}}), OffenseUnrequested, true},
		{"malformed/cut-through", []byte{0x81, 0xFF}, OffenseMalformed, false},
		{"unrequested/cut-through", encode(&wire.Txs{Bodies: [][]byte{nil, nil}}), OffenseUnrequested, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(BlockCompact)
				cfg.TxFetchBeforeForward = tc.fetchFirst
				cfg.TxCutThroughMinRTT = -1
				cfg.NoSync = true // the rogue answers sync requests with junk too
				net := newNet(t, 10*time.Millisecond)
				r := newNode(t, net, "R", cfg)
				w := newRogue(t, net, "W", cfg, func(wire.Request) []byte { return tc.answer })
				net.Connect(r.id, w.id)
				if err := r.r.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				data, err := (&wire.TxAnnounce{IDs: []ID{txID([]byte("never served"))}}).Encode()
				if err != nil {
					t.Fatal(err)
				}
				if err := w.tx.Publish(context.Background(), data); err != nil {
					t.Fatal(err)
				}
				// Long enough for the fetch, the grace wait for another
				// source and the validation timeout to end.
				time.Sleep(2 * cfg.txValidateTimeout())
				st := r.r.Stats()
				if tc.fetchFirst && st.Ignored != 1 {
					t.Fatalf("announcement not ignored once: %+v", st)
				}
				if !tc.fetchFirst && (st.Accepted != 1 || st.TxAnnouncementsEarly != 1) {
					t.Fatalf("announcement not forwarded early once: %+v", st)
				}
				if got := r.offs.all(); !slices.Equal(got, []offenseRec{{w.id, tc.want}}) {
					t.Fatalf("offenses %v, want exactly one %v", got, tc.want)
				}
			})
		})
	}
}
