package node

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/p2p"
	"github.com/rumor-relay/rumor/relay/wire"
)

// TestHostileOversizeRequestFrame: a frame whose length prefix claims one
// byte over wire.MaxRequestFrame is answered by a stream reset before the
// attacker sends a single payload byte (so the server neither waited for
// nor allocated the claimed size: package wire's
// TestFrameOverCapNoAllocation measures the allocation), and costs the
// peer an oversize penalty. A prefix at exactly the cap is not refused: the
// server waits for the payload. A second oversize frame (claiming 16 GiB)
// reaches the ban threshold: the peer is banned and disconnected.
func TestHostileOversizeRequestFrame(t *testing.T) {
	g := testGenesis(time.Hour)
	n := startNode(t, testConfig(t, g))
	m := newAttacker(t, g.ChainID, nil)
	if err := m.connect(n); err != nil {
		t.Fatal(err)
	}
	claim := func(size uint64) (network.Stream, error) {
		s, err := m.h.NewStream(m.ctx, n.ID(), m.proto)
		if err != nil {
			return nil, err
		}
		_, err = s.Write(binary.AppendUvarint(nil, size))
		return s, err
	}
	// waitReset reads until the stream ends and reports whether it was
	// reset (rather than answered) within d.
	waitReset := func(s network.Stream, d time.Duration) (reset bool, got []byte) {
		_ = s.SetReadDeadline(time.Now().Add(d))
		b, err := io.ReadAll(s)
		return errors.Is(err, network.ErrReset), b
	}

	// At the cap: the server keeps reading (no reset within 300 ms).
	s, err := claim(wire.MaxRequestFrame)
	if err != nil {
		t.Fatal(err)
	}
	if reset, _ := waitReset(s, 300*time.Millisecond); reset {
		t.Fatal("a frame at the cap was refused")
	}
	s.Reset()

	// One byte over: reset at once, nothing answered, one oversize offense.
	s, err = claim(wire.MaxRequestFrame + 1)
	if err != nil {
		t.Fatal(err)
	}
	if reset, got := waitReset(s, 5*time.Second); !reset || len(got) != 0 {
		t.Fatalf("over the cap: reset %v, %d bytes answered", reset, len(got))
	}
	eventually(t, 5*time.Second, "the oversize penalty", func() bool {
		return n.PeerScore(m.id()).Offenses["oversize"] == 1
	})
	if banned(n, m.id()) {
		t.Fatal("banned after one oversize frame")
	}

	// A second, absurd claim: reset, and the second oversize offense bans.
	if s, err = claim(1 << 34); err == nil {
		waitReset(s, 5*time.Second)
	}
	eventually(t, 5*time.Second, "the ban", func() bool { return banned(n, m.id()) })
	eventually(t, 5*time.Second, "the disconnection", func() bool {
		return n.Host().Network().Connectedness(m.id()) != network.Connected
	})
	if bd := n.PeerScore(m.id()); bd.Offenses["oversize"] != 2 {
		t.Fatalf("breakdown %+v", bd)
	}
}

// buildChain adds count empty blocks on top of n's tip, straight into its
// store (before Start, so no relay is involved).
func buildChain(t *testing.T, n *Node, count int) {
	t.Helper()
	for range count {
		parent, _ := n.Store().Tip()
		b := n.Genesis().BuildBlock(parent, time.Now(), authorityKey(), nil)
		if _, err := n.Store().AddBlock(b, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHostileRangeRequests: requests for 2^32 blocks or headers, for
// heights past any chain, and for ranges that overflow uint64 are answered
// with at most the protocol's caps and nothing else: a bad-request error
// for counts the protocol forbids (with a malformed-request penalty), an
// empty answer for heights the node lacks, and exactly MaxBlocksPerRange
// blocks (or MaxHeadersPerResponse headers) for the largest legal request.
// An honest peer is served normally afterwards.
func TestHostileRangeRequests(t *testing.T) {
	g := testGenesis(time.Hour)
	const height = wire.MaxBlocksPerRange + 40
	n, err := New(testConfig(t, g))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	buildChain(t, n, height)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := newAttacker(t, g.ChainID, nil)
	if err := m.connect(n); err != nil {
		t.Fatal(err)
	}
	genesisID := g.Block().ID()
	count32 := func(tag byte) []byte { // a range request whose count is 2^32
		b := binary.BigEndian.AppendUint64([]byte{tag}, 1)
		return binary.AppendUvarint(b, 1<<32)
	}
	headers32 := binary.AppendUvarint(append(append([]byte{wire.TagGetHeaders, 1}, genesisID[:]...), make([]byte, chain.HashSize)...), 1<<32)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string // describeResp of the answer
		count   int    // blocks or headers expected, when not an error
	}{
		{"2^32 blocks", count32(wire.TagGetBlocks), "error bad request", 0},
		{"2^32 headers", headers32, "error bad request", 0},
		{"largest legal range", encode(t, &wire.GetBlocks{Start: 1, Count: wire.MaxBlocksPerRange}), "", wire.MaxBlocksPerRange},
		{"range past the tip", encode(t, &wire.GetBlocks{Start: 1 << 32, Count: wire.MaxBlocksPerRange}), "", 0},
		{"range overflowing uint64", encode(t, &wire.GetBlocks{Start: math.MaxUint64 - 2, Count: wire.MaxBlocksPerRange}), "", 0},
		{"all headers", encode(t, &wire.GetHeaders{Locator: []wire.ID{wire.ID(genesisID)}, Max: wire.MaxHeadersPerResponse}), "", height},
	} {
		resp, err := m.rawRequest(n, tc.payload)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := describeResp(resp)
		switch r := resp.(type) {
		case *wire.Blocks:
			if len(r.Blocks) != tc.count || tc.want != "" {
				t.Fatalf("%s: got %s", tc.name, got)
			}
		case *wire.Headers:
			if len(r.Headers) != tc.count || tc.want != "" {
				t.Fatalf("%s: got %s", tc.name, got)
			}
		default:
			if got != tc.want {
				t.Fatalf("%s: got %s, want %s", tc.name, got, tc.want)
			}
		}
	}
	if bd := n.PeerScore(m.id()); bd.Offenses["malformed"] != 2 || banned(n, m.id()) {
		t.Fatalf("requester's breakdown %+v", bd)
	}
	// Still served.
	if resp, err := m.rawRequest(n, encode(t, &wire.GetBlock{ID: wire.ID(genesisID)})); err != nil || describeResp(resp) != "*wire.Block" {
		t.Fatalf("block request after the floods: %v %v", describeResp(resp), err)
	}
}

// TestHostilePingFlood: one peer sends 100,000 pings (10,000 with -short),
// pipelined over as many concurrent ping streams as it likes. The resource
// manager lets two ping streams per peer in (libp2p's per-peer ping
// service limit), the rest are reset; the pings that get in are echoed;
// the goroutine count stays bounded throughout and returns to where it
// was; another peer is served meanwhile.
func TestHostilePingFlood(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	const workers = 8 // concurrent ping streams the attacker tries to hold
	const batch = 500 // pings written before reading their echoes
	g := testGenesis(time.Hour)
	a, b := honestPair(t, g, nil)
	m := newAttacker(t, g.ChainID, nil)
	connectIdentified(t, m, a)
	base := runtime.NumGoroutine()
	watch := watchGoroutines()

	var echoed, refused atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]byte, ping.PingSize*batch)
			in := make([]byte, len(out))
			for echoed.Load() < int64(total) && ctx.Err() == nil {
				s, err := m.h.NewStream(ctx, a.ID(), ping.ID)
				if err != nil {
					refused.Add(1)
					continue
				}
				for echoed.Load() < int64(total) {
					_ = s.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := s.Write(out); err != nil {
						break
					}
					if _, err := io.ReadFull(s, in); err != nil {
						break
					}
					echoed.Add(batch)
				}
				if echoed.Load() < int64(total) {
					refused.Add(1)
				}
				s.Reset()
			}
		}()
	}
	// An honest request while the flood runs.
	served := make(chan error, 1)
	go func() {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		_, err := b.Relay().RequestBlock(rctx, p2p.ID(a.ID()), relay.ID(g.Block().ID()))
		served <- err
	}()
	wg.Wait()
	if err := <-served; err != nil {
		t.Fatalf("honest peer not served during the ping flood: %v", err)
	}
	peak := watch.Peak()
	t.Logf("%d pings echoed, %d streams refused or reset; goroutines %d -> peak %d", echoed.Load(), refused.Load(), base, peak)
	if echoed.Load() < int64(total) {
		t.Fatalf("only %d of %d pings echoed", echoed.Load(), total)
	}
	// Bounded by the streams in flight (the attacker's 8 workers and the
	// streams being refused), not by the number of pings: the peak is the
	// same at 10,000 and 100,000 pings.
	if peak > base+500 {
		t.Fatalf("goroutines peaked at %d from %d during the ping flood", peak, base)
	}
	settleGoroutines(t, base+50, 10*time.Second)
}

// TestHostileOpenStreamFlood: one peer opens up to 2,000 request streams
// and leaves each waiting mid-frame. The server holds at most
// relay.MaxServePerPeer of them (relay's TestServeConcurrencyLimit counts
// them); every stream beyond is answered busy and costs a request-flood
// penalty, so the peer reaches the ban threshold after ten and is dropped,
// which ends the flood; goroutines stay bounded and return to where they
// were; an honest peer is served meanwhile.
func TestHostileOpenStreamFlood(t *testing.T) {
	const streams = 2000
	g := testGenesis(time.Hour)
	a, b := honestPair(t, g, nil)
	m := newAttacker(t, g.ChainID, nil)
	connectIdentified(t, m, a)
	base := runtime.NumGoroutine()
	watch := watchGoroutines()
	opened := 0
	var held []network.Stream
	for range streams {
		ctx, cancel := context.WithTimeout(m.ctx, 5*time.Second)
		s, err := m.h.NewStream(ctx, a.ID(), m.proto)
		cancel()
		if err != nil {
			break
		}
		// Half a length prefix: the server waits for the rest.
		if _, err := s.Write([]byte{0x80}); err != nil {
			s.Reset()
			break
		}
		held = append(held, s)
		opened++
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := b.Relay().RequestBlock(rctx, p2p.ID(a.ID()), relay.ID(g.Block().ID()))
	rcancel()
	if err != nil {
		t.Fatalf("honest peer not served during the stream flood: %v", err)
	}
	eventually(t, 10*time.Second, "the flooder banned", func() bool { return banned(a, m.id()) })
	eventually(t, 10*time.Second, "the flooder disconnected", func() bool {
		return a.Host().Network().Connectedness(m.id()) != network.Connected
	})
	for _, s := range held {
		s.Reset()
	}
	peak := watch.Peak()
	bd := a.PeerScore(m.id())
	t.Logf("%d streams opened before the cut; flooder %+v; goroutines %d -> peak %d", opened, bd, base, peak)
	if bd.Offenses["request_flood"] == 0 {
		t.Fatalf("no request-flood offense: %+v", bd)
	}
	if peak > base+300 {
		t.Fatalf("goroutines peaked at %d from %d during the stream flood", peak, base)
	}
	settleGoroutines(t, base+50, 10*time.Second)
}
