package memnet_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rumor-relay/rumor/relay/memnet"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// recorder is an observer that keeps what it is told.
type recorder struct {
	mu         sync.Mutex
	connected  []transport.PeerID
	gone       []transport.PeerID
	duplicates []transport.PeerID
	bytesIn    int
}

func (r *recorder) PeerConnected(p transport.PeerID) {
	r.mu.Lock()
	r.connected = append(r.connected, p)
	r.mu.Unlock()
}
func (r *recorder) PeerDisconnected(p transport.PeerID) {
	r.mu.Lock()
	r.gone = append(r.gone, p)
	r.mu.Unlock()
}
func (r *recorder) Duplicate(_ string, from transport.PeerID, _ []byte) {
	r.mu.Lock()
	r.duplicates = append(r.duplicates, from)
	r.mu.Unlock()
}
func (r *recorder) GossipTraffic(in bool, n int, _ []transport.Published) {
	if in {
		r.mu.Lock()
		r.bytesIn += n
		r.mu.Unlock()
	}
}
func (r *recorder) MeshChanged(string, int) {}

// snapshot returns copies of what was recorded.
func (r *recorder) snapshot() (connected, gone, duplicates []transport.PeerID, bytesIn int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.connected), slices.Clone(r.gone), slices.Clone(r.duplicates), r.bytesIn
}

// A triangle A-B-C with a slow A-C link: a message from A reaches B after
// one latency and C first through B (validated and forwarded), and the
// slow copy from A is a duplicate. Rejected messages are not forwarded.
func TestGossipLatencyDuplicatesAndValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(10 * time.Millisecond)
		defer net.Close()
		a, b, c := net.Add("A"), net.Add("B"), net.Add("C")
		net.Connect("A", "B")
		net.Connect("B", "C")
		net.ConnectLatency("A", "C", 50*time.Millisecond)
		var rc recorder
		c.Observe(&rc)
		start := time.Now()
		arrived := make(chan time.Duration, 4)
		validate := func(_ context.Context, _ transport.PeerID, data []byte) transport.Validation {
			arrived <- time.Since(start)
			if string(data) == "bad" {
				return transport.Reject
			}
			return transport.Accept
		}
		ta, _ := a.Join("t", transport.TopicConfig{})
		if _, err := b.Join("t", transport.TopicConfig{Validate: validate}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Join("t", transport.TopicConfig{Validate: validate}); err != nil {
			t.Fatal(err)
		}
		if err := ta.Publish(context.Background(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if d := <-arrived; d != 10*time.Millisecond {
			t.Fatalf("B validated after %v, want 10ms", d)
		}
		if d := <-arrived; d != 20*time.Millisecond {
			t.Fatalf("C validated after %v, want 20ms (through B)", d)
		}
		time.Sleep(time.Second)
		_, _, dups, bytesIn := rc.snapshot()
		if len(dups) != 1 || dups[0] != "A" {
			t.Fatalf("duplicates at C: %v, want [A]", dups)
		}
		if bytesIn != 2*(len("hello")+memnet.EnvelopeBytes) {
			t.Fatalf("C counted %d bytes in", bytesIn)
		}

		// A rejected message stops at B: C never validates it.
		net.Disconnect("A", "C")
		start = time.Now()
		if err := ta.Publish(context.Background(), []byte("bad")); err != nil {
			t.Fatal(err)
		}
		<-arrived
		time.Sleep(time.Second)
		select {
		case d := <-arrived:
			t.Fatalf("rejected message validated again after %v", d)
		default:
		}
		if connected, gone, _, _ := rc.snapshot(); len(gone) != 1 || gone[0] != "A" || len(connected) != 0 {
			t.Fatalf("peer events at C: connected %v gone %v", connected, gone)
		}
	})
}

// Requests cross the link twice, respect both caps, and fail on a peer that
// is not connected or does not serve the protocol.
func TestRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(5 * time.Millisecond)
		defer net.Close()
		a, b := net.Add("A"), net.Add("B")
		net.Add("C")
		net.Connect("A", "B")
		b.Serve("/echo", func(from transport.PeerID, read transport.ReadRequest) ([]byte, func()) {
			req, err := read(8)
			if err != nil {
				return nil, nil
			}
			return append([]byte(string(from)+":"), req...), nil
		})
		ctx := context.Background()
		start := time.Now()
		resp, err := a.Request(ctx, "B", "/echo", []byte("hi"), 64)
		if err != nil || string(resp) != "A:hi" || time.Since(start) != 10*time.Millisecond {
			t.Fatalf("echo: %q %v after %v", resp, err, time.Since(start))
		}
		if _, err := a.Request(ctx, "B", "/echo", []byte("far too long"), 64); err == nil {
			t.Fatal("request over the server's cap answered")
		}
		if _, err := a.Request(ctx, "B", "/echo", []byte("hi"), 3); !errors.Is(err, wire.ErrFrameTooLarge) {
			t.Fatalf("answer over the client's cap: %v", err)
		}
		if _, err := a.Request(ctx, "C", "/echo", []byte("hi"), 64); !errors.Is(err, transport.ErrNotConnected) {
			t.Fatalf("unconnected peer: %v", err)
		}
		if _, err := a.Request(ctx, "B", "/other", []byte("hi"), 64); err == nil {
			t.Fatal("unserved protocol answered")
		}
		tctx, cancel := context.WithTimeout(ctx, 7*time.Millisecond)
		defer cancel()
		if _, err := a.Request(tctx, "B", "/echo", []byte("hi"), 64); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("request past its deadline: %v", err)
		}
	})
}
