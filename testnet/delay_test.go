package testnet

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

const delayTestProto = "/rumor-test/delay/1"

// delayPair returns two linked, connected mock hosts wrapped with latency.
func delayPair(t *testing.T, latency time.Duration) (a, b host.Host) {
	t.Helper()
	mn := newSimMocknet()
	t.Cleanup(func() { _ = mn.Close() })
	for range 2 {
		if _, err := addSimPeer(mn, rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	hs := mn.Hosts()
	if _, err := mn.ConnectPeers(hs[0].ID(), hs[1].ID()); err != nil {
		t.Fatal(err)
	}
	m := newLinkModel(fixedLatency(latency), 0)
	t.Cleanup(m.close)
	return newDelayHost(hs[0], m), newDelayHost(hs[1], m)
}

// TestDelayIsPipelined: messages written back to back arrive back to back,
// one latency later, not one latency apart (mocknet's own latency model).
func TestDelayIsPipelined(t *testing.T) {
	const latency = 100 * time.Millisecond
	const msgs = 10
	a, b := delayPair(t, latency)
	arrived := make(chan time.Duration, msgs)
	start := make(chan time.Time, 1)
	b.SetStreamHandler(delayTestProto, func(s network.Stream) {
		defer s.Close()
		t0 := <-start
		buf := make([]byte, 300)
		for range msgs {
			if _, err := io.ReadFull(s, buf); err != nil {
				t.Error(err)
				return
			}
			arrived <- time.Since(t0)
		}
	})
	s, err := a.NewStream(context.Background(), b.ID(), delayTestProto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start <- time.Now()
	msg := make([]byte, 300) // above mocknet's 256-byte buffering threshold
	for range msgs {
		if _, err := s.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	var first, last time.Duration
	for i := range msgs {
		d := <-arrived
		if i == 0 {
			first = d
		}
		last = d
	}
	if first < latency {
		t.Fatalf("first message after %v, before the %v latency", first, latency)
	}
	// Serialized delivery would take msgs*latency = 1 s.
	if last > 3*latency {
		t.Fatalf("last of %d messages after %v: not pipelined", msgs, last)
	}
}

func TestDelayedReadHonoursDeadline(t *testing.T) {
	a, b := delayPair(t, 200*time.Millisecond)
	got := make(chan error, 1)
	b.SetStreamHandler(delayTestProto, func(s network.Stream) {
		defer s.Close()
		buf := make([]byte, 1)
		_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := s.Read(buf) // the byte is in flight for 200 ms
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			got <- err
			return
		}
		_ = s.SetReadDeadline(time.Time{})
		_, err = s.Read(buf) // now it arrives
		got <- err
	})
	s, err := a.NewStream(context.Background(), b.ID(), delayTestProto)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("read after clearing the deadline: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read never returned")
	}
}

func TestDelayedStreamDeliversEOFAfterData(t *testing.T) {
	a, b := delayPair(t, 20*time.Millisecond)
	got := make(chan []byte, 1)
	b.SetStreamHandler(delayTestProto, func(s network.Stream) {
		defer s.Close()
		data, err := io.ReadAll(s)
		if err != nil {
			t.Error(err)
		}
		got <- data
	})
	s, err := a.NewStream(context.Background(), b.ID(), delayTestProto)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if string(d) != "hello" {
			t.Fatalf("got %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no EOF")
	}
	_ = s.Close()
}

// TestLinkModelBandwidth: bytes cost time on the sender's uplink, shared by
// all its links; a receiver's chunks do not queue behind each other.
func TestLinkModelBandwidth(t *testing.T) {
	const lat = 50 * time.Millisecond
	const bw = 1e6 // bytes/s: 1000 bytes take 1 ms
	m := newLinkModel(fixedLatency(lat), bw)
	t0 := time.Unix(1000, 0)
	ms := func(d time.Time) float64 { return float64(d.Sub(t0)) / float64(time.Millisecond) }
	// Idle links: latency plus one serialization.
	if got := ms(m.arrival("a", "b", 1000, t0)); got != 51 {
		t.Fatalf("first chunk at %v ms, want 51", got)
	}
	// a's uplink is busy until 1 ms: the copy to c leaves after it.
	if got := ms(m.arrival("a", "c", 1000, t0)); got != 52 {
		t.Fatalf("second copy at %v ms, want 52 (uplink shared)", got)
	}
	// d sends to b at 0.5 ms, while a's chunk to b is in flight: no wait.
	if got := ms(m.arrival("d", "b", 1000, t0.Add(500*time.Microsecond))); got != 51.5 {
		t.Fatalf("chunk from an idle uplink at %v ms, want 51.5", got)
	}
	// Unlimited bandwidth: latency only.
	free := newLinkModel(fixedLatency(lat), 0)
	if got := ms(free.arrival("a", "b", 1<<20, t0)); got != 50 {
		t.Fatalf("unlimited: %v ms, want 50", got)
	}
}

// TestLinkLatencies: a latency range gives each link its own latency in
// the range, the same both ways and for the same seed.
func TestLinkLatencies(t *testing.T) {
	cfg := &Config{Latency: 20 * time.Millisecond, LatencyMax: 80 * time.Millisecond, Seed: "s"}
	lat := linkLatencies(cfg)
	again := linkLatencies(cfg)
	seen := map[time.Duration]bool{}
	for i := range 30 {
		for j := range 30 {
			d := lat(i, j)
			if d < cfg.Latency || d > cfg.LatencyMax {
				t.Fatalf("link %d-%d: %v outside the range", i, j, d)
			}
			if d != lat(j, i) || d != again(i, j) {
				t.Fatalf("link %d-%d: not symmetric or not reproducible", i, j)
			}
			seen[d.Round(time.Millisecond)] = true
		}
	}
	if len(seen) < 30 {
		t.Fatalf("only %d distinct latencies over 900 links", len(seen))
	}
	fixed := linkLatencies(&Config{Latency: 50 * time.Millisecond})
	if fixed(3, 7) != 50*time.Millisecond {
		t.Fatal("fixed latency")
	}
}

// TestLinkModelLoss: about the configured share of chunks is retransmitted,
// each a retransmission timeout late, and the draws repeat for a seed.
func TestLinkModelLoss(t *testing.T) {
	m := newLinkModel(fixedLatency(50*time.Millisecond), 0)
	m.loss, m.lossSeed = 0.1, 42
	again := newLinkModel(fixedLatency(50*time.Millisecond), 0)
	again.loss, again.lossSeed = 0.1, 42
	lost := 0
	const chunks = 10000
	for i := range uint64(chunks) {
		d := m.retransmit("a", "b", "/p", i)
		if d != again.retransmit("a", "b", "/p", i) {
			t.Fatal("draws differ for one seed")
		}
		switch d {
		case 0:
		case 200 * time.Millisecond:
			lost++
		default:
			t.Fatalf("retransmission delay %v, want 200ms (max(minRTO, 150ms))", d)
		}
	}
	if lost < chunks*8/100 || lost > chunks*12/100 {
		t.Fatalf("%d of %d chunks lost, want about 10%%", lost, chunks)
	}
	slow := newLinkModel(fixedLatency(100*time.Millisecond), 0)
	slow.loss = 0.999999
	if d := slow.retransmit("a", "b", "/p", 0); d != 300*time.Millisecond {
		t.Fatalf("slow link: %v, want 3 latencies", d)
	}
	if d := newLinkModel(fixedLatency(time.Second), 0).retransmit("a", "b", "/p", 0); d != 0 {
		t.Fatal("no loss configured, yet a retransmission")
	}
}

// TestLinkModelTick checks that arrivals round up to the tick and never
// earlier: a chunk due on a boundary keeps it, one just after waits for
// the next, and no tick keeps arrivals exact.
func TestLinkModelTick(t *testing.T) {
	m := newLinkModel(fixedLatency(0), 0)
	base := time.Unix(946684800, 0) // synctest's epoch, on every boundary
	exact := base.Add(1234567 * time.Nanosecond)
	if got := m.onTick(exact); !got.Equal(exact) {
		t.Fatalf("no tick moved %v to %v", exact, got)
	}
	m.tick = 100 * time.Microsecond
	for _, c := range []struct{ in, want time.Duration }{
		{0, 0},
		{1, 100 * time.Microsecond},
		{100 * time.Microsecond, 100 * time.Microsecond},
		{100*time.Microsecond + 1, 200 * time.Microsecond},
		{1234567, 1300 * time.Microsecond},
	} {
		if got := m.onTick(base.Add(c.in)).Sub(base); got != c.want {
			t.Errorf("onTick(+%v) = +%v, want +%v", c.in, got, c.want)
		}
	}
}
