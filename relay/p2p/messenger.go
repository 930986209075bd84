package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// Bounds of the one-way messages (transport.Messenger). Each message is
// one frame (wire.AppendFrame) on a long-lived stream per peer and
// protocol: a stream per message would cost a multistream negotiation and
// a yamux open per few dozen bytes of tx inventory.
const (
	// MaxQueuedMessages caps the messages queued for one peer and protocol
	// while its stream is busy. The relay's link mode sends a peer one
	// message per tx batch (relay.TxBatchWindow, 20 ms), so 256 is about
	// five seconds of backlog, as long as MessageWriteTimeout lets one
	// write stall: a peer that far behind is not reading, and what it
	// misses is repaired by anti-entropy, so Send refuses more
	// (ErrQueueFull) rather than hold memory for it.
	MaxQueuedMessages = 256
	// MessageOpenTimeout bounds opening a message stream on an existing
	// connection: a yamux open and, when identify has not told us the
	// peer's protocols, one multistream round trip.
	MessageOpenTimeout = 5 * time.Second
	// MessageWriteTimeout bounds one write of queued messages (up to
	// 64 KiB of them coalesced); a peer that takes longer is stalled, and
	// its stream is reset and its queue dropped.
	MessageWriteTimeout = 5 * time.Second
	// MessageIdleTimeout is how long a message stream stays open with
	// nothing to send. Inventory flows every few hundred milliseconds on a
	// live link, so a minute keeps the stream across lulls and closes the
	// streams (and sender goroutines) of peers we no longer talk to.
	MessageIdleTimeout = time.Minute
	// MessageOpenBackoff is how long Send refuses a peer and protocol
	// after a stream to it could not be opened (a peer that does not
	// speak the protocol, or a stalled one): a sender per batch window
	// would otherwise negotiate a stream that fails every 20 ms.
	MessageOpenBackoff = 30 * time.Second
	// MaxOpenBackoffs bounds the peers and protocols remembered in
	// backoff; past it the expired ones go, and if none has, all of them.
	MaxOpenBackoffs = 1024
)

// ErrOpenBackoff is returned (wrapped) by Send while a peer and protocol
// are in backoff after a failed stream open.
var ErrOpenBackoff = errors.New("p2p: message stream refused lately")

// maxBatchBytes is where a sender stops coalescing queued messages into
// one Write: enough for a whole queue of small messages in one syscall
// and one yamux frame, not so much that one write outlasts
// MessageWriteTimeout on a slow link.
const maxBatchBytes = 64 << 10

// keepBatchBytes is the largest batch buffer a sender keeps between
// writes; larger ones (large messages, long backlogs) are left to the
// collector, so an idle sender holds little.
const keepBatchBytes = 4 << 10

// errClosed is returned by Send after Close.
var errClosed = errors.New("p2p: transport closed")

var _ transport.Messenger = (*Transport)(nil)

// streamKey names a message stream: one per peer and protocol each way.
type streamKey struct {
	peer  peer.ID
	proto protocol.ID
}

// messenger is the transport's state for one-way messages. Its zero value
// is ready; mu is never held while writing to a stream or calling out.
type messenger struct {
	// recvMu serializes Receive and Close, so a handler installed with
	// SetStreamHandler always matches handlers.
	recvMu sync.Mutex

	mu      sync.Mutex
	closed  bool
	senders map[streamKey]*sender
	inbound map[streamKey]*inbound
	// handlers holds the generation of each protocol's installed handler;
	// a stream that reaches an older handler is reset.
	handlers map[protocol.ID]uint64
	gen      uint64
	// backoff holds when Send may try a peer and protocol again after a
	// failed open; at most MaxOpenBackoffs entries.
	backoff map[streamKey]time.Time
}

// init makes the maps; called with mu held.
func (m *messenger) init() {
	if m.senders == nil {
		m.senders = make(map[streamKey]*sender)
		m.inbound = make(map[streamKey]*inbound)
		m.handlers = make(map[protocol.ID]uint64)
		m.backoff = make(map[streamKey]time.Time)
	}
}

// sender writes the messages queued for one peer and protocol on its own
// goroutine (run), so Send never waits for the network.
type sender struct {
	t     *Transport
	key   streamKey
	queue chan []byte // written only with messenger.mu held
}

// inbound is a message stream being read.
type inbound struct {
	s    network.Stream
	done chan struct{} // closed when its reader has returned
}

// Send implements transport.Messenger: it queues a copy of msg for the
// peer's sender, starting one (and its stream) when the peer has none. It
// fails when the peer is not connected (it never dials), when its queue
// holds MaxQueuedMessages, when msg is empty (an empty frame is malformed)
// and after Close.
func (t *Transport) Send(to transport.PeerID, proto string, msg []byte) error {
	p, ok := t.names.peer(to)
	if !ok {
		return fmt.Errorf("p2p: bad peer id %q", to)
	}
	if len(msg) == 0 {
		return errors.New("p2p: send: empty message")
	}
	if t.host.Network().Connectedness(p) != network.Connected {
		return fmt.Errorf("p2p: send to %s: %w", p.ShortString(), transport.ErrNotConnected)
	}
	key := streamKey{p, protocol.ID(proto)}
	m := &t.msgr
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	m.init()
	if until, ok := m.backoff[key]; ok {
		if time.Now().Before(until) {
			return fmt.Errorf("p2p: send to %s on %s: %w", p.ShortString(), proto, ErrOpenBackoff)
		}
		delete(m.backoff, key)
	}
	s := m.senders[key]
	if s == nil {
		s = &sender{t: t, key: key, queue: make(chan []byte, MaxQueuedMessages)}
		m.senders[key] = s
		// Close sets closed under mu before it waits, so this Add precedes
		// the Wait.
		t.wg.Add(1)
		go s.run()
	}
	// Only Send fills the queue, under mu: a queue with room now keeps it
	// until the message is in, and a full one costs no copy.
	if len(s.queue) == cap(s.queue) {
		return fmt.Errorf("p2p: send to %s on %s: %w", p.ShortString(), proto, transport.ErrQueueFull)
	}
	s.queue <- append([]byte(nil), msg...)
	return nil
}

// run is the sender's goroutine; Send starts it with the first message
// queued. It opens the stream, then writes what is queued as it comes. It
// returns, and removes the sender so that a later Send starts afresh, on a
// stream error (dropping what is queued: best effort), after
// MessageIdleTimeout with nothing queued, and when the transport closes.
func (s *sender) run() {
	t := s.t
	defer t.wg.Done()
	st, err := s.open()
	if err != nil {
		s.backOff()
		s.fail("open", err)
		return
	}
	// Close resets the stream, so a write blocked on a stalled peer does
	// not hold Close for MessageWriteTimeout.
	defer context.AfterFunc(t.ctx, func() { _ = st.Reset() })()
	// Deadlines where the transport has them, and a reset timer for
	// transports without (mocknet).
	watchdog := time.AfterFunc(MessageWriteTimeout, func() { _ = st.Reset() })
	watchdog.Stop()
	defer watchdog.Stop()
	idle := time.NewTimer(MessageIdleTimeout)
	defer idle.Stop()
	var buf []byte
	for {
		select {
		case <-t.ctx.Done():
			s.remove()
			return
		case <-idle.C:
			if !s.retire() {
				idle.Reset(MessageIdleTimeout)
				continue
			}
			// Close, not Reset: the peer reads what we wrote, then EOF.
			// Close waits for the multistream handshake's answer, so the
			// watchdog bounds it.
			watchdog.Reset(MessageWriteTimeout)
			_ = st.Close()
			return
		case msg := <-s.queue:
			buf = s.batch(buf[:0], msg)
			_ = st.SetWriteDeadline(time.Now().Add(MessageWriteTimeout))
			watchdog.Reset(MessageWriteTimeout)
			_, err := st.Write(buf)
			watchdog.Stop()
			if err != nil {
				_ = st.Reset()
				s.fail("write", err)
				return
			}
			if cap(buf) > keepBatchBytes {
				buf = nil
			}
			idle.Reset(MessageIdleTimeout)
		}
	}
}

// open opens the sender's stream on an existing connection.
func (s *sender) open() (network.Stream, error) {
	ctx, cancel := context.WithTimeout(s.t.ctx, MessageOpenTimeout)
	defer cancel()
	return s.t.host.NewStream(network.WithNoDial(ctx, "relay message"), s.key.peer, s.key.proto)
}

// batch appends msg and what else is queued, as frames, up to
// maxBatchBytes: one Write (one syscall, one yamux frame) for a burst.
func (s *sender) batch(buf, msg []byte) []byte {
	buf = wire.AppendFrame(buf, msg)
	for len(buf) < maxBatchBytes {
		select {
		case msg := <-s.queue:
			buf = wire.AppendFrame(buf, msg)
		default:
			return buf
		}
	}
	return buf
}

// backOff makes Send refuse the sender's peer and protocol for
// MessageOpenBackoff.
func (s *sender) backOff() {
	m := &s.t.msgr
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.backoff == nil {
		return
	}
	now := time.Now()
	if len(m.backoff) >= MaxOpenBackoffs {
		for k, until := range m.backoff {
			if !now.Before(until) {
				delete(m.backoff, k)
			}
		}
		if len(m.backoff) >= MaxOpenBackoffs {
			clear(m.backoff)
		}
	}
	m.backoff[s.key] = now.Add(MessageOpenBackoff)
}

// fail logs a stream error and removes the sender; what is queued is
// dropped with it.
func (s *sender) fail(op string, err error) {
	s.remove()
	if s.t.ctx.Err() == nil {
		s.t.log.Debugw("message stream failed", "op", op, "peer", s.key.peer.ShortString(), "protocol", s.key.proto, "err", err)
	}
}

// remove takes the sender out of the transport's table, so that the next
// Send starts a new one.
func (s *sender) remove() {
	m := &s.t.msgr
	m.mu.Lock()
	if m.senders[s.key] == s {
		delete(m.senders, s.key)
	}
	m.mu.Unlock()
}

// retire removes an idle sender unless a message was queued meanwhile;
// Send queues only under mu, so after retire nothing reaches the queue.
func (s *sender) retire() bool {
	m := &s.t.msgr
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(s.queue) > 0 {
		return false
	}
	if m.senders[s.key] == s {
		delete(m.senders, s.key)
	}
	return true
}

// Receive implements transport.Messenger. Installing a handler (or nil)
// resets the streams read for the protocol's previous handler; their
// peers open new ones with their next message. After Close it does
// nothing.
func (t *Transport) Receive(proto string, max int, h transport.MessageHandler) {
	pid := protocol.ID(proto)
	m := &t.msgr
	m.recvMu.Lock()
	defer m.recvMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.init()
	m.gen++
	gen := m.gen
	if h == nil {
		delete(m.handlers, pid)
	} else {
		m.handlers[pid] = gen
	}
	var old []*inbound
	for k, in := range m.inbound {
		if k.proto == pid {
			old = append(old, in)
		}
	}
	m.mu.Unlock()
	if h == nil {
		t.host.RemoveStreamHandler(pid)
	} else {
		t.host.SetStreamHandler(pid, func(s network.Stream) { t.receiveStream(s, pid, gen, max, h) })
	}
	for _, in := range old {
		_ = in.s.Reset()
	}
}

// receiveStream reads one inbound message stream on libp2p's handler
// goroutine until EOF, a stream error or a framing error. There is no read
// deadline: the stream lives across idle periods by design, and the
// connection's end or the sender's idle close ends it. A peer holds at
// most one such goroutine per protocol: its newer stream replaces (resets)
// the older one, and starts reading once the older one's reader has
// returned, so one peer's messages reach h one at a time.
func (t *Transport) receiveStream(s network.Stream, pid protocol.ID, gen uint64, max int, h transport.MessageHandler) {
	p := s.Conn().RemotePeer()
	key := streamKey{p, pid}
	in := &inbound{s: s, done: make(chan struct{})}
	m := &t.msgr
	m.mu.Lock()
	if m.closed || m.handlers[pid] != gen {
		// Close or Receive ran since libp2p picked this handler.
		m.mu.Unlock()
		_ = s.Reset()
		return
	}
	old := m.inbound[key]
	m.inbound[key] = in
	// Close sets closed under mu before it waits, so this Add precedes the
	// Wait.
	t.wg.Add(1)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.inbound[key] == in {
			delete(m.inbound, key)
		}
		m.mu.Unlock()
		close(in.done)
		t.wg.Done()
	}()
	if old != nil {
		_ = old.s.Reset()
		<-old.done
	}
	from := t.names.name(p)
	r := bufio.NewReader(s)
	for {
		msg, _, err := wire.ReadFrame(r, max)
		if err != nil {
			if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) {
				_ = s.Reset()
				h(from, nil, fmt.Errorf("p2p: message from %s on %s: %w", p.ShortString(), pid, err))
				return
			}
			if errors.Is(err, io.EOF) {
				_ = s.Close()
			} else {
				_ = s.Reset()
			}
			return
		}
		h(from, msg, nil)
	}
}

// closeMessenger stops the messenger for Close: Send and Receive refuse
// from now on, the protocols' handlers are removed and inbound streams
// reset. Senders stop when the transport's context ends; Close then waits
// for them and the readers on its WaitGroup.
func (t *Transport) closeMessenger() {
	m := &t.msgr
	m.recvMu.Lock()
	defer m.recvMu.Unlock()
	m.mu.Lock()
	m.closed = true
	protos := make([]protocol.ID, 0, len(m.handlers))
	for pid := range m.handlers {
		protos = append(protos, pid)
	}
	clear(m.handlers)
	ins := make([]*inbound, 0, len(m.inbound))
	for _, in := range m.inbound {
		ins = append(ins, in)
	}
	m.mu.Unlock()
	for _, pid := range protos {
		t.host.RemoveStreamHandler(pid)
	}
	for _, in := range ins {
		_ = in.s.Reset()
	}
}
