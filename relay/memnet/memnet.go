// Package memnet is an in-process network of relay transports
// (relay/transport) for tests, examples and simulations: no sockets, no
// files, no real clock beyond time.Sleep and timers, so a whole network runs
// inside a testing/synctest bubble in virtual time and every timing in it
// is exact.
//
// Gossip floods: a node forwards a message it accepted to every connected
// peer that joined the topic, except the one it came from, so the mesh of a
// topic is all such peers. A message is identified by its author and a
// sequence number, as GossipSub's default message id; a node validates each
// message once and reports later copies to its observer as duplicates.
// Every link has a one-way latency (the network's default, or its own when
// connected with ConnectLatency); a message or a request half takes that
// long to cross it.
//
// # Concurrency
//
// Each delivery, validation and request runs on its own goroutine (none
// outlives Close). The network's mutex guards the nodes and links; each
// node's mutex guards its topics, seen set, handlers and observer; neither
// is held while calling a validator, handler or observer.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

const (
	// SeenCap bounds each node's seen-message set (oldest forgotten first):
	// GossipSub keeps seen ids for 2 minutes; 2^16 messages covers that at
	// 500 messages/s.
	SeenCap = 1 << 16
	// EnvelopeBytes is what each gossip message is counted as costing on
	// the wire beyond its data: an unsigned GossipSub message (relay/p2p)
	// carries its topic (~20 bytes), field tags and lengths and the RPC's
	// length prefix.
	EnvelopeBytes = 32
	// DefaultValidateConcurrency and DefaultValidateTimeout apply to topics
	// that set none.
	DefaultValidateConcurrency = 1024
	DefaultValidateTimeout     = 10 * time.Second
	// MaxQueuedMessages bounds the one-way messages of one protocol on
	// their way from one node to one peer (transport.Messenger); Send
	// fails with transport.ErrQueueFull past it, as relay/p2p's queue does.
	MaxQueuedMessages = 256
)

// Network is a set of nodes and the links between them.
type Network struct {
	latency time.Duration

	mu     sync.Mutex
	nodes  map[transport.PeerID]*Node
	links  map[transport.PeerID]map[transport.PeerID]time.Duration // present: connected; value: latency
	closed bool
	wg     sync.WaitGroup
}

// New returns an empty network whose links all have one-way latency.
func New(latency time.Duration) *Network {
	return &Network{
		latency: latency,
		nodes:   make(map[transport.PeerID]*Node),
		links:   make(map[transport.PeerID]map[transport.PeerID]time.Duration),
	}
}

// Node is one node's transport on the network.
type Node struct {
	net *Network
	id  transport.PeerID

	mu       sync.Mutex
	topics   map[string]*topic
	handlers map[string]transport.RequestHandler
	inboxes  map[string]inbox
	queued   map[queueKey]int // one-way messages on their way, per peer and protocol
	observer transport.Observer
	seen     map[msgID]struct{}
	seenFIFO []msgID
	seq      uint64
}

var (
	_ transport.Transport = (*Node)(nil)
	_ transport.Messenger = (*Node)(nil)
)

// inbox is an installed handler of one-way messages.
type inbox struct {
	max int
	h   transport.MessageHandler
}

type queueKey struct {
	to    transport.PeerID
	proto string
}

type msgID struct {
	author transport.PeerID
	seq    uint64
}

// Add creates a node with id.
func (n *Network) Add(id transport.PeerID) *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.nodes[id]; dup {
		panic(fmt.Sprintf("memnet: node %s added twice", id))
	}
	nd := &Node{
		net:      n,
		id:       id,
		topics:   make(map[string]*topic),
		handlers: make(map[string]transport.RequestHandler),
		inboxes:  make(map[string]inbox),
		queued:   make(map[queueKey]int),
		seen:     make(map[msgID]struct{}),
	}
	n.nodes[id] = nd
	n.links[id] = make(map[transport.PeerID]time.Duration)
	return nd
}

// Connect links a and b (both ways) with the network's latency and tells
// both observers.
func (n *Network) Connect(a, b transport.PeerID) { n.ConnectLatency(a, b, n.latency) }

// ConnectLatency links a and b (both ways) with its own one-way latency and
// tells both observers. Linking a linked pair does nothing.
func (n *Network) ConnectLatency(a, b transport.PeerID, latency time.Duration) {
	n.mu.Lock()
	na, nb := n.nodes[a], n.nodes[b]
	_, linked := n.links[a][b]
	if na == nil || nb == nil || a == b || linked {
		n.mu.Unlock()
		return
	}
	n.links[a][b], n.links[b][a] = latency, latency
	n.mu.Unlock()
	if o := na.obs(); o != nil {
		o.PeerConnected(b)
	}
	if o := nb.obs(); o != nil {
		o.PeerConnected(a)
	}
	na.reportMesh()
	nb.reportMesh()
}

// Disconnect cuts the link between a and b and tells both observers.
// Messages and requests already on the link are lost.
func (n *Network) Disconnect(a, b transport.PeerID) {
	n.mu.Lock()
	if _, linked := n.links[a][b]; !linked {
		n.mu.Unlock()
		return
	}
	delete(n.links[a], b)
	delete(n.links[b], a)
	na, nb := n.nodes[a], n.nodes[b]
	n.mu.Unlock()
	if o := na.obs(); o != nil {
		o.PeerDisconnected(b)
	}
	if o := nb.obs(); o != nil {
		o.PeerDisconnected(a)
	}
	na.reportMesh()
	nb.reportMesh()
}

// reportMesh tells the observer the size of each joined topic's mesh.
func (nd *Node) reportMesh() {
	o := nd.obs()
	if o == nil {
		return
	}
	nd.mu.Lock()
	topics := make([]*topic, 0, len(nd.topics))
	for _, t := range nd.topics {
		topics = append(topics, t)
	}
	nd.mu.Unlock()
	for _, t := range topics {
		o.MeshChanged(t.name, len(t.Mesh()))
	}
}

// Close refuses new deliveries and requests and waits for the goroutines
// of those under way (a validator or handler already running finishes).
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
}

func (n *Network) connected(a, b transport.PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.links[a][b]
	return ok
}

func (n *Network) neighbours(a transport.PeerID) []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Node, 0, len(n.links[a]))
	for p := range n.links[a] {
		out = append(out, n.nodes[p])
	}
	return out
}

// spawn runs f on a network goroutine, unless the network is closed.
func (n *Network) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// cross waits the one-way latency of the link a-b.
func (n *Network) cross(a, b transport.PeerID) {
	n.mu.Lock()
	d := n.links[a][b]
	n.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// Self implements transport.Transport.
func (nd *Node) Self() transport.PeerID { return nd.id }

func (nd *Node) obs() transport.Observer {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.observer
}

// Peers implements transport.Transport.
func (nd *Node) Peers() []transport.PeerID {
	var out []transport.PeerID
	for _, p := range nd.net.neighbours(nd.id) {
		out = append(out, p.id)
	}
	slices.Sort(out)
	return out
}

// topic is a joined topic of one node.
type topic struct {
	nd   *Node
	name string
	cfg  transport.TopicConfig
	sem  chan struct{} // validation slots
}

// Join implements transport.Transport.
func (nd *Node) Join(name string, cfg transport.TopicConfig) (transport.Topic, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultValidateConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultValidateTimeout
	}
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if _, dup := nd.topics[name]; dup {
		return nil, fmt.Errorf("memnet: topic %s already joined", name)
	}
	t := &topic{nd: nd, name: name, cfg: cfg, sem: make(chan struct{}, cfg.Concurrency)}
	nd.topics[name] = t
	return t, nil
}

// Observe implements transport.Transport; the new observer learns the
// current mesh sizes at once.
func (nd *Node) Observe(o transport.Observer) {
	nd.mu.Lock()
	nd.observer = o
	nd.mu.Unlock()
	nd.reportMesh()
}

func (nd *Node) joined(name string) *topic {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.topics[name]
}

// markSeen records id and reports whether it is new.
func (nd *Node) markSeen(id msgID) bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if _, ok := nd.seen[id]; ok {
		return false
	}
	if len(nd.seenFIFO) >= SeenCap {
		delete(nd.seen, nd.seenFIFO[0])
		nd.seenFIFO = nd.seenFIFO[1:]
	}
	nd.seen[id] = struct{}{}
	nd.seenFIFO = append(nd.seenFIFO, id)
	return true
}

// Publish implements transport.Topic.
func (t *topic) Publish(ctx context.Context, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nd := t.nd
	nd.mu.Lock()
	if nd.topics[t.name] != t {
		nd.mu.Unlock()
		return errors.New("memnet: publish on a closed topic")
	}
	nd.seq++
	id := msgID{author: nd.id, seq: nd.seq}
	nd.mu.Unlock()
	nd.markSeen(id)
	nd.forward(t.name, id, slices.Clone(data), "")
	return nil
}

// forward sends a message to every neighbour that joined the topic, except
// skip.
func (nd *Node) forward(topic string, id msgID, data []byte, skip transport.PeerID) {
	for _, p := range nd.net.neighbours(nd.id) {
		if p.id == skip || p.joined(topic) == nil {
			continue
		}
		if o := nd.obs(); o != nil {
			o.GossipTraffic(false, len(data)+EnvelopeBytes, []transport.Published{{Topic: topic, Data: data, Wire: len(data) + EnvelopeBytes}})
		}
		to := p
		nd.net.spawn(func() {
			nd.net.cross(nd.id, to.id)
			if nd.net.connected(nd.id, to.id) {
				to.receive(topic, id, data, nd.id)
			}
		})
	}
}

// receive handles a message delivered by from.
func (nd *Node) receive(topic string, id msgID, data []byte, from transport.PeerID) {
	t := nd.joined(topic)
	if t == nil {
		return
	}
	o := nd.obs()
	if o != nil {
		o.GossipTraffic(true, len(data)+EnvelopeBytes, []transport.Published{{Topic: topic, Data: data, Wire: len(data) + EnvelopeBytes}})
	}
	if !nd.markSeen(id) {
		if o != nil && from != nd.id {
			o.Duplicate(topic, from, data)
		}
		return
	}
	if t.cfg.Validate == nil {
		nd.forward(topic, id, data, from)
		return
	}
	select {
	case t.sem <- struct{}{}:
	default:
		return // throttled: dropped, as GossipSub does
	}
	defer func() { <-t.sem }()
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Timeout)
	v := t.cfg.Validate(ctx, from, data)
	cancel()
	if v == transport.Accept && nd.joined(topic) == t {
		nd.forward(topic, id, data, from)
	}
}

// Peers implements transport.Topic.
func (t *topic) Peers() []transport.PeerID {
	var out []transport.PeerID
	for _, p := range t.nd.net.neighbours(t.nd.id) {
		if p.joined(t.name) != nil {
			out = append(out, p.id)
		}
	}
	slices.Sort(out)
	return out
}

// Mesh implements transport.Topic: every subscribed neighbour.
func (t *topic) Mesh() []transport.PeerID { return t.Peers() }

// Close implements transport.Topic.
func (t *topic) Close() error {
	t.nd.mu.Lock()
	if t.nd.topics[t.name] == t {
		delete(t.nd.topics, t.name)
	}
	t.nd.mu.Unlock()
	return nil
}

// Serve implements transport.Transport.
func (nd *Node) Serve(proto string, h transport.RequestHandler) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if h == nil {
		delete(nd.handlers, proto)
		return
	}
	nd.handlers[proto] = h
}

// Request implements transport.Transport: the request crosses the link,
// the peer's handler runs, the answer crosses back.
func (nd *Node) Request(ctx context.Context, to transport.PeerID, proto string, req []byte, maxResponse int) ([]byte, error) {
	if !nd.net.connected(nd.id, to) {
		return nil, fmt.Errorf("memnet: %s: %w", to, transport.ErrNotConnected)
	}
	nd.net.mu.Lock()
	peer := nd.net.nodes[to]
	nd.net.mu.Unlock()
	type answer struct {
		resp []byte
		err  error
	}
	done := make(chan answer, 1)
	req = slices.Clone(req)
	ok := nd.net.spawn(func() {
		nd.net.cross(nd.id, to)
		peer.mu.Lock()
		h := peer.handlers[proto]
		peer.mu.Unlock()
		if h == nil || !nd.net.connected(nd.id, to) {
			done <- answer{err: fmt.Errorf("memnet: %s does not serve %s", to, proto)}
			return
		}
		read := func(max int) ([]byte, error) {
			if len(req) > max {
				return nil, fmt.Errorf("%w: %d bytes, cap %d", wire.ErrFrameTooLarge, len(req), max)
			}
			if len(req) == 0 {
				return nil, fmt.Errorf("%w: empty request", wire.ErrMalformed)
			}
			return req, nil
		}
		out, sent := h(nd.id, read)
		resp := slices.Clone(out)
		// The answer is held while it crosses the link, as a stream's
		// write would hold it.
		nd.net.cross(to, nd.id)
		if sent != nil {
			sent()
		}
		switch {
		case !nd.net.connected(nd.id, to):
			done <- answer{err: fmt.Errorf("memnet: %s: link cut: %w", to, transport.ErrNotConnected)}
		case resp == nil:
			done <- answer{err: errors.New("memnet: stream reset by peer")}
		case len(resp) > maxResponse:
			done <- answer{err: fmt.Errorf("%w: %d bytes, cap %d", wire.ErrFrameTooLarge, len(resp), maxResponse)}
		default:
			done <- answer{resp: resp}
		}
	})
	if !ok {
		return nil, errors.New("memnet: network closed")
	}
	select {
	case a := <-done:
		return a.resp, a.err
	case <-ctx.Done():
		return nil, fmt.Errorf("memnet: request to %s: %w", to, ctx.Err())
	}
}

// Receive implements transport.Messenger.
func (nd *Node) Receive(proto string, max int, h transport.MessageHandler) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if h == nil {
		delete(nd.inboxes, proto)
		return
	}
	nd.inboxes[proto] = inbox{max: max, h: h}
}

// Send implements transport.Messenger: the message crosses the link and is
// handed to the peer's handler, unless the link is cut meanwhile. Messages
// sent at once may be handled in any order.
func (nd *Node) Send(to transport.PeerID, proto string, msg []byte) error {
	if !nd.net.connected(nd.id, to) {
		return fmt.Errorf("memnet: %s: %w", to, transport.ErrNotConnected)
	}
	key := queueKey{to, proto}
	nd.mu.Lock()
	if nd.queued[key] >= MaxQueuedMessages {
		nd.mu.Unlock()
		return fmt.Errorf("memnet: to %s: %w", to, transport.ErrQueueFull)
	}
	nd.queued[key]++
	nd.mu.Unlock()
	nd.net.mu.Lock()
	peer := nd.net.nodes[to]
	nd.net.mu.Unlock()
	msg = slices.Clone(msg)
	ok := nd.net.spawn(func() {
		nd.net.cross(nd.id, to)
		nd.unqueue(key)
		peer.mu.Lock()
		in, ok := peer.inboxes[proto]
		peer.mu.Unlock()
		if !ok || !nd.net.connected(nd.id, to) {
			return
		}
		if len(msg) > in.max {
			in.h(nd.id, nil, fmt.Errorf("%w: %d bytes, cap %d", wire.ErrFrameTooLarge, len(msg), in.max))
			return
		}
		in.h(nd.id, msg, nil)
	})
	if !ok {
		nd.unqueue(key)
		return errors.New("memnet: network closed")
	}
	return nil
}

// unqueue counts one message of key off its way (delivered or dropped).
func (nd *Node) unqueue(key queueKey) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.queued[key]--; nd.queued[key] <= 0 {
		delete(nd.queued, key)
	}
}
