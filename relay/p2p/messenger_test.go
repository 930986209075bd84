package p2p

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

const msgProto = "/msg-test/1"

// inbox records what a MessageHandler is given. When hold is set, the
// handler waits on it after recording each message: a peer that stops
// reading.
type inbox struct {
	mu   sync.Mutex
	msgs []string
	from []transport.PeerID
	errs []error
	hold chan struct{}
}

func (b *inbox) handle(from transport.PeerID, msg []byte, err error) {
	b.mu.Lock()
	if err != nil {
		b.errs = append(b.errs, err)
	} else {
		b.msgs = append(b.msgs, string(msg))
		b.from = append(b.from, from)
	}
	hold := b.hold
	b.mu.Unlock()
	if hold != nil && err == nil {
		<-hold
	}
}

func (b *inbox) got() (msgs []string, from []transport.PeerID, errs []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs), slices.Clone(b.from), slices.Clone(b.errs)
}

// streams counts a transport's senders and inbound message streams.
func streams(t *Transport) (senders, inbound int) {
	t.msgr.mu.Lock()
	defer t.msgr.mu.Unlock()
	return len(t.msgr.senders), len(t.msgr.inbound)
}

// messengerGoroutines counts the goroutines running the messenger's own
// functions (senders and inbound message readers), in any transport.
func messengerGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "p2p.(*sender).run") || strings.Contains(g, "p2p.(*Transport).receiveStream") {
			count++
		}
	}
	return count
}

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func tcpTransport(t *testing.T) (host.Host, *Transport) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	tr, err := New(h, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return h, tr
}

// TestMessagesOverTCP runs the messenger on real libp2p hosts (TCP, Noise,
// Yamux on loopback): messages arrive in order from the right peer, a
// message over the receiver's cap is reported as such and the sender's
// next stream carries later messages, a peer that is not connected is not
// dialled, and Close leaves no sender or reader running.
func TestMessagesOverTCP(t *testing.T) {
	ha, a := tcpTransport(t)
	hb, b := tcpTransport(t)
	hc, _ := tcpTransport(t)
	var box inbox
	b.Receive(msgProto, 64, box.handle)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ha.Connect(ctx, peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}); err != nil {
		t.Fatal(err)
	}
	to := b.Self()

	var want []string
	for i := range 100 {
		msg := fmt.Appendf(nil, "message %d", i)
		if err := a.Send(to, msgProto, msg); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		copy(msg, "XXXX") // Send copied it
		want = append(want, fmt.Sprintf("message %d", i))
	}
	waitFor(t, 5*time.Second, "100 messages", func() bool { msgs, _, _ := box.got(); return len(msgs) >= len(want) })
	msgs, from, errs := box.got()
	if !slices.Equal(msgs, want) || len(errs) != 0 {
		t.Fatalf("got %q, errors %v; want %q", msgs, errs, want)
	}
	for _, f := range from {
		if f != a.Self() {
			t.Fatalf("message from %s, want %s", f, a.Self())
		}
	}
	if s, _ := streams(a); s != 1 {
		t.Fatalf("%d senders for one peer and protocol", s)
	}
	if _, in := streams(b); in != 1 {
		t.Fatalf("%d inbound streams for one peer and protocol", in)
	}

	// Over the cap: the handler is told, the stream dropped. The sender
	// learns on a later write; what it writes meanwhile is lost, and the
	// next stream carries what follows, in order.
	if err := a.Send(to, msgProto, make([]byte, 65)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the oversize error", func() bool { _, _, errs := box.got(); return len(errs) > 0 })
	_, _, errs = box.got()
	if len(errs) != 1 || !errors.Is(errs[0], wire.ErrFrameTooLarge) {
		t.Fatalf("errors %v, want one wrapping wire.ErrFrameTooLarge", errs)
	}
	probe := 0
	waitFor(t, 5*time.Second, "a message after the oversize one", func() bool {
		msgs, _, _ := box.got()
		if len(msgs) > len(want) {
			return true
		}
		if err := a.Send(to, msgProto, fmt.Appendf(nil, "probe %d", probe)); err != nil {
			t.Fatal(err)
		}
		probe++
		return false
	})
	msgs, _, _ = box.got()
	first := msgs[len(want)]
	if !strings.HasPrefix(first, "probe ") {
		t.Fatalf("after the oversize message got %q", first)
	}
	var after []string
	for i := range 10 {
		m := fmt.Sprintf("after %d", i)
		if err := a.Send(to, msgProto, []byte(m)); err != nil {
			t.Fatal(err)
		}
		after = append(after, m)
	}
	waitFor(t, 5*time.Second, "messages on the new stream", func() bool {
		msgs, _, _ := box.got()
		return slices.Contains(msgs, after[len(after)-1])
	})
	msgs, _, errs = box.got()
	tail := msgs[len(msgs)-len(after):]
	if !slices.Equal(tail, after) || len(errs) != 1 {
		t.Fatalf("on the new stream got %q (errors %v), want %q", tail, errs, after)
	}

	if err := a.Send(ID(hc.ID()), msgProto, []byte("x")); !errors.Is(err, transport.ErrNotConnected) {
		t.Fatalf("send to an unconnected peer: %v", err)
	}
	// A connected peer that does not take the protocol: the open fails,
	// and Send refuses that peer and protocol for a while instead of
	// negotiating a doomed stream every batch.
	if err := ha.Connect(ctx, peer.AddrInfo{ID: hc.ID(), Addrs: hc.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ID(hc.ID()), msgProto, []byte("x")); err != nil {
		t.Fatalf("first send to a peer without the protocol: %v", err)
	}
	waitFor(t, 5*time.Second, "backoff after a refused open", func() bool {
		return errors.Is(a.Send(ID(hc.ID()), msgProto, []byte("x")), ErrOpenBackoff)
	})
	if err := a.Send(to, msgProto, nil); err == nil {
		t.Fatal("empty message accepted")
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(to, msgProto, []byte("x")); err == nil {
		t.Fatal("send after Close accepted")
	}
	if s, _ := streams(a); s != 0 {
		t.Fatalf("%d senders after Close", s)
	}
	if _, in := streams(b); in != 0 {
		t.Fatalf("%d inbound streams after Close", in)
	}
	// Close waited for them; their frames may linger a moment after the
	// WaitGroup's Done.
	waitFor(t, 2*time.Second, "no messenger goroutines", func() bool { return messengerGoroutines() == 0 })
}

// mockPair returns two connected transports on mocknet; call it inside a
// synctest bubble.
func mockPair(t *testing.T) (hosts []host.Host, a, b *Transport) {
	t.Helper()
	mn, hosts := linkedMocknet(t, 2, 0)
	a, err := New(hosts[0], Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(hosts[1], Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(hosts[0].ID(), hosts[1].ID()); err != nil {
		t.Fatal(err)
	}
	synctest.Wait() // identify
	return hosts, a, b
}

// TestSendQueueBounded: a peer that stops reading backs up the stream,
// then the queue; Send then refuses with ErrQueueFull at once, and every
// message it accepted arrives, in order, once the peer reads again. Close
// does not wait for a write blocked on that peer.
func TestSendQueueBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts, a, b := mockPair(t)
		box := inbox{hold: make(chan struct{})}
		b.Receive(msgProto, 1024, box.handle)
		synctest.Wait()
		to := b.Self()
		msg := func(i int) string { return fmt.Sprintf("%0100d", i) }
		if err := a.Send(to, msgProto, []byte(msg(0))); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the reader holds message 0
		var err error
		n := 1
		for ; n < 100*MaxQueuedMessages; n++ {
			if err = a.Send(to, msgProto, []byte(msg(n))); err != nil {
				break
			}
		}
		if !errors.Is(err, transport.ErrQueueFull) || n < MaxQueuedMessages {
			t.Fatalf("after %d messages: %v, want ErrQueueFull after at least %d", n, err, MaxQueuedMessages)
		}
		close(box.hold)
		synctest.Wait()
		msgs, _, _ := box.got()
		if len(msgs) != n {
			t.Fatalf("%d of %d accepted messages arrived", len(msgs), n)
		}
		for i, m := range msgs {
			if m != msg(i) {
				t.Fatalf("message %d is %q", i, m)
			}
		}

		// Stall the peer again, with a write blocked on it: Close resets the
		// stream rather than wait out MessageWriteTimeout.
		box.mu.Lock()
		box.hold = make(chan struct{})
		box.mu.Unlock()
		for i := 0; a.Send(to, msgProto, []byte(msg(i))) == nil; i++ {
		}
		start := time.Now()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= MessageWriteTimeout {
			t.Fatalf("Close took %v with a write blocked", d)
		}
		close(box.hold)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := messengerGoroutines(); n != 0 {
			t.Fatalf("%d messenger goroutines after Close", n)
		}
		closeAll(nil, nil, hosts)
	})
}

// TestMessageStreamLifetime: an idle stream closes after
// MessageIdleTimeout on both ends and the next Send opens another; a
// peer's newer stream replaces its older one; a removed handler drops its
// streams and sees nothing more.
func TestMessageStreamLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts, a, b := mockPair(t)
		var box inbox
		b.Receive(msgProto, 1024, box.handle)
		synctest.Wait()
		to := b.Self()
		if err := a.Send(to, msgProto, []byte("one")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if s, _ := streams(a); s != 1 {
			t.Fatalf("%d senders", s)
		}
		time.Sleep(MessageIdleTimeout - time.Second)
		synctest.Wait()
		if s, _ := streams(a); s != 1 {
			t.Fatal("sender gone before the idle timeout")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if s, _ := streams(a); s != 0 {
			t.Fatalf("%d senders after the idle timeout", s)
		}
		if _, in := streams(b); in != 0 {
			t.Fatalf("%d inbound streams after the sender closed", in)
		}
		if err := a.Send(to, msgProto, []byte("two")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if msgs, _, errs := box.got(); !slices.Equal(msgs, []string{"one", "two"}) || len(errs) != 0 {
			t.Fatalf("got %q, errors %v", msgs, errs)
		}

		// A second stream from the same peer and protocol (here opened by
		// hand next to the sender's) resets the first.
		ctx := context.Background()
		raw, err := hosts[0].NewStream(ctx, hosts[1].ID(), protocol.ID(msgProto))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Write(wire.AppendFrame(nil, []byte("raw"))); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, in := streams(b); in != 1 {
			t.Fatalf("%d inbound streams from one peer", in)
		}
		// The sender learns of the reset on a write; what it wrote into
		// the dead stream is lost, the next stream carries on.
		for i := 0; ; i++ {
			if i == 5 {
				t.Fatal("sender never reopened its stream")
			}
			if err := a.Send(to, msgProto, []byte("three")); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if msgs, _, _ := box.got(); slices.Contains(msgs, "three") {
				break
			}
		}
		if _, err := raw.Read(make([]byte, 1)); err == nil {
			t.Fatal("the replaced stream was not reset")
		}
		if _, err := raw.Write(wire.AppendFrame(nil, []byte("raw again"))); err == nil {
			synctest.Wait()
			if msgs, _, _ := box.got(); slices.Contains(msgs, "raw again") {
				t.Fatal("the replaced stream is still read")
			}
		}
		_ = raw.Reset()
		if msgs, _, _ := box.got(); !slices.Contains(msgs, "raw") {
			t.Fatalf("got %q, want the raw stream's message", msgs)
		}

		b.Receive(msgProto, 1024, nil)
		synctest.Wait()
		if _, in := streams(b); in != 0 {
			t.Fatalf("%d inbound streams after the handler was removed", in)
		}
		before, _, _ := box.got()
		for range 3 {
			_ = a.Send(to, msgProto, []byte("unheard"))
			synctest.Wait()
		}
		if msgs, _, _ := box.got(); len(msgs) != len(before) {
			t.Fatalf("removed handler got %q", msgs[len(before):])
		}
		closeAll(nil, []*Transport{a, b}, hosts)
	})
}
