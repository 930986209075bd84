package testnet

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

const delayTestProto = "/rumor-test/delay/1"

// delayPair returns two linked, connected mock hosts wrapped with latency.
func delayPair(t *testing.T, latency time.Duration) (a, b host.Host) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	for range 2 {
		if err := addSimPeer(mn); err != nil {
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
	return newDelayHost(hs[0], latency), newDelayHost(hs[1], latency)
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

func TestZeroLatencyIsUnwrapped(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	if err := addSimPeer(mn); err != nil {
		t.Fatal(err)
	}
	h := mn.Hosts()[0]
	if newDelayHost(h, 0) != h {
		t.Fatal("zero latency must not wrap the host")
	}
}
