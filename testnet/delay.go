package testnet

import (
	"context"
	"hash/fnv"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Why sim mode does not use mocknet's own link latency: mocknet delays
// each Write by the latency inside the stream's single transport goroutine
// and does not take the next Write until the delay has passed, so a stream
// carries one write (of 256 bytes or more) per latency period. GossipSub
// sends every message to a peer over one long-lived stream, so at 50 ms
// latency a peer link carried 20 messages a second and a 5-node testnet at
// 100 tx/s measured ~1 s propagation for a 50 ms hop. A wire is a
// pipeline: bytes written back to back arrive back to back, one latency
// later. delayHost models that: mocknet links run with zero latency and no
// bandwidth limit, and every stream a node opens or accepts delivers the
// bytes it receives when linkModel says they arrive.
//
// What it does not model: the handshake round trips of dialling a
// connection and negotiating a protocol (they happen before the wrapper),
// jitter and TCP's congestion window; loss only as an optional late
// retransmission (linkModel.retransmit). Those only make real networks
// slower, so sim-mode numbers stay a lower bound on the network part.

// Delay buffer bounds. A 1000-node sim holds tens of thousands of
// streams, most idle, so a stream's buffers cost only what is in flight.
const (
	// delayReadSize is how much one pump read takes from a stream: 4 KiB
	// covers any announcement in one chunk; a block arrives in several,
	// each timed on its own (as packets are).
	delayReadSize = 4 << 10
	// delayInFlight is how many bytes a stream holds in flight for its
	// latency before its pump stops reading and the writer blocks, as a
	// full TCP window would make it: 4 MiB, above the bandwidth-delay
	// product of a 100 Mbit/s link at 300 ms.
	delayInFlight = 4 << 20
)

// linkModel is the sim network's physics: a one-way latency per link and
// an upload bandwidth per node (the access link of a home or data-centre
// node; the core is not the bottleneck). A chunk of n bytes from a to b
// waits for a's uplink (FIFO over all of a's streams), takes n/bandwidth to
// send, then travels for the link's latency: on an idle uplink it arrives
// n/bandwidth + latency after it was written, and a node sending one block
// to eight peers sends the copies one after another, as a real uplink does.
//
// Downloads are not serialized: a receiver's chunks would have to queue in
// order of arrival, and chunks are booked when sent, when a chunk sent
// later on a shorter link may still arrive first (queueing it behind the
// earlier one put plain GossipSub 10-30% above its floor). Gossip's load is
// symmetric, so a node's download carries what its peers upload.
//
// One mutex guards the busy-until times; it is held for a few arithmetic
// operations and never across a wait.
type linkModel struct {
	latency   func(a, b peer.ID) time.Duration // one-way, symmetric
	bandwidth float64                          // upload bytes per second per node; 0 = unlimited
	// loss is the probability that a chunk's first transmission is lost
	// (see retransmit); lossSeed makes the draws reproducible.
	loss     float64
	lossSeed uint64
	// tick, when set, rounds every arrival up to a multiple of it (see
	// simTick); zero keeps arrivals exact.
	tick time.Duration

	mu sync.Mutex
	up map[peer.ID]time.Time // when a node's uplink is free again

	closed    chan struct{} // closed by close: every pump and waiting reader returns
	closeOnce sync.Once
}

func newLinkModel(latency func(a, b peer.ID) time.Duration, bandwidth float64) *linkModel {
	return &linkModel{
		latency:   latency,
		bandwidth: bandwidth,
		up:        make(map[peer.ID]time.Time),
		closed:    make(chan struct{}),
	}
}

// minRTO is the least retransmission timeout of a lost chunk: Linux TCP's
// minimum RTO.
const minRTO = 200 * time.Millisecond

// retransmit returns the extra delay of the seq-th chunk of a stream from
// from to to speaking proto: zero, or, with probability loss, a retransmission timeout
// (max(minRTO, 3 one-way latencies): TCP waits about an RTT plus margin
// before resending). Rumor's links are reliable streams (TCP, QUIC), so a
// lost packet is late, not gone, and every later byte of the stream waits
// behind it (head-of-line blocking, which the in-order reader gives for
// free). The draw hashes the seed, the link and the chunk's place in the
// stream, so a run is reproducible whatever order goroutines run in.
func (m *linkModel) retransmit(from, to peer.ID, proto protocol.ID, seq uint64) time.Duration {
	if m.loss <= 0 {
		return 0
	}
	link := fnv.New64a()
	for _, part := range []string{string(from), string(to), string(proto)} {
		_, _ = link.Write([]byte(part))
		_, _ = link.Write([]byte{0}) // separator: ("ab","c") != ("a","bc")
	}
	h := splitmix64(m.lossSeed ^ splitmix64(link.Sum64()) ^ seq)
	if float64(h>>11)/float64(1<<53) >= m.loss {
		return 0
	}
	return max(minRTO, 3*m.latency(from, to))
}

// fixedLatency is a linkModel latency function with one latency for every link.
func fixedLatency(d time.Duration) func(a, b peer.ID) time.Duration {
	return func(peer.ID, peer.ID) time.Duration { return d }
}

// arrival returns when n bytes that from wrote at now are readable at to,
// and books from's uplink for them.
func (m *linkModel) arrival(from, to peer.ID, n int, now time.Time) time.Time {
	lat := m.latency(from, to)
	if m.bandwidth <= 0 || n <= 0 {
		return now.Add(lat)
	}
	tx := time.Duration(float64(n) / m.bandwidth * float64(time.Second))
	m.mu.Lock()
	defer m.mu.Unlock()
	sendStart := now
	if busy := m.up[from]; busy.After(sendStart) {
		sendStart = busy
	}
	sent := sendStart.Add(tx)
	m.up[from] = sent
	return sent.Add(lat)
}

// onTick rounds t up to the model's tick: the first tick boundary at or
// after t.
func (m *linkModel) onTick(t time.Time) time.Time {
	if m.tick <= 0 {
		return t
	}
	ns := t.UnixNano()
	if r := ns % int64(m.tick); r != 0 {
		return t.Add(m.tick - time.Duration(r))
	}
	return t
}

// close releases every stream waiting on the model: called when the
// network shuts down, so no pump or reader outlives it (inside a synctest
// bubble a goroutine waiting for a chunk still in flight would never end).
func (m *linkModel) close() { m.closeOnce.Do(func() { close(m.closed) }) }

// delayHost wraps a host so that every stream opened or accepted through
// it delivers inbound bytes when its linkModel says they arrive.
type delayHost struct {
	host.Host
	model *linkModel
}

var _ host.Host = (*delayHost)(nil)

func newDelayHost(h host.Host, model *linkModel) host.Host {
	return &delayHost{Host: h, model: model}
}

func (h *delayHost) wrap(s network.Stream) network.Stream {
	return newDelayedStream(s, h.model, s.Conn().RemotePeer(), h.ID())
}

// NewStream opens a stream whose inbound bytes are delayed.
func (h *delayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return h.wrap(s), nil
}

// SetStreamHandler registers handler for streams whose inbound bytes are
// delayed.
func (h *delayHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

// SetStreamHandlerMatch is SetStreamHandler with a protocol matcher.
func (h *delayHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(s network.Stream) { handler(h.wrap(s)) })
}

// delayedChunk is bytes read from the underlying stream, deliverable at at.
// err, when set, follows the bytes (EOF, reset).
type delayedChunk struct {
	data []byte
	at   time.Time
	err  error
}

// delayedStream delivers what its underlying stream receives when the
// link model says it arrives. A pump goroutine reads the underlying stream
// as data arrives, timestamps it and queues it; Read hands chunks out once
// they are due. Reads honour the stream's read deadline, which is kept
// here and never set on the underlying stream (the pump must not time
// out). Writes pass through.
type delayedStream struct {
	network.Stream
	model    *linkModel
	from, to peer.ID       // the remote writer and this reader
	seq      uint64        // chunks read so far (the pump's)
	done     chan struct{} // closed by Close, Reset or CloseRead: the pump stops
	start    sync.Once
	stop     sync.Once

	// The in-flight queue, filled by the pump and drained by Read: a
	// slice that grows with what is in flight (a channel would allocate
	// its whole bound for every stream), at most delayInFlight bytes.
	qmu    sync.Mutex
	q      []delayedChunk
	qBytes int
	ready  chan struct{} // cap 1: a chunk was queued
	space  chan struct{} // cap 1: a chunk was taken

	// Read state, owned by the (single) reader.
	cur     []byte
	pending *delayedChunk
	err     error
	// due and expiry are the reader's timers, made once and reset per
	// wait (a timer per chunk was 4% of a sim's allocated bytes).
	due, expiry *time.Timer

	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{} // closed and replaced when the read deadline changes
}

func newDelayedStream(s network.Stream, model *linkModel, from, to peer.ID) *delayedStream {
	return &delayedStream{
		Stream:  s,
		model:   model,
		from:    from,
		to:      to,
		done:    make(chan struct{}),
		ready:   make(chan struct{}, 1),
		space:   make(chan struct{}, 1),
		changed: make(chan struct{}),
	}
}

// readBufs holds the pumps' read buffers: a sim opens a stream per relay
// request, and the pump (a fresh 4 KiB buffer per stream, plus the copy of
// each chunk it queues) was the largest allocator of a 100-node run, 18%
// of its bytes, which the garbage collector, run at the memory limit,
// paid for again.
var readBufs = sync.Pool{New: func() any { return new([delayReadSize]byte) }}

func (s *delayedStream) pump() {
	bufp := readBufs.Get().(*[delayReadSize]byte)
	defer readBufs.Put(bufp)
	buf := bufp[:]
	for {
		n, err := s.Stream.Read(buf)
		if n == 0 && err == nil {
			continue
		}
		at := s.model.arrival(s.from, s.to, n, time.Now())
		if n > 0 {
			at = at.Add(s.model.retransmit(s.from, s.to, s.Protocol(), s.seq))
			s.seq++
		}
		at = s.model.onTick(at)
		c := delayedChunk{at: at, err: err}
		if n > 0 {
			c.data = append([]byte(nil), buf[:n]...)
		}
		if !s.enqueue(c) || err != nil {
			return
		}
	}
}

// enqueue queues c for the reader, waiting while delayInFlight bytes are
// queued; false when the stream or the network closed.
func (s *delayedStream) enqueue(c delayedChunk) bool {
	for {
		s.qmu.Lock()
		if s.qBytes < delayInFlight {
			s.q = append(s.q, c)
			s.qBytes += len(c.data)
			s.qmu.Unlock()
			notify(s.ready)
			return true
		}
		s.qmu.Unlock()
		select {
		case <-s.space:
		case <-s.done:
			return false
		case <-s.model.closed:
			return false
		}
	}
}

// dequeue takes the oldest queued chunk, if any.
func (s *delayedStream) dequeue() (delayedChunk, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.q) == 0 {
		return delayedChunk{}, false
	}
	c := s.q[0]
	s.q[0] = delayedChunk{}
	s.q = s.q[1:]
	if len(s.q) == 0 {
		s.q = nil // let an emptied backing array go
	}
	s.qBytes -= len(c.data)
	notify(s.space)
	return c, true
}

// notify wakes the waiter on a capacity-1 channel without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (s *delayedStream) readDeadline() (time.Time, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline, s.changed
}

// Read returns bytes once they are due.
func (s *delayedStream) Read(p []byte) (int, error) {
	s.start.Do(func() { go s.pump() })
	for {
		if len(s.cur) > 0 {
			n := copy(p, s.cur)
			s.cur = s.cur[n:]
			return n, nil
		}
		if s.pending == nil && s.err != nil {
			return 0, s.err
		}
		deadline, changed := s.readDeadline()
		var expired <-chan time.Time
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			expired = startTimer(&s.expiry, d)
		}
		err := s.advance(expired, changed)
		if expired != nil {
			s.expiry.Stop()
		}
		if err != nil {
			return 0, err
		}
	}
}

// advance waits for the next chunk and for it to be due, then makes it
// current. It returns early, with no error, when the read deadline
// changes, so the caller re-reads it.
func (s *delayedStream) advance(expired <-chan time.Time, changed <-chan struct{}) error {
	for s.pending == nil {
		if c, ok := s.dequeue(); ok {
			s.pending = &c
			break
		}
		select {
		case <-s.ready:
		case <-s.done:
			return network.ErrReset
		case <-s.model.closed:
			return network.ErrReset
		case <-expired:
			return os.ErrDeadlineExceeded
		case <-changed:
			return nil
		}
	}
	if wait := time.Until(s.pending.at); wait > 0 {
		due := startTimer(&s.due, wait)
		defer s.due.Stop()
		select {
		case <-due:
		case <-s.done:
			return network.ErrReset
		case <-s.model.closed:
			return network.ErrReset
		case <-expired:
			return os.ErrDeadlineExceeded
		case <-changed:
			return nil
		}
	}
	s.cur, s.err = s.pending.data, s.pending.err
	s.pending = nil
	return nil
}

// startTimer arms *t to fire after d, making it on first use, and returns
// its channel. Since Go 1.23 a stopped or fired timer's channel holds no
// stale value after Reset.
func startTimer(t **time.Timer, d time.Duration) <-chan time.Time {
	if *t == nil {
		*t = time.NewTimer(d)
	} else {
		(*t).Reset(d)
	}
	return (*t).C
}

// SetReadDeadline sets the deadline Read honours.
func (s *delayedStream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline here and the write deadline below.
func (s *delayedStream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.Stream.SetWriteDeadline(t)
}

func (s *delayedStream) stopPump() { s.stop.Do(func() { close(s.done) }) }

// Close closes the stream and stops the pump.
func (s *delayedStream) Close() error {
	err := s.Stream.Close()
	s.stopPump()
	return err
}

// Reset resets the stream and stops the pump.
func (s *delayedStream) Reset() error {
	err := s.Stream.Reset()
	s.stopPump()
	return err
}

// ResetWithError resets the stream with an error code and stops the pump.
func (s *delayedStream) ResetWithError(code network.StreamErrorCode) error {
	err := s.Stream.ResetWithError(code)
	s.stopPump()
	return err
}

// CloseRead closes the read side and stops the pump.
func (s *delayedStream) CloseRead() error {
	err := s.Stream.CloseRead()
	s.stopPump()
	return err
}
