// Package p2p implements the relay's transport (package relay/transport)
// over a libp2p host: gossip topics on GossipSub v1.1, requests as one
// length-prefixed frame each way on a fresh stream, and one-way messages
// (transport.Messenger) as frames on a long-lived stream per peer and
// protocol.
//
// # Unsigned, content-addressed messages
//
// Messages carry no author, sequence number or signature (GossipSub's
// StrictNoSign: a message that has them is rejected), and a message's id
// is a hash of its topic and data (MessageID). What a relay message says is
// authenticated by its content: tx bodies are fetched and checked against
// the announced ids, a block header carries its proposer's signature. A
// GossipSub signature would only prove which node first published the
// announcement, which nobody uses: peer scoring and penalties go to the
// peer that delivered a message. Dropping it saves ~110 bytes per message
// on every link (signature, key, sender and sequence number; an
// announcement of one tx id is ~40 bytes of data) and an Ed25519
// verification per message per node. Any standard GossipSub peer relays
// the topics when configured the same way; the topic names carry the
// version (/2) so a node of the signed era is not mixed in.
//
// # Concurrency
//
// Goroutines it starts: GossipSub's own (event loop, validation workers),
// one drain per joined topic (delivered messages only need to leave the
// subscription queue: the validator did the work), libp2p's stream
// handler goroutine per inbound request, one sender per peer and protocol
// with messages to send (started by Send; it ends on a stream error, after
// MessageIdleTimeout with nothing queued, or on Close), and libp2p's
// handler goroutine per inbound message stream, at most one per peer and
// protocol (a newer stream resets the older). State it shares: the
// observer (an atomic pointer), the tracer's mesh table (one mutex, never
// held while calling out), the joined topics (one mutex) and the senders
// and inbound message streams (one mutex, never held while writing or
// calling out). Close stops GossipSub, resets the message streams and
// waits for the drains, senders and message readers.
package p2p

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	golog "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

var log = golog.Logger("rumor/p2p")

// Defaults of Config. Each says where its number comes from.
const (
	// MaxMessageSize is the GossipSub message size limit. GossipSub's
	// default is 1 MiB; push-mode block relay carries a whole block, so
	// allow 2 MiB (the relay falls back to compact announcements for blocks
	// above it).
	MaxMessageSize = 2 << 20
	// ValidateQueueSize is GossipSub's validation queue, shared by all
	// topics (go-libp2p-pubsub #398, Lotus #723: 32 dropped messages under
	// load). Items leave it after signature checks, so 1024 absorbs bursts
	// without holding much.
	ValidateQueueSize = 1024
	// ValidateThrottle is GossipSub's global limit on validations running at
	// once; it must exceed the sum of the per-topic limits the relay asks
	// for, so one topic can never take another's slots.
	ValidateThrottle = 4096
	// ReadTimeout bounds reading one inbound request (at most 256 KiB).
	ReadTimeout = 5 * time.Second
	// WriteTimeout bounds writing one response (up to a block): 16 MiB at
	// 10 Mbit/s takes 13 s.
	WriteTimeout = 20 * time.Second
	// MinWriteTime and MinReadRate shorten WriteTimeout for smaller
	// answers: a response of n bytes gets MinWriteTime plus n at
	// MinReadRate (1 MiB/s, 8 Mbit/s), at most WriteTimeout. The server
	// holds an answer's bytes against its caps until the write ends, so a
	// peer that reads slowly on purpose would otherwise hold a 64 KiB
	// answer as long as a 16 MiB one.
	MinWriteTime = 2 * time.Second
	MinReadRate  = 1 << 20
	// DefaultValidateTimeout bounds a validation whose topic sets none.
	DefaultValidateTimeout = 10 * time.Second
	// MessageIDBytes is the length of a message id: a SHA-256 prefix of
	// 20 bytes, as Ethereum's consensus gossip uses, keeps accidental
	// collisions out of reach (2^80 messages for an even chance) and the
	// ids in IHAVE/IWANT/IDONTWANT control messages short.
	MessageIDBytes = 20
	// GossipHistory is GossipSub's HistoryGossip: how many heartbeats a
	// message id is advertised for in IHAVE gossip (GossipSub's default is
	// 3). The relay repairs what gossip loses itself (mempool
	// reconciliation, tip exchange, fetch fallback), so one advertisement
	// is enough. Measured on a 200-node sim (50 tx/s of 250 B txs): the
	// gossip framing and control received fell from 147 to 102 MiB, times
	// to all unchanged, also at 5% loss. Embedders may pass their own
	// pubsub.WithGossipSubParams in Config.PubSubOptions (it is applied
	// after this one).
	GossipHistory = 1
	// GossipLazyPeers is GossipSub's Dlazy: the fewest peers outside the
	// mesh that each heartbeat's IHAVE goes to (GossipSub's default is 6;
	// it also goes to GossipFactor, a quarter, of the non-mesh peers when
	// that is more). For the same reason as GossipHistory two suffice:
	// measured on the same sim, framing and control fell from 101.5 to
	// 89.3 MiB, times to all unchanged.
	GossipLazyPeers = 2
	// MinMeshDegree and MaxMeshDegree bound Config.MeshDegree. Below 4
	// GossipSub keeps no outbound peers in its mesh (Dout must stay below
	// D/2), its defence against a mesh taken over by inbound peers; at 2
	// a mesh is close to a ring. 8 is
	// Ethereum's consensus gossip degree; above it a node's two meshes
	// (2 x Dhi = 4D peers) would no longer fit in the connections a node
	// keeps by default besides its 32 others (node's watermarks, 64).
	MinMeshDegree = 4
	MaxMeshDegree = 8
)

// MeshParams returns GossipSub's parameters for a mesh of degree d (0 =
// GossipSub's default D, 6), with the transport's gossip settings. The
// other mesh bounds keep GossipSub's default proportions: Dlo = D-1,
// Dhi = 2D, Dscore = 2D/3, and Dout = D/2-1 outbound peers, at most 2,
// which GossipSub requires below both Dlo and D/2. d outside
// [MinMeshDegree, MaxMeshDegree] is an error.
//
// The degree trades bytes for hops: each announcement reaches a node
// from about D mesh peers, and a mesh of lower degree is wider. Measured
// on a 200-node sim with 50 ms links (BENCHMARKS.md), D = 4 cut the
// gossip bytes received by 39% and made the mesh two links wider: 100 ms
// more to reach every node.
func MeshParams(d int) (pubsub.GossipSubParams, error) {
	params := pubsub.DefaultGossipSubParams()
	params.HistoryGossip = GossipHistory
	params.Dlazy = GossipLazyPeers
	if d == 0 {
		return params, nil
	}
	if d < MinMeshDegree || d > MaxMeshDegree {
		return params, fmt.Errorf("p2p: mesh degree %d: want %d..%d", d, MinMeshDegree, MaxMeshDegree)
	}
	params.D, params.Dlo, params.Dhi = d, d-1, 2*d
	params.Dscore = 2 * d / 3
	params.Dout = min(2, d/2-1)
	return params, nil
}

// MessageID is the GossipSub message id function of the transport: the
// first MessageIDBytes of SHA-256 over the topic's length, the topic and
// the data. Two nodes announcing the same bytes on a topic publish one
// message, which is what a relay wants: the copies carry nothing new.
func MessageID(m *pb.Message) string {
	topic := m.GetTopic()
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(topic)))])
	h.Write([]byte(topic))
	h.Write(m.GetData())
	var sum [sha256.Size]byte
	return string(h.Sum(sum[:0])[:MessageIDBytes])
}

// Config configures the transport. Zero fields take the defaults above.
type Config struct {
	// MaxMessageSize is GossipSub's message size limit in bytes.
	MaxMessageSize int
	// MeshDegree is GossipSub's D, the peers each topic's mesh keeps (see
	// MeshParams): 0 = GossipSub's default, 6. A pubsub.WithGossipSubParams
	// in PubSubOptions replaces all of these parameters, this one included.
	MeshDegree int
	// PubSubOptions are further GossipSub options (peer scoring, peer
	// exchange, direct peers, parameters), applied after the transport's
	// own (signing policy, message ids, tracer, message size, validation
	// queue and throttle).
	PubSubOptions []pubsub.Option
	// Logger replaces the "rumor/p2p" logger, e.g. to tell apart the nodes
	// of an in-process network.
	Logger *golog.ZapEventLogger
	// Topics, when set, are the only topics GossipSub records peers'
	// subscriptions to and lets this node join (see subscriptionFilter);
	// unset, every topic is kept, as GossipSub does by default.
	Topics []string
	// OnSubscriptionFlood, when set, is told of a peer that sent an RPC
	// with more than MaxSubscriptionsPerRPC subscriptions (dropped). It
	// runs on GossipSub's event loop and must not block. Needs Topics.
	OnSubscriptionFlood func(peer.ID)
}

// Transport is a relay transport over a libp2p host. Create it with New;
// Close it after the relay.
type Transport struct {
	host   host.Host
	ps     *pubsub.PubSub
	tracer *tracer
	log    *golog.ZapEventLogger
	ctx    context.Context
	cancel context.CancelFunc

	observer atomic.Pointer[observerBox]
	notifs   *network.NotifyBundle
	names    *names

	mu     sync.Mutex
	topics map[string]*topic
	wg     sync.WaitGroup

	msgr messenger // one-way messages (messenger.go)
}

type observerBox struct{ o transport.Observer }

var _ transport.Transport = (*Transport)(nil)

// New starts GossipSub on h and returns the transport.
func New(h host.Host, cfg Config) (*Transport, error) {
	if h == nil {
		return nil, errors.New("p2p: nil host")
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = MaxMessageSize
	}
	if cfg.MaxMessageSize < 64<<10 || cfg.MaxMessageSize > wire.MaxBlockBytes+4096 {
		return nil, fmt.Errorf("p2p: max message size %d: want 64 KiB..%d", cfg.MaxMessageSize, wire.MaxBlockBytes+4096)
	}
	params, err := MeshParams(cfg.MeshDegree)
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = log
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{host: h, log: cfg.Logger, ctx: ctx, cancel: cancel, topics: make(map[string]*topic), names: newNames()}
	t.tracer = newTracer(t)
	opts := append([]pubsub.Option{
		pubsub.WithGossipSubParams(params),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(MessageID),
		pubsub.WithRawTracer(t.tracer),
		pubsub.WithMaxMessageSize(cfg.MaxMessageSize),
		pubsub.WithValidateQueueSize(ValidateQueueSize),
		pubsub.WithValidateThrottle(ValidateThrottle),
	}, cfg.PubSubOptions...)
	if len(cfg.Topics) > 0 {
		opts = append(opts, pubsub.WithSubscriptionFilter(newSubscriptionFilter(cfg.Topics, cfg.OnSubscriptionFlood)))
	}
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("p2p: gossipsub: %w", err)
	}
	t.ps = ps
	t.notifs = &network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			t.names.add(c.RemotePeer())
			if o := t.obs(); o != nil {
				o.PeerConnected(t.names.name(c.RemotePeer()))
			}
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			p := c.RemotePeer()
			if n.Connectedness(p) == network.Connected {
				return
			}
			t.names.drop(p)
			o := t.obs()
			if o == nil {
				return
			}
			o.PeerDisconnected(ID(p))
			// A new connection may have raced the report: say so again.
			if n.Connectedness(p) == network.Connected {
				t.names.add(p)
				o.PeerConnected(ID(p))
			}
		},
		ListenF:      func(network.Network, ma.Multiaddr) {},
		ListenCloseF: func(network.Network, ma.Multiaddr) {},
	}
	h.Network().Notify(t.notifs)
	return t, nil
}

// ID converts a libp2p peer id to the transport's.
func ID(p peer.ID) transport.PeerID { return transport.PeerID(p.String()) }

// PeerOf converts a transport peer id back to libp2p's; ok is false when
// the text is not a peer id.
func PeerOf(p transport.PeerID) (peer.ID, bool) {
	id, err := peer.Decode(string(p))
	return id, err == nil
}

// PubSub returns the GossipSub router (peer scores, other subsystems'
// topics).
func (t *Transport) PubSub() *pubsub.PubSub { return t.ps }

// Host returns the libp2p host.
func (t *Transport) Host() host.Host { return t.host }

// Close leaves every topic, stops GossipSub and ends the one-way message
// streams (queued messages are dropped). The host stays open.
func (t *Transport) Close() error {
	t.host.Network().StopNotify(t.notifs)
	t.mu.Lock()
	ts := make([]*topic, 0, len(t.topics))
	for _, tp := range t.topics {
		ts = append(ts, tp)
	}
	t.mu.Unlock()
	for _, tp := range ts {
		_ = tp.Close()
	}
	t.closeMessenger()
	t.cancel()
	t.wg.Wait()
	return nil
}

func (t *Transport) obs() transport.Observer {
	if b := t.observer.Load(); b != nil {
		return b.o
	}
	return nil
}

// Self implements transport.Transport.
func (t *Transport) Self() transport.PeerID { return ID(t.host.ID()) }

// Observe implements transport.Transport.
func (t *Transport) Observe(o transport.Observer) {
	if o == nil {
		t.observer.Store(nil)
		return
	}
	t.observer.Store(&observerBox{o})
}

// Peers implements transport.Transport.
func (t *Transport) Peers() []transport.PeerID { return t.ids(t.host.Network().Peers()) }

// topic is a joined GossipSub topic.
type topic struct {
	t      *Transport
	name   string
	handle *pubsub.Topic
	sub    *pubsub.Subscription
	closed atomic.Bool
}

// Join implements transport.Transport: it registers the validator, joins
// and subscribes, and drains delivered messages.
func (t *Transport) Join(name string, cfg transport.TopicConfig) (transport.Topic, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.topics[name]; dup {
		return nil, fmt.Errorf("p2p: topic %s already joined", name)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultValidateTimeout
	}
	opts := []pubsub.ValidatorOpt{pubsub.WithValidatorTimeout(timeout)}
	if cfg.Concurrency > 0 {
		opts = append(opts, pubsub.WithValidatorConcurrency(cfg.Concurrency))
	}
	self := t.host.ID()
	if v := cfg.Validate; v != nil {
		err := t.ps.RegisterTopicValidator(name, func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
			if from == self {
				return pubsub.ValidationAccept // our own publish
			}
			switch v(ctx, t.names.name(from), msg.Data) {
			case transport.Accept:
				return pubsub.ValidationAccept
			case transport.Reject:
				return pubsub.ValidationReject
			}
			return pubsub.ValidationIgnore
		}, opts...)
		if err != nil {
			return nil, fmt.Errorf("p2p: validator of %s: %w", name, err)
		}
	}
	// The tracer tracks the mesh from the first GRAFT, which may come as
	// soon as we subscribe.
	t.tracer.join(name)
	h, err := t.ps.Join(name)
	if err != nil {
		t.tracer.leave(name)
		_ = t.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("p2p: join %s: %w", name, err)
	}
	sub, err := h.Subscribe()
	if err != nil {
		t.tracer.leave(name)
		_ = t.ps.UnregisterTopicValidator(name)
		_ = h.Close()
		return nil, fmt.Errorf("p2p: subscribe %s: %w", name, err)
	}
	tp := &topic{t: t, name: name, handle: h, sub: sub}
	t.topics[name] = tp
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			if _, err := sub.Next(t.ctx); err != nil {
				return
			}
		}
	}()
	return tp, nil
}

// Publish implements transport.Topic.
func (tp *topic) Publish(ctx context.Context, data []byte) error {
	return tp.handle.Publish(ctx, data)
}

// Peers implements transport.Topic.
func (tp *topic) Peers() []transport.PeerID { return tp.t.ids(tp.handle.ListPeers()) }

// Mesh implements transport.Topic.
func (tp *topic) Mesh() []transport.PeerID { return tp.t.ids(tp.t.tracer.meshPeers(tp.name)) }

// Close implements transport.Topic.
func (tp *topic) Close() error {
	if !tp.closed.CompareAndSwap(false, true) {
		return nil
	}
	t := tp.t
	t.mu.Lock()
	delete(t.topics, tp.name)
	t.mu.Unlock()
	_ = t.ps.UnregisterTopicValidator(tp.name)
	tp.sub.Cancel()
	t.tracer.leave(tp.name)
	return tp.handle.Close()
}

func (t *Transport) ids(ps []peer.ID) []transport.PeerID {
	out := make([]transport.PeerID, len(ps))
	for i, p := range ps {
		out[i] = t.names.name(p)
	}
	return out
}

// Request implements transport.Transport: one frame out on a fresh stream,
// one frame back. The stream is reset when ctx ends, which also unblocks
// transports without deadlines (mocknet).
func (t *Transport) Request(ctx context.Context, to transport.PeerID, proto string, req []byte, maxResponse int) ([]byte, error) {
	p, ok := t.names.peer(to)
	if !ok {
		return nil, fmt.Errorf("p2p: bad peer id %q", to)
	}
	if t.host.Network().Connectedness(p) != network.Connected {
		return nil, fmt.Errorf("p2p: %s: %w", p.ShortString(), transport.ErrNotConnected)
	}
	s, err := t.host.NewStream(network.WithNoDial(ctx, "relay request"), p, protocol.ID(proto))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("p2p: open stream to %s: %w", p.ShortString(), ctx.Err())
		}
		return nil, fmt.Errorf("p2p: open stream to %s: %w", p.ShortString(), err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	if _, err := wire.WriteFrame(s, req); err != nil {
		_ = s.Reset()
		return nil, streamErr(ctx, "write", err)
	}
	_ = s.CloseWrite()
	data, _, err := wire.ReadFrame(s, maxResponse)
	if err != nil {
		_ = s.Reset()
		if errors.Is(err, wire.ErrFrameTooLarge) || errors.Is(err, wire.ErrMalformed) {
			return nil, err
		}
		return nil, streamErr(ctx, "read", err)
	}
	_ = s.Close()
	return data, nil
}

// streamErr reports a stream failure; when ctx ended it wraps ctx's error,
// so callers tell a timeout apart with errors.Is. The stream's deadline is
// ctx's deadline, and its timer may fire a moment before ctx's own: a
// failure at or past the deadline is a timeout too, whichever fired first.
func streamErr(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("p2p: %s: %w", op, ctx.Err())
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return fmt.Errorf("p2p: %s: %w (%v)", op, context.DeadlineExceeded, err)
	}
	return fmt.Errorf("p2p: %s: %w", op, err)
}

// Serve implements transport.Transport.
func (t *Transport) Serve(proto string, h transport.RequestHandler) {
	if h == nil {
		t.host.RemoveStreamHandler(protocol.ID(proto))
		return
	}
	t.host.SetStreamHandler(protocol.ID(proto), func(s network.Stream) { t.serveStream(s, h) })
}

// writeTimeout is how long writing an answer of n bytes may take (see
// MinWriteTime).
func writeTimeout(n int) time.Duration {
	return min(WriteTimeout, MinWriteTime+time.Duration(float64(n)/MinReadRate*float64(time.Second)))
}

// serveStream runs one inbound exchange on libp2p's handler goroutine.
// Deadlines where the transport has them, and a reset timer for transports
// without (mocknet); both bound a stalled peer.
func (t *Transport) serveStream(s network.Stream, h transport.RequestHandler) {
	watchdog := time.AfterFunc(ReadTimeout, func() { _ = s.Reset() })
	defer watchdog.Stop()
	read := func(max int) ([]byte, error) {
		_ = s.SetReadDeadline(time.Now().Add(ReadTimeout))
		data, _, err := wire.ReadFrame(s, max)
		return data, err
	}
	resp, sent := h(t.names.name(s.Conn().RemotePeer()), read)
	if sent != nil {
		defer sent()
	}
	if resp == nil {
		_ = s.Reset()
		return
	}
	limit := writeTimeout(len(resp))
	watchdog.Reset(limit)
	_ = s.SetWriteDeadline(time.Now().Add(limit))
	if _, err := wire.WriteFrame(s, resp); err != nil {
		_ = s.Reset()
		return
	}
	// Close, not Reset: a reset may overtake the answer.
	_ = s.Close()
}
