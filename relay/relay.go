package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	golog "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rumor-relay/rumor/relay/syncer"
)

var log = golog.Logger("rumor/relay")

// Relay announces transactions and blocks over GossipSub and fetches the
// bodies it lacks over the request protocol. See the package documentation
// for the design and doc.go's concurrency contract.
type Relay struct {
	cfg     Config
	host    host.Host
	chain   Chain
	pool    TxPool
	ps      *pubsub.PubSub
	proto   protocol.ID
	metrics *Metrics
	penalty PenaltyHook
	budget  ServeBudget
	newPeer func(peer.ID)
	clock   func() time.Time
	log     *golog.ZapEventLogger

	txTopicName, blockTopicName string
	txTopic, blockTopic         *pubsub.Topic
	txSub, blockSub             *pubsub.Subscription

	ctx    context.Context // lives from New to Close; pubsub runs under it
	cancel context.CancelFunc

	fetch   *fetcher
	batch   *batcher
	tracer  *tracer
	seen    *firstSeen
	limiter serveLimiter
	flight  blockFlight
	stats   counters

	peerCh chan peer.ID // newly connected peers for the new-peer hook
	notifs *network.NotifyBundle

	sync       *syncer.Syncer // catch-up and mempool sync; nil when cfg.NoSync
	syncNotifs *network.NotifyBundle

	started atomic.Bool
	closed  atomic.Bool
	closeMu sync.Mutex
	wg      sync.WaitGroup
}

// Option sets an optional hook or dependency of New.
type Option func(*options)

type options struct {
	psOpts  []pubsub.Option
	metrics *Metrics
	penalty PenaltyHook
	newPeer func(peer.ID)
	clock   func() time.Time
	log     *golog.ZapEventLogger
	budget  ServeBudget
}

// ServeBudget meters the work a peer may make this node do: one request
// token per request stream and byte tokens per response. peers.Limiter
// implements it. Both methods must be safe for concurrent use and fast.
type ServeBudget interface {
	AllowRequest(p peer.ID, now time.Time) bool
	AllowBytes(p peer.ID, n int, now time.Time) bool
}

// WithServeBudget makes the request server refuse (busy, and a request-flood
// offense) requests beyond p's budget, and cut responses beyond its byte
// budget to an empty answer.
func WithServeBudget(b ServeBudget) Option {
	return func(o *options) { o.budget = b }
}

// WithPubSubOptions adds GossipSub options (peer scoring, peer exchange,
// direct peers, parameters). They are applied after the relay's own
// (signing policy, tracer, message size, validation queue and throttle).
func WithPubSubOptions(opts ...pubsub.Option) Option {
	return func(o *options) { o.psOpts = append(o.psOpts, opts...) }
}

// WithMetrics makes the relay record into m (see NewMetrics).
func WithMetrics(m *Metrics) Option {
	return func(o *options) { o.metrics = m }
}

// WithPenaltyHook installs the hook that receives every peer offense the
// relay observes (the seam for peer scoring).
func WithPenaltyHook(h PenaltyHook) Option {
	return func(o *options) { o.penalty = h }
}

// WithNewPeerHook installs a hook called, one peer at a time on a relay
// goroutine, for each newly connected peer (the seam for sync and mempool
// exchange on connect). A slow hook delays later calls; connections beyond
// NewPeerQueue waiting calls are not reported.
func WithNewPeerHook(h func(peer.ID)) Option {
	return func(o *options) { o.newPeer = h }
}

// WithLogger replaces the relay's logger (default: the "rumor/relay"
// subsystem logger), e.g. to tell apart the nodes of an in-process testnet.
func WithLogger(l *golog.ZapEventLogger) Option {
	return func(o *options) { o.log = l }
}

// WithClock sets the clock used for first-seen times (default time.Now),
// e.g. a simulated network's clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.clock = now }
}

// New builds a relay on h for chain c and pool p. It creates the GossipSub
// router (strict message signing, so standard libp2p peers interoperate)
// with the relay's tracer and validation throttles, and joins the two
// topics; nothing is subscribed or served until Start.
func New(h host.Host, c Chain, p TxPool, cfg Config, opts ...Option) (*Relay, error) {
	if h == nil || c == nil || p == nil {
		return nil, errors.New("relay: nil host, chain or pool")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.log == nil {
		o.log = log
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		cfg:            cfg,
		host:           h,
		chain:          c,
		pool:           p,
		proto:          protocol.ID(cfg.RequestProtocol()),
		metrics:        o.metrics,
		penalty:        o.penalty,
		budget:         o.budget,
		newPeer:        o.newPeer,
		clock:          o.clock,
		log:            o.log,
		txTopicName:    cfg.TxTopic(),
		blockTopicName: cfg.BlockTopic(),
		ctx:            ctx,
		cancel:         cancel,
		seen:           newFirstSeen(cfg.FirstSeenCap),
		peerCh:         make(chan peer.ID, NewPeerQueue),
	}
	r.tracer = newTracer(r)
	r.fetch = newFetcher(r)
	var err error
	if r.sync, err = r.newSyncer(); err != nil {
		cancel()
		return nil, fmt.Errorf("relay: syncer: %w", err)
	}
	r.batch = newBatcher(cfg.TxBatchWindow, cfg.TxBatchMax, r.publishTxBatch)
	psOpts := append([]pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithRawTracer(r.tracer),
		pubsub.WithMaxMessageSize(cfg.MaxGossipMessageSize),
		pubsub.WithValidateQueueSize(ValidateQueueSize),
		pubsub.WithValidateThrottle(ValidateThrottle),
	}, o.psOpts...)
	ps, err := pubsub.NewGossipSub(ctx, h, psOpts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("relay: gossipsub: %w", err)
	}
	r.ps = ps
	if r.txTopic, err = ps.Join(r.txTopicName); err == nil {
		r.blockTopic, err = ps.Join(r.blockTopicName)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("relay: join topics: %w", err)
	}
	return r, nil
}

// Start registers the validators, subscribes to both topics, serves the
// request protocol and starts the relay's goroutines. They stop when ctx
// ends or Close is called.
func (r *Relay) Start(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("relay: already started")
	}
	stop := context.AfterFunc(ctx, r.cancel)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-r.ctx.Done()
		stop()
	}()

	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.fetch.run(r.ctx) }()
	go func() { defer r.wg.Done(); r.batch.run(r.ctx) }()

	err := r.ps.RegisterTopicValidator(r.txTopicName, r.validateTx,
		pubsub.WithValidatorConcurrency(TxValidateConcurrency),
		pubsub.WithValidatorTimeout(r.cfg.txValidateTimeout()))
	if err == nil {
		err = r.ps.RegisterTopicValidator(r.blockTopicName, r.validateBlock,
			pubsub.WithValidatorConcurrency(BlockValidateConcurrency),
			pubsub.WithValidatorTimeout(r.cfg.blockValidateTimeout()))
	}
	if err == nil {
		r.txSub, err = r.txTopic.Subscribe()
	}
	if err == nil {
		r.blockSub, err = r.blockTopic.Subscribe()
	}
	if err != nil {
		r.cancel()
		return fmt.Errorf("relay: start: %w", err)
	}
	for _, sub := range []*pubsub.Subscription{r.txSub, r.blockSub} {
		r.wg.Add(1)
		go r.drain(sub)
	}
	r.host.SetStreamHandler(r.proto, r.handleStream)

	r.notifs = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if r.newPeer == nil {
			return
		}
		select {
		case r.peerCh <- c.RemotePeer():
		default:
			r.log.Debugw("new-peer queue full", "peer", c.RemotePeer())
		}
	}}
	r.host.Network().Notify(r.notifs)
	if r.sync != nil {
		if err := r.sync.Start(r.ctx); err != nil {
			r.cancel()
			return fmt.Errorf("relay: start sync: %w", err)
		}
		r.syncNotifs = r.syncNotifee()
		r.host.Network().Notify(r.syncNotifs)
		// Peers connected before Start.
		for _, p := range r.host.Network().Peers() {
			r.sync.AddPeer(p)
		}
	}
	if r.newPeer != nil {
		r.wg.Add(1)
		go r.runNewPeers()
	}
	r.log.Debugw("relay started", "peer", r.host.ID(), "chain", r.cfg.ChainID, "mode", r.cfg.BlockMode)
	return nil
}

// drain consumes a subscription: validators did the work already; the
// delivered messages only need to leave the queue.
func (r *Relay) drain(sub *pubsub.Subscription) {
	defer r.wg.Done()
	for {
		if _, err := sub.Next(r.ctx); err != nil {
			return
		}
	}
}

func (r *Relay) runNewPeers() {
	defer r.wg.Done()
	seen := make(map[peer.ID]struct{})
	for {
		select {
		case <-r.ctx.Done():
			return
		case p := <-r.peerCh:
			// One call per peer while it stays connected.
			if _, dup := seen[p]; dup && r.host.Network().Connectedness(p) == network.Connected {
				continue
			}
			if len(seen) >= NewPeerQueue*16 {
				clear(seen)
			}
			seen[p] = struct{}{}
			r.newPeer(p)
		}
	}
}

// Close stops the relay: it cancels every fetch and validation, stops
// serving, leaves the topics and shuts GossipSub down. It waits for the
// relay's own goroutines.
func (r *Relay) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	r.host.RemoveStreamHandler(r.proto)
	if r.notifs != nil {
		r.host.Network().StopNotify(r.notifs)
	}
	if r.syncNotifs != nil {
		r.host.Network().StopNotify(r.syncNotifs)
	}
	if r.started.Load() {
		_ = r.ps.UnregisterTopicValidator(r.txTopicName)
		_ = r.ps.UnregisterTopicValidator(r.blockTopicName)
	}
	for _, s := range []*pubsub.Subscription{r.txSub, r.blockSub} {
		if s != nil {
			s.Cancel()
		}
	}
	r.cancel()
	if r.sync != nil {
		_ = r.sync.Close()
	}
	r.wg.Wait()
	r.fetch.wg.Wait()
	return nil
}

// PubSub returns the GossipSub instance (e.g. for peer scores or topics of
// other subsystems).
func (r *Relay) PubSub() *pubsub.PubSub { return r.ps }

// Config returns the relay's configuration.
func (r *Relay) Config() Config { return r.cfg }

// MeshPeers returns this node's GossipSub mesh peers for the tx and block
// topics, as seen by the tracer.
func (r *Relay) MeshPeers() (tx, block []peer.ID) {
	return r.tracer.meshPeers(r.txTopicName), r.tracer.meshPeers(r.blockTopicName)
}

// TopicPeers returns the peers known to be subscribed to the tx and block
// topics.
func (r *Relay) TopicPeers() (tx, block []peer.ID) {
	return r.txTopic.ListPeers(), r.blockTopic.ListPeers()
}

// FirstSeen returns when the tx (accepted into the pool) or block (stored)
// with id was first seen here. Only the newest Config.FirstSeenCap entries
// are kept.
func (r *Relay) FirstSeen(id ID) (time.Time, bool) { return r.seen.get(id) }

// Stats returns a snapshot of the relay's counters.
func (r *Relay) Stats() Stats {
	s := r.stats.snapshot()
	return s
}

// SubmitTx adds a transaction from a local client (RPC) to the pool and, if
// the pool accepted it, records its first-seen time and queues its id for
// the next announcement (sent within Config.TxBatchWindow). Before Start the
// tx is pooled but not announced. It blocks only while MaxPendingBatch ids
// wait for the batcher.
func (r *Relay) SubmitTx(body []byte) (ID, Verdict, error) {
	if r.closed.Load() {
		return ID{}, Ignored, ErrClosed
	}
	id, v, err := r.pool.AddTx(body)
	if v != Accepted {
		return id, v, err
	}
	r.seen.record(id, r.now())
	if r.started.Load() {
		r.batch.add(r.ctx, id)
	}
	return id, v, err
}

// now is the relay's clock.
func (r *Relay) now() time.Time { return r.clock() }

// penalize reports an offense to the hook and the metrics.
func (r *Relay) penalize(p peer.ID, o Offense) {
	if p == "" || p == r.host.ID() {
		return
	}
	r.log.Debugw("offense", "peer", p, "offense", o)
	r.metrics.offense(o)
	if r.penalty != nil {
		r.penalty(p, o)
	}
}

// noteBytes counts request-protocol bytes.
func (r *Relay) noteBytes(in bool, proto, class string, n int) {
	if n <= 0 {
		return
	}
	var c *byteCounter
	if class == classBody {
		c = &r.stats.reqBody
	} else {
		c = &r.stats.reqRequest
	}
	dir := "out"
	if in {
		c.in.Add(uint64(n))
		dir = "in"
	} else {
		c.out.Add(uint64(n))
	}
	r.metrics.addBytes(dir, proto, class, n)
}

// noteGossipTotal counts all gossip bytes (RPC sizes).
func (r *Relay) noteGossipTotal(in bool, n int) {
	if in {
		r.stats.gossipTotal.in.Add(uint64(n))
	} else {
		r.stats.gossipTotal.out.Add(uint64(n))
	}
}

// noteGossipClass counts the payload bytes of our topics' gossip messages.
func (r *Relay) noteGossipClass(in bool, class string, n int) {
	c := &r.stats.gossipAnnounce
	if class == classBody {
		c = &r.stats.gossipBody
	}
	dir := "out"
	if in {
		c.in.Add(uint64(n))
		dir = "in"
	} else {
		c.out.Add(uint64(n))
	}
	r.metrics.addBytes(dir, protoGossip, class, n)
}

// noteBody counts a received body.
func (r *Relay) noteBody(kind string, dup bool) {
	if dup {
		r.stats.dupBodies.Add(1)
	} else {
		r.stats.bodies.Add(1)
	}
	r.metrics.body(kind, dup)
}

// Addrs is a convenience for tests and tools: the host's addresses with its
// peer id.
func (r *Relay) Addrs() []ma.Multiaddr {
	pi := peer.AddrInfo{ID: r.host.ID(), Addrs: r.host.Addrs()}
	out, _ := peer.AddrInfoToP2pAddrs(&pi)
	return out
}
