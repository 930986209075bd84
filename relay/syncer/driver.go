package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	golog "github.com/ipfs/go-log/v2"
	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

var log = golog.Logger("rumor/syncer")

// Config configures a Syncer. Zero fields take the package defaults.
type Config struct {
	// StallTimeout is a peer's first answer deadline; it doubles on each
	// stall up to MaxStallTimeout and resets on the next answer. Zero means
	// StallTimeout (2 s).
	StallTimeout time.Duration
	// MaxStallTimeout caps the doubling. Zero means MaxStallTimeout (64 s).
	MaxStallTimeout time.Duration
	// TipPollInterval is how often every peer's tip is asked again. Zero
	// means TipPollInterval (30 s).
	TipPollInterval time.Duration
	// NoPoolSync turns off pulling peers' pool ids on connect.
	NoPoolSync bool
}

// DefaultConfig returns the defaults: Bitcoin Core's stall timeouts, a 30 s
// tip poll, mempool sync on.
func DefaultConfig() Config {
	return Config{StallTimeout: StallTimeout, MaxStallTimeout: MaxStallTimeout, TipPollInterval: TipPollInterval}
}

// Validate rejects negative durations and a cap below the first timeout.
func (c Config) Validate() error {
	if c.StallTimeout < 0 || c.MaxStallTimeout < 0 || c.TipPollInterval < 0 {
		return errors.New("syncer: negative duration in config")
	}
	if c.StallTimeout > 0 && c.MaxStallTimeout > 0 && c.MaxStallTimeout < c.StallTimeout {
		return fmt.Errorf("syncer: MaxStallTimeout %v below StallTimeout %v", c.MaxStallTimeout, c.StallTimeout)
	}
	return nil
}

// Option sets an optional hook of New.
type Option func(*Syncer)

// WithPenaltyHook installs the hook that receives every offense.
func WithPenaltyHook(h PenaltyHook) Option { return func(s *Syncer) { s.penalty = h } }

// WithLogger replaces the "rumor/syncer" logger.
func WithLogger(l *golog.ZapEventLogger) Option { return func(s *Syncer) { s.log = l } }

// Syncer runs a Core on one goroutine against a Network, a Chain and a
// Pool. Peers are handed to it with AddPeer and RemovePeer (safe from any
// goroutine, never blocking); it does the rest.
type Syncer struct {
	net     Network
	chain   Chain
	pool    Pool
	cfg     Config
	penalty PenaltyHook
	log     *golog.ZapEventLogger

	mu      sync.Mutex
	pending map[transport.PeerID]*peerEvent // peer events not yet seen by the loop
	order   []transport.PeerID              // pending's keys in arrival order
	wake    chan struct{}                   // capacity 1: pending changed

	results chan func(*Core, time.Time) // answers, applied on the loop
	stats   atomic.Pointer[Stats]
	changed chan struct{} // closed and replaced on each loop turn (guarded by mu)

	started atomic.Bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the loop and the request goroutines
}

type peerEvent struct {
	remove, add bool
	tip         *Tip
}

// resultQueue bounds the answers waiting for the loop. Request goroutines
// block (or give up when the syncer stops) beyond it; their number is
// bounded by the core's in-flight caps.
const resultQueue = 64

// New returns a Syncer; nothing runs until Start.
func New(n Network, c Chain, p Pool, cfg Config, opts ...Option) (*Syncer, error) {
	if n == nil || c == nil || p == nil {
		return nil, errors.New("syncer: nil network, chain or pool")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Syncer{
		net: n, chain: c, pool: p, cfg: cfg,
		log:     log,
		pending: make(map[transport.PeerID]*peerEvent),
		wake:    make(chan struct{}, 1),
		results: make(chan func(*Core, time.Time), resultQueue),
		changed: make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.stats.Store(&Stats{})
	return s, nil
}

// Start runs the loop until ctx ends or Close.
func (s *Syncer) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("syncer: already started")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	core := NewCore(CoreConfig{
		StallTimeout:    s.cfg.StallTimeout,
		MaxStallTimeout: s.cfg.MaxStallTimeout,
		TipPollInterval: s.cfg.TipPollInterval,
		NoPoolSync:      s.cfg.NoPoolSync,
	}, s.chain, s.pool, time.Now())
	s.wg.Add(1)
	go s.loop(ctx, core)
	return nil
}

// Close stops the loop and waits for its request goroutines.
func (s *Syncer) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}

// AddPeer hands over a newly connected peer.
func (s *Syncer) AddPeer(p transport.PeerID) { s.post(p, func(e *peerEvent) { e.add = true }) }

// RemovePeer reports a disconnected peer.
func (s *Syncer) RemovePeer(p transport.PeerID) {
	s.post(p, func(e *peerEvent) { e.remove, e.add, e.tip = true, false, nil })
}

// NoteTip reports a block a peer is known to hold (it announced it), so a
// node that fell behind starts catching up without waiting for a tip poll.
func (s *Syncer) NoteTip(p transport.PeerID, height uint64, id wire.ID) {
	s.post(p, func(e *peerEvent) {
		if e.tip == nil || height > e.tip.Height {
			e.tip = &Tip{Height: height, ID: id}
		}
	})
}

func (s *Syncer) post(p transport.PeerID, f func(*peerEvent)) {
	s.mu.Lock()
	e := s.pending[p]
	if e == nil {
		if len(s.pending) >= MaxPeers {
			s.mu.Unlock()
			return
		}
		e = &peerEvent{}
		s.pending[p] = e
		s.order = append(s.order, p)
	}
	f(e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Stats returns the latest snapshot of the core's state and counters.
func (s *Syncer) Stats() Stats { return *s.stats.Load() }

// Changed returns a channel closed at the syncer loop's next turn (an
// answer applied, a block connected, a tick): tests and callers wait on it
// instead of sleeping.
func (s *Syncer) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Syncer) loop(ctx context.Context, core *Core) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.drain(ctx, core)
		st := core.Stats()
		s.stats.Store(&st)
		s.mu.Lock()
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()

		timer.Reset(max(time.Until(core.NextDeadline()), 0))
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
			s.applyPeerEvents(core)
		case f := <-s.results:
			f(core, time.Now())
		case <-timer.C:
			core.Tick(time.Now())
		}
	}
}

func (s *Syncer) applyPeerEvents(core *Core) {
	s.mu.Lock()
	order, pending := s.order, s.pending
	s.order, s.pending = nil, make(map[transport.PeerID]*peerEvent)
	s.mu.Unlock()
	now := time.Now()
	for _, p := range order {
		e := pending[p]
		if e.remove {
			core.RemovePeer(p, now)
		}
		if e.add {
			core.AddPeer(p, now)
		}
		if e.tip != nil {
			core.NoteTip(p, *e.tip, now)
		}
	}
}

// drain carries out the core's actions until it asks for nothing more.
// Chain and pool work runs here, in order; requests run on goroutines.
func (s *Syncer) drain(ctx context.Context, core *Core) {
	for {
		acts := core.Actions()
		if len(acts) == 0 {
			return
		}
		for _, a := range acts {
			s.do(ctx, core, a)
		}
	}
}

func (s *Syncer) do(ctx context.Context, core *Core, a Action) {
	switch a := a.(type) {
	case *GetTip:
		s.request(ctx, a.Timeout, func(ctx context.Context) func(*Core, time.Time) {
			tip, err := s.net.Tip(ctx, a.Peer)
			return func(c *Core, now time.Time) { c.TipResult(a.Req, tip, err, now) }
		})
	case *GetHeaders:
		s.request(ctx, a.Timeout, func(ctx context.Context) func(*Core, time.Time) {
			raw, err := s.net.Headers(ctx, a.Peer, a.Locator, a.Max)
			var hs []HeaderInfo
			if err == nil && len(raw) <= a.Max {
				hs = make([]HeaderInfo, len(raw))
				for i, b := range raw {
					if hs[i], err = s.chain.ParseHeader(b); err != nil {
						err = fmt.Errorf("%w: header %d: %v", ErrMalformed, i, err)
						hs = nil
						break
					}
				}
			} else if err == nil {
				hs = make([]HeaderInfo, len(raw)) // over max: the core penalizes
			}
			return func(c *Core, now time.Time) { c.HeadersResult(a.Req, hs, err, now) }
		})
	case *GetBlocks:
		s.request(ctx, a.Timeout, func(ctx context.Context) func(*Core, time.Time) {
			raw, err := s.net.Blocks(ctx, a.Peer, a.Start, a.Count)
			var bs []Block
			if err == nil {
				bs = make([]Block, len(raw))
				for i, b := range raw {
					info, perr := s.chain.ParseBlock(b)
					if perr != nil {
						err = fmt.Errorf("%w: block %d: %v", ErrMalformed, i, perr)
						bs = nil
						break
					}
					bs[i] = Block{Info: info, Body: b}
				}
			}
			return func(c *Core, now time.Time) { c.BlocksResult(a.Req, bs, err, now) }
		})
	case *GetPoolIDs:
		s.request(ctx, a.Timeout, func(ctx context.Context) func(*Core, time.Time) {
			ids, err := s.net.PoolIDs(ctx, a.Peer, a.Max)
			return func(c *Core, now time.Time) { c.PoolIDsResult(a.Req, ids, err, now) }
		})
	case *GetTxs:
		s.request(ctx, a.Timeout, func(ctx context.Context) func(*Core, time.Time) {
			bodies, err := s.net.Txs(ctx, a.Peer, a.IDs)
			return func(c *Core, now time.Time) { c.TxsResult(a.Req, bodies, err, now) }
		})
	case *ConnectBlock:
		id, v, err := s.chain.AddBlock(a.Body)
		if id != a.ID && v != Invalid {
			// The body matched the header id when it arrived; a chain that
			// computes another id is a broken adapter, not a peer's fault.
			s.log.Errorw("chain returned another block id", "want", a.ID.Short(), "got", id.Short())
		}
		if v == Invalid || v == Ignored {
			s.log.Debugw("sync block refused", "height", a.Height, "id", a.ID.Short(), "verdict", v, "peer", a.Peer, "err", err)
		}
		core.BlockResult(a.ID, v, err, time.Now())
	case *AddTx:
		_, v, err := s.pool.AddTx(a.Body)
		core.TxResult(a, v, err, time.Now())
	case *Penalize:
		s.log.Debugw("peer offense", "peer", a.Peer, "offense", a.Offense, "detail", a.Detail)
		if s.penalty != nil {
			s.penalty(a.Peer, a.Offense)
		}
	}
}

// request runs one network call on its own goroutine under the action's
// timeout and posts its result back to the loop.
func (s *Syncer) request(ctx context.Context, timeout time.Duration, call func(context.Context) func(*Core, time.Time)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		rctx, cancel := context.WithTimeout(ctx, timeout)
		res := call(rctx)
		cancel()
		select {
		case s.results <- res:
		case <-ctx.Done():
		}
	}()
}
