package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/rumor-relay/rumor/relay/wire"
)

// serverNet is a server relay S with a 10-block chain and clients C1, C2,
// all connected to S.
func serverNet(t *testing.T) (mn mocknet.Mocknet, s, c1, c2 *tnode, blocks [][]byte) {
	t.Helper()
	mn, nodes := mockNet(t, 3, [][2]int{{0, 1}, {0, 2}}, 0, func(int) Config { return testConfig(BlockCompact) })
	s, c1, c2 = nodes[0], nodes[1], nodes[2]
	for i := range 10 {
		txs := [][]byte{mkTx("blk", i*2, 100), mkTx("blk", i*2+1, 100)}
		b, _ := s.chain.build(uint64(i), txs)
		if _, v, err := s.chain.AddBlock(b); v != Accepted {
			t.Fatal(v, err)
		}
		blocks = append(blocks, b)
	}
	return mn, s, c1, c2, blocks
}

func TestServeTxsSoftLimit(t *testing.T) {
	_, s, c, _, _ := serverNet(t)
	ctx := waitCtx(t, 10*time.Second)
	big := [][]byte{mkTx("big", 0, 100<<10), mkTx("big", 1, 100<<10)}
	for _, tx := range big {
		s.pool.AddTx(tx)
	}
	unknown := txID([]byte("nobody has this"))
	got, err := c.r.RequestTxs(ctx, s.h.ID(), []ID{txID(big[0]), txID(big[1]), unknown})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0]) != string(big[0]) {
		t.Fatalf("want the first body only (soft limit), got %d bodies", len(got))
	}
	got, err = c.r.RequestTxs(ctx, s.h.ID(), []ID{unknown, txID(big[1])})
	if err != nil || len(got) != 2 || got[0] != nil || string(got[1]) != string(big[1]) {
		t.Fatalf("got %d bodies, err %v", len(got), err)
	}
}

func TestServeBlocksHeadersAndRanges(t *testing.T) {
	_, s, c, _, blocks := serverNet(t)
	ctx := waitCtx(t, 10*time.Second)
	sp := s.h.ID()
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
	if !s.offs.has(c.h.ID(), OffenseBadRequest) {
		t.Fatal("bad request not penalized")
	}

	hdrOf := func(h uint64) string { return string(blocks[h-1][:testHeaderSize]) }
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
}

// TestFrameOverCapRejected sends a request frame one byte over the cap: the
// server resets the stream and reports the sender, without reading (or
// allocating) the claimed size. The allocation bound itself is tested in
// package wire (TestFrameOverCapNoAllocation).
func TestFrameOverCapRejected(t *testing.T) {
	_, s, c, _, _ := serverNet(t)
	ctx := waitCtx(t, 10*time.Second)
	st, err := c.h.NewStream(ctx, s.h.ID(), s.r.proto)
	if err != nil {
		t.Fatal(err)
	}
	msg := binary.AppendUvarint(nil, wire.MaxRequestFrame+1)
	msg = append(msg, make([]byte, 1024)...)
	if _, err := st.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := s.offs.waitFor(ctx, func() bool { return s.offs.has(c.h.ID(), OffenseOversize) }); err != nil {
		t.Fatalf("no oversize penalty: %v", s.offs.all())
	}
	buf := make([]byte, 16)
	if n, err := st.Read(buf); err == nil {
		t.Fatalf("stream not reset: read %d bytes", n)
	}
	_ = st.Reset()

	// A frame that decodes to nothing known is answered with an error.
	st, err = c.h.NewStream(ctx, s.h.ID(), s.r.proto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.WriteFrame(st, []byte{0x42, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	data, _, err := wire.ReadFrame(st, wire.MaxResponseFrame)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wire.DecodeResponse(data)
	if e, ok := resp.(*wire.Error); err != nil || !ok || e.Code != wire.ErrCodeBadRequest {
		t.Fatalf("want a bad-request error, got %#v %v", resp, err)
	}
	if !s.offs.has(c.h.ID(), OffenseMalformed) {
		t.Fatal("malformed request not penalized")
	}
}

// TestServeConcurrencyLimit opens MaxServePerPeer stalled requests from one
// peer: its next request is refused as busy and penalized, another peer is
// still served, and the peer is served again once its streams end.
func TestServeConcurrencyLimit(t *testing.T) {
	_, s, c1, c2, _ := serverNet(t)
	ctx := waitCtx(t, 20*time.Second)
	sp := s.h.ID()
	var stalled []network.Stream
	for range MaxServePerPeer {
		st, err := c1.h.NewStream(ctx, sp, protocol.ID(s.r.cfg.RequestProtocol()))
		if err != nil {
			t.Fatal(err)
		}
		// Half a frame: the handler starts and waits for the rest.
		if _, err := st.Write([]byte{10, wire.TagGetBlock}); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, st)
	}
	served := func(p peer.ID) int {
		s.r.limiter.mu.Lock()
		defer s.r.limiter.mu.Unlock()
		return s.r.limiter.per[p]
	}
	eventually(t, 10*time.Second, func() error {
		if n := served(c1.h.ID()); n != MaxServePerPeer {
			return fmt.Errorf("%d streams being served", n)
		}
		return nil
	})
	if _, err := c1.r.RequestBlock(ctx, sp, ID{}); !errors.Is(err, ErrRefused) {
		t.Fatalf("request past the limit: %v", err)
	}
	if !s.offs.has(c1.h.ID(), OffenseRequestFlood) {
		t.Fatal("flood not penalized")
	}
	if _, err := c2.r.RequestBlock(ctx, sp, ID{}); err != nil {
		t.Fatalf("other peer not served: %v", err)
	}
	for _, st := range stalled {
		_ = st.Reset()
	}
	eventually(t, 10*time.Second, func() error {
		if n := served(c1.h.ID()); n != 0 {
			return fmt.Errorf("%d streams still held", n)
		}
		return nil
	})
	if _, err := c1.r.RequestBlock(ctx, sp, ID{}); err != nil {
		t.Fatalf("not served after the flood ended: %v", err)
	}
}

// TestClientRejectsOversizeResponse: a server answering with a frame over
// the response cap is penalized and its answer dropped.
func TestClientRejectsOversizeResponse(t *testing.T) {
	cfg := testConfig(BlockCompact)
	huge := func(_ context.Context, s network.Stream, _ wire.Request) {
		_, _ = s.Write(binary.AppendUvarint(nil, wire.MaxTxsResponseFrame+1))
		_, _ = s.Write(make([]byte, 4096))
		_ = s.Close()
	}
	_, r, w := fallbackNet(t, cfg, huge)
	ctx := waitCtx(t, 10*time.Second)
	_, err := r.r.RequestTxs(ctx, w.h.ID(), []ID{{1}})
	if !errors.Is(err, ErrBadResponse) {
		t.Fatalf("oversize response: %v", err)
	}
	if !r.offs.has(w.h.ID(), OffenseOversize) {
		t.Fatal("oversize response not penalized")
	}
}
