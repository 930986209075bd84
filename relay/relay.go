package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	golog "github.com/ipfs/go-log/v2"
	"golang.org/x/time/rate"

	"github.com/rumor-relay/rumor/relay/syncer"
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

var log = golog.Logger("rumor/relay")

// Relay announces transactions and blocks over the transport's gossip
// topics and fetches the bodies it lacks over its request protocol. See the
// package documentation for the design and doc.go's concurrency contract.
type Relay struct {
	cfg     Config
	tr      transport.Transport
	self    PeerID
	chain   Chain
	pool    TxPool
	proto   string
	metrics *Metrics
	penalty PenaltyHook
	budget  ServeBudget
	held    TxHeldHook
	log     *golog.ZapEventLogger

	txTopicName, blockTopicName string
	txTopic, blockTopic         transport.Topic

	ctx    context.Context // lives from New to Close
	cancel context.CancelFunc

	fetch *fetcher
	batch *batcher
	seen  *firstSeen
	// txSlots and blockSlots are each peer's share of the topics'
	// validation throttles; limiter bounds the requests served at once.
	txSlots, blockSlots *peerSlots
	limiter             *peerSlots
	// serveBytes bounds the response bytes held at once; upload is the
	// node's byte bucket over all peers (see handleRequest).
	serveBytes *peerSlots
	upload     *rate.Limiter
	flight     blockFlight
	imports    importSlots // blocks brought in behind an early forward (MaxBlockImports)
	// txImports bounds the tx fetches running behind early-forwarded
	// announcements, per peer and in all (the tx validation shares);
	// txFlight names their ids; offenders keeps peers that offended
	// recently on the fetch-first path (txcut.go).
	txImports *peerSlots
	// messenger is the transport's one-way message side (nil when it has
	// none); links the link-mode tx inventory and linkFetches its fetches
	// under way per announcer (txlink.go).
	messenger   transport.Messenger
	linkProto   string
	links       txLinks
	linkFetches *peerSlots
	txFlight    txFlight
	offenders   offenders
	rtt         rttSamples // recent tip and tx request round trips (tx cut-through gate)
	arrivals    txArrivals // txs the pool accepted lately, for block jobs' missing txs
	rejects     recentRejects
	// Reconciliation state per peer (reconcile.go), bounded by
	// MaxReconcilePeers and pruned to the connected peers each round.
	reconMu   sync.Mutex
	reconDiff map[PeerID]int
	reconLast map[PeerID]time.Time
	// reconGuess is the difference the latest session found (any peer):
	// the first guess with a peer this node has no difference for.
	reconGuess int
	symbols    symbolGate
	stats      counters

	sync *syncer.Syncer // catch-up and mempool sync; nil when cfg.NoSync

	started atomic.Bool
	closed  atomic.Bool
	closeMu sync.Mutex
	wg      sync.WaitGroup
}

// Option sets an optional hook or dependency of New.
type Option func(*options)

type options struct {
	metrics *Metrics
	penalty PenaltyHook
	log     *golog.ZapEventLogger
	budget  ServeBudget
	held    TxHeldHook
}

// TxHeldHook learns that a peer holds tx ids: it announced them to this
// node (first copies and duplicates alike; with cut-through a peer
// announces what it is still fetching, so this says "holds or is about
// to"), fetched their bodies from it
// (the peer that announced them first is the one asked), or a
// reconciliation session with it found them in its pool (every id of the
// session's set it did not lack: up to MaxReconcileSet at once). It runs on
// the transport's goroutines, so it must be fast and must not block; ids
// must not be kept (copy them).
type TxHeldHook func(from PeerID, ids []ID)

// WithTxHeldHook installs h (for instance, to confirm that peers hold the
// txs this node's clients submitted).
func WithTxHeldHook(h TxHeldHook) Option {
	return func(o *options) { o.held = h }
}

// noteTxHeld hands ids a peer announced, or fetched from us, to the
// hook.
func (r *Relay) noteTxHeld(from PeerID, ids []ID) {
	if r.held != nil && from != "" && from != r.self && len(ids) > 0 {
		r.held(from, ids)
	}
}

// ServeBudget meters the work a peer may make this node do: one request
// token per request and byte tokens per response. Both methods must be safe
// for concurrent use and fast.
type ServeBudget interface {
	AllowRequest(p PeerID, now time.Time) bool
	AllowBytes(p PeerID, n int, now time.Time) bool
}

// WithServeBudget makes the request server refuse (busy, and a request-flood
// offense) requests beyond p's budget, and answer busy instead of responses
// beyond its byte budget.
func WithServeBudget(b ServeBudget) Option {
	return func(o *options) { o.budget = b }
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

// WithLogger replaces the relay's logger (default: the "rumor/relay"
// subsystem logger), e.g. to tell apart the nodes of an in-process testnet.
func WithLogger(l *golog.ZapEventLogger) Option {
	return func(o *options) { o.log = l }
}

// New builds a relay over transport tr for chain c and pool p. Nothing is
// joined, served or started until Start. The caller owns tr and closes it
// after the relay.
func New(tr transport.Transport, c Chain, p TxPool, cfg Config, opts ...Option) (*Relay, error) {
	if tr == nil || c == nil || p == nil {
		return nil, errors.New("relay: nil transport, chain or pool")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = log
	}
	messenger, _ := tr.(transport.Messenger)
	if cfg.TxMode == TxLink && messenger == nil {
		return nil, errors.New("relay: tx mode link needs a transport that is a transport.Messenger")
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		messenger:      messenger,
		cfg:            cfg,
		tr:             tr,
		self:           tr.Self(),
		chain:          c,
		pool:           p,
		proto:          cfg.RequestProtocol(),
		metrics:        o.metrics,
		penalty:        o.penalty,
		budget:         o.budget,
		held:           o.held,
		log:            o.log,
		txTopicName:    cfg.TxTopic(),
		blockTopicName: cfg.BlockTopic(),
		ctx:            ctx,
		cancel:         cancel,
		seen:           newFirstSeen(cfg.FirstSeenCap),
		txSlots:        newPeerSlots(MaxTxValidationsPerPeer, TxValidateConcurrency),
		blockSlots:     newPeerSlots(MaxBlockValidationsPerPeer, BlockValidateConcurrency),
		limiter:        newPeerSlots(MaxServePerPeer, MaxServeTotal),
		imports:        make(importSlots, MaxBlockImports),
		txImports:      newPeerSlots(MaxTxValidationsPerPeer, TxValidateConcurrency),
		linkFetches:    newPeerSlots(MaxTxValidationsPerPeer, TxValidateConcurrency),
		linkProto:      cfg.TxLinkProtocol(),
		links:          txLinks{t: newLinkTable(MaxLinkIDs, MaxFetchItems, MaxEarlyTxIDs)},
		upload:         cfg.uploadLimiter(),
		reconDiff:      make(map[PeerID]int),
		reconLast:      make(map[PeerID]time.Time),
	}
	maxResponse := max(cfg.maxResponseFrame(), cfg.maxTxsResponseFrame())
	r.serveBytes = newPeerSlots(MaxServeResponsesPerPeer*maxResponse,
		max(MaxServeBytesInFlight, MaxServeResponsesInFlight*maxResponse))
	r.fetch = newFetcher(r)
	var err error
	if r.sync, err = r.newSyncer(); err != nil {
		cancel()
		return nil, fmt.Errorf("relay: syncer: %w", err)
	}
	r.batch = newBatcher(cfg.batchWindow(), cfg.TxBatchMax, r.publishTxBatch)
	return r, nil
}

// Start joins the two topics with their validators, serves the request
// protocol, starts the relay's goroutines and hands the connected peers to
// sync. Everything stops when ctx ends or Close is called.
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
	if !r.cfg.NoReconcile {
		if _, ok := r.pool.(PoolIDSource); ok {
			r.wg.Go(func() { r.reconcileLoop(r.ctx, r.cfg.reconcileInterval()) })
		}
	}

	var err error
	r.txTopic, err = r.tr.Join(r.txTopicName, transport.TopicConfig{
		Validate: r.validateTx, Concurrency: TxValidateConcurrency, Timeout: r.cfg.txValidateTimeout()})
	if err == nil {
		r.blockTopic, err = r.tr.Join(r.blockTopicName, transport.TopicConfig{
			Validate: r.validateBlock, Concurrency: BlockValidateConcurrency, Timeout: r.cfg.blockValidateTimeout()})
	}
	if err != nil {
		r.cancel()
		return fmt.Errorf("relay: start: %w", err)
	}
	r.tr.Observe(observer{r})
	r.tr.Serve(r.proto, r.handleRequest)
	if r.messenger != nil {
		// Whatever this node's own mode: peers in link mode announce to it.
		r.messenger.Receive(r.linkProto, wire.MaxTxSeenBytes, r.onTxSeen)
	}
	if r.sync != nil {
		if err := r.sync.Start(r.ctx); err != nil {
			r.cancel()
			return fmt.Errorf("relay: start sync: %w", err)
		}
		// Peers connected before Start.
		for _, p := range r.tr.Peers() {
			r.sync.AddPeer(p)
		}
	}
	r.log.Debugw("relay started", "peer", r.self, "chain", r.cfg.ChainID, "mode", r.cfg.BlockMode)
	return nil
}

// Close stops the relay: it stops serving, leaves the topics and cancels
// every fetch and validation. It waits for the relay's own goroutines. The
// transport stays open.
func (r *Relay) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	if r.started.Load() {
		r.tr.Serve(r.proto, nil)
		r.tr.Observe(nil)
		if r.messenger != nil {
			r.messenger.Receive(r.linkProto, 0, nil)
		}
	}
	for _, t := range []transport.Topic{r.txTopic, r.blockTopic} {
		if t != nil {
			_ = t.Close()
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

// spawn runs f on a goroutine Close waits for, unless the relay is closing
// (then it reports false and f does not run). Validations call it from the
// transport's goroutines while Close may be in wg.Wait: adding to a
// WaitGroup that Wait watches at zero is a race, so the Add happens under
// closeMu, which Close holds from the moment it marks the relay closed.
func (r *Relay) spawn(f func()) bool {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed.Load() {
		return false
	}
	r.wg.Go(f)
	return true
}

// Config returns the relay's configuration.
func (r *Relay) Config() Config { return r.cfg }

// MeshPeers returns the peers this node forwards tx and block
// announcements to (GossipSub's mesh); nil before Start.
func (r *Relay) MeshPeers() (tx, block []PeerID) {
	if !r.started.Load() || r.txTopic == nil || r.blockTopic == nil {
		return nil, nil
	}
	return r.txTopic.Mesh(), r.blockTopic.Mesh()
}

// TopicPeers returns the peers known to subscribe to the tx and block
// topics; nil before Start.
func (r *Relay) TopicPeers() (tx, block []PeerID) {
	if !r.started.Load() || r.txTopic == nil || r.blockTopic == nil {
		return nil, nil
	}
	return r.txTopic.Peers(), r.blockTopic.Peers()
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
	r.txAccepted(id)
	if r.started.Load() {
		r.batch.add(r.ctx, id)
	}
	return id, v, err
}

// Announce queues the ids of transactions the pool already holds for the
// next announcement: txs that became executable later (a block filled the
// nonce gap of queued txs), txs reloaded from disk, or a wallet's rebroadcast.
// Ids the pool cannot serve (GetTx finds nothing) are skipped; it returns
// how many were queued.
// Each id's first-seen time is recorded now unless one is recorded.
// Like SubmitTx it blocks only while MaxPendingBatch ids wait for the
// batcher, and does nothing before Start.
func (r *Relay) Announce(ids []ID) int {
	if r.closed.Load() || !r.started.Load() {
		return 0
	}
	n := 0
	for _, id := range ids {
		if _, ok := r.pool.GetTx(id); !ok {
			continue // nothing to serve
		}
		// A tx queued until now becomes pending here: that is when it is
		// first seen as relayable (kept if it was recorded before).
		r.seen.record(id, r.now())
		r.batch.add(r.ctx, id)
		n++
	}
	return n
}

// now is the relay's clock: time.Now, which a testing/synctest bubble
// makes virtual.
func (r *Relay) now() time.Time { return time.Now() }

// penalize reports an offense to the hook and the metrics.
func (r *Relay) penalize(p PeerID, o Offense) {
	if p == "" || p == r.self {
		return
	}
	r.log.Debugw("offense", "peer", p, "offense", o)
	r.offenders.note(p, r.now())
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
	switch class {
	case classBody:
		c = &r.stats.reqBody
	case classReconcile:
		c = &r.stats.reqReconcile
	default:
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
