package syncer

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

// ErrMalformed marks (wrapped) an answer that did not decode; the driver
// wraps parse errors with it so the core penalizes the peer.
var ErrMalformed = errors.New("syncer: malformed answer")

// CoreConfig holds the core's tunables. Zero fields take the package
// defaults (the named constants).
type CoreConfig struct {
	// StallTimeout is a peer's first answer deadline (default
	// StallTimeout, 2 s).
	StallTimeout time.Duration
	// MaxStallTimeout caps its doubling (default MaxStallTimeout, 64 s).
	MaxStallTimeout time.Duration
	// TipPollInterval is how often every peer's tip is asked again
	// (default TipPollInterval, 30 s).
	TipPollInterval time.Duration
	// NoPoolSync turns mempool sync off.
	NoPoolSync bool
}

func (c CoreConfig) withDefaults() CoreConfig {
	if c.StallTimeout <= 0 {
		c.StallTimeout = StallTimeout
	}
	if c.MaxStallTimeout <= 0 {
		c.MaxStallTimeout = MaxStallTimeout
	}
	if c.MaxStallTimeout < c.StallTimeout {
		c.MaxStallTimeout = c.StallTimeout
	}
	if c.TipPollInterval <= 0 {
		c.TipPollInterval = TipPollInterval
	}
	return c
}

// Core is the sync state machine: headers-first block download and mempool
// sync, with no goroutines, no I/O and no clock of its own. Its owner feeds
// it events (peers, answers, the time) and carries out the Actions it asks
// for, reporting each answer back with the Req it carried. A Core is not
// safe for concurrent use; one goroutine owns it (the Syncer's loop).
//
// Block download follows Bitcoin Core's headers-first scheme:
//
//   - Every peer's tip (height, id) is learned on connect and polled every
//     TipPollInterval. When a peer's tip is above the end of our chain (or
//     of the headers we hold), the best such peer becomes the sync peer and
//     is asked for headers after a locator (dense for the newest 10 blocks,
//     then exponentially sparser, down to genesis). Headers must link
//     (parent id, height + 1) to each other and to a block our locator
//     named; the chain validates everything else at connect time.
//   - Bodies of the headers are requested by height range (BlocksPerRequest
//     per request, MaxBlocksInFlightPerPeer per peer) from every peer known
//     to share the header chain up to that height (the header source, or a
//     peer whose tip is one of the headers), never past DownloadWindow
//     beyond the next block to connect or MaxBufferedBlockBytes of waiting
//     bodies. A body must hash to the header at its height.
//   - Bodies are connected strictly in chain order, one ConnectBlock at a
//     time. An Invalid verdict penalizes the body's sender, who is no
//     longer used; the body is fetched again from another peer, and a
//     second invalid body for the same header (or one from the header's own
//     source) condemns the header source and drops the headers from that
//     height on.
//   - A request unanswered within the peer's timeout is a stall: its work
//     returns to the queue, the peer's timeout doubles (to
//     MaxStallTimeout), and while any peer without stalls can take the work
//     a stalled peer gets none. An answer to a data request (not a tip)
//     resets the peer's timeout. A refused or unusable answer gives the
//     peer no new work for FailBackoff.
//
// Mempool sync starts once no peer's tip is ahead of ours: each peer is
// asked once per connection for up to MaxPoolIDsPerResponse pool ids; ids
// the pool lacks are fetched MaxTxsPerRequest at a time from a peer that
// listed them, falling back to another that did (up to MaxTxSources) when
// one fails.
type Core struct {
	cfg   CoreConfig
	chain ChainView
	pool  PoolView
	now   time.Time

	peers    map[transport.PeerID]*peerState
	peerList []*peerState // insertion order, for deterministic choices

	nextReq uint64
	reqs    map[uint64]*request
	tipReqs int // tip requests in flight

	// Header chain: hdrs[i] is at height base+1+i; hdrs[0] is the next
	// block to connect. byID maps each held header to its height.
	hdrs       []hdr
	base       uint64
	byID       map[wire.ID]uint64
	gen        uint64 // bumped when block requests are cancelled wholesale
	headersReq uint64 // request id of the headers request in flight (0: none)

	bodies      map[uint64]*received // by height
	bufBytes    int
	assigned    map[uint64]uint64 // height -> block request id
	connecting  bool              // a ConnectBlock awaits its BlockResult
	ignored     int               // consecutive Ignored verdicts for hdrs[0]
	headInvalid int               // invalid bodies received for hdrs[0]
	pauseUntil  time.Time         // no connecting before this
	nextPoll    time.Time
	wasBehind   bool
	hint        *wire.ID // next locator starts here (see HeadersResult)

	wanted   map[wire.ID]*want
	poolReqs int // pool-id requests in flight
	txReqs   int // tx requests in flight

	retry         []*AddTx // ignored by the pool; offered again later
	retryBytes    int
	retryLeft     int  // AddTx retries emitted and not yet answered
	retryProgress bool // a retry of the current pass was accepted

	out   []Action
	stats Stats
}

type hdr struct {
	HeaderInfo
	from transport.PeerID // the peer whose headers message carried it
}

type received struct {
	Block
	from transport.PeerID
}

type want struct {
	sources  []transport.PeerID // peers that listed the id, first is next to ask
	inflight uint64             // request id fetching it (0: none)
}

type reqKind uint8

const (
	reqTip reqKind = iota + 1
	reqHeaders
	reqBlocks
	reqPoolIDs
	reqTxs
)

type request struct {
	id       uint64
	kind     reqKind
	peer     *peerState
	timeout  time.Duration // the peer's timeout when sent
	epoch    uint64        // the peer's stall epoch when sent
	deadline time.Time
	gen      uint64
	start    uint64    // blocks
	count    int       // blocks
	max      int       // headers, pool ids
	ids      []wire.ID // txs
	released bool      // its work went back to the queues
}

type peerState struct {
	id       transport.PeerID
	tip      Tip
	tipKnown bool
	// agree is the highest height of the header chain at which the peer's
	// best chain is known to hold our header (0: none known).
	agree          uint64
	timeout        time.Duration
	stalls         int
	coolUntil      time.Time // no new work before (after a failed request)
	epoch          uint64    // bumped on each stall
	bad            bool      // served an invalid chain: no longer a sync source
	tipReq         uint64
	blocksInFlight int
	txReqs         int
	reqs           map[uint64]struct{}
	poolAsked      bool
	poolTries      int
	txQueue        []wire.ID
}

// maxPoolTries bounds the pool-id requests to one peer per connection that
// fail without an answer (a peer that does not serve them).
const maxPoolTries = 3

// maxIgnoredConnects is how many times the next block is retried, each
// after RetryBackoff, when the chain ignores it (clock skew, I/O) before
// its headers are dropped.
const maxIgnoredConnects = 3

// NewCore returns a core reading our chain and pool through the views.
// now starts the tip-poll clock.
func NewCore(cfg CoreConfig, c ChainView, p PoolView, now time.Time) *Core {
	cfg = cfg.withDefaults()
	return &Core{
		cfg:      cfg,
		chain:    c,
		pool:     p,
		now:      now,
		peers:    make(map[transport.PeerID]*peerState),
		reqs:     make(map[uint64]*request),
		byID:     make(map[wire.ID]uint64),
		bodies:   make(map[uint64]*received),
		assigned: make(map[uint64]uint64),
		wanted:   make(map[wire.ID]*want),
		nextPoll: now.Add(cfg.TipPollInterval),
	}
}

// Actions returns and clears what the core asks the driver to do, in order.
func (c *Core) Actions() []Action {
	out := c.out
	c.out = nil
	return out
}

func (c *Core) emit(a Action) { c.out = append(c.out, a) }

// reject penalizes a peer for an unusable answer and gives it no new work
// for FailBackoff, so a peer sending garbage cannot keep us busy at the
// speed of its answers.
func (c *Core) reject(ps *peerState, o Offense, format string, args ...any) {
	c.penalize(ps.id, o, format, args...)
	ps.coolUntil = c.now.Add(FailBackoff)
}

func (c *Core) penalize(p transport.PeerID, o Offense, format string, args ...any) {
	c.stats.Offenses++
	c.emit(&Penalize{Peer: p, Offense: o, Detail: fmt.Sprintf(format, args...)})
}

// NextDeadline returns the earliest time at which Tick has work: a request
// deadline, the next tip poll or the end of a connect pause.
func (c *Core) NextDeadline() time.Time {
	next := c.nextPoll
	for _, r := range c.reqs {
		if r.deadline.Before(next) {
			next = r.deadline
		}
	}
	if c.pauseUntil.After(c.now) && c.pauseUntil.Before(next) {
		next = c.pauseUntil
	}
	for _, ps := range c.peerList {
		if ps.coolUntil.After(c.now) && ps.coolUntil.Before(next) {
			next = ps.coolUntil
		}
	}
	return next
}

// Tick advances the core's clock: overdue requests become stalls, tips are
// polled when due, and a connect pause may end.
func (c *Core) Tick(now time.Time) {
	c.setNow(now)
	var due []*request
	for _, r := range c.reqs {
		if !r.deadline.After(now) {
			due = append(due, r)
		}
	}
	slices.SortFunc(due, func(a, b *request) int { return int(a.id - b.id) })
	for _, r := range due {
		c.take(r.id)
		c.failed(r, ErrTimeout)
	}
	if !now.Before(c.nextPoll) {
		c.pollTips()
	}
	c.advance()
	c.schedule()
}

func (c *Core) setNow(now time.Time) {
	if now.After(c.now) {
		c.now = now
	}
}

// AddPeer starts tracking a newly connected peer and asks for its tip. A
// peer already tracked is left as it is; past MaxPeers it is not tracked.
func (c *Core) AddPeer(p transport.PeerID, now time.Time) {
	c.setNow(now)
	if _, ok := c.peers[p]; ok || len(c.peers) >= MaxPeers {
		return
	}
	ps := &peerState{id: p, timeout: c.cfg.StallTimeout, reqs: make(map[uint64]struct{})}
	c.peers[p] = ps
	c.peerList = append(c.peerList, ps)
	c.requestTip(ps)
	c.schedule()
}

// RemovePeer forgets a disconnected peer; its outstanding work goes to
// other peers.
func (c *Core) RemovePeer(p transport.PeerID, now time.Time) {
	c.setNow(now)
	ps, ok := c.peers[p]
	if !ok {
		return
	}
	ids := make([]uint64, 0, len(ps.reqs))
	for id := range ps.reqs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if r := c.take(id); r != nil {
			c.release(r)
		}
	}
	// Txs it listed and we did not fetch yet go to their other sources.
	for _, id := range ps.txQueue {
		if w := c.wanted[id]; w != nil && w.inflight == 0 {
			c.reroute(id, w, p)
		}
	}
	ps.txQueue = nil
	delete(c.peers, p)
	c.peerList = slices.DeleteFunc(c.peerList, func(q *peerState) bool { return q == ps })
	c.schedule()
}

// NoteTip records a tip the peer is known to hold (e.g. it announced a
// block), without asking it. Lower tips than the one known are ignored.
func (c *Core) NoteTip(p transport.PeerID, tip Tip, now time.Time) {
	c.setNow(now)
	ps, ok := c.peers[p]
	if !ok || (ps.tipKnown && tip.Height <= ps.tip.Height) {
		return
	}
	ps.tip, ps.tipKnown = tip, true
	c.refreshAgree(ps)
	c.schedule()
}

// TipResult reports the answer to a GetTip.
func (c *Core) TipResult(req uint64, tip Tip, err error, now time.Time) {
	c.setNow(now)
	r := c.take(req)
	if r == nil {
		return
	}
	if err != nil {
		c.failed(r, err)
		c.schedule()
		return
	}
	ps := r.peer
	ps.tip, ps.tipKnown = tip, true
	c.refreshAgree(ps)
	c.schedule()
}

// HeadersResult reports the answer to a GetHeaders: the headers in the
// order received, or err (wrapping ErrMalformed when one did not decode).
func (c *Core) HeadersResult(req uint64, hs []HeaderInfo, err error, now time.Time) {
	c.setNow(now)
	r := c.take(req)
	if r == nil {
		return
	}
	defer c.schedule()
	ps := r.peer
	if err != nil {
		c.failed(r, err)
		return
	}
	if len(hs) > r.max {
		c.reject(ps, OffenseUnrequested, "%d headers for max %d", len(hs), r.max)
		return
	}
	c.success(ps)
	c.stats.HeadersReceived += uint64(len(hs))
	for i := 1; i < len(hs); i++ {
		if hs[i].Parent != hs[i-1].ID || hs[i].Height != hs[i-1].Height+1 {
			c.reject(ps, OffenseBadHeaders, "header %d does not link to header %d", i, i-1)
			return
		}
	}
	full := len(hs) == r.max
	end := c.headerEnd()
	var lastSent wire.ID
	if len(hs) > 0 {
		lastSent = hs[len(hs)-1].ID
	}
	// Drop the prefix we hold already: on our best chain (the store moved
	// on since the locator was built) or in the header chain.
	for len(hs) > 0 {
		h := hs[0]
		if id, ok := c.chain.BlockIDAt(h.Height); ok && id == h.ID {
			hs = hs[1:]
			continue
		}
		if at, ok := c.byID[h.ID]; ok && at == h.Height {
			hs = hs[1:]
			continue
		}
		break
	}
	if len(hs) == 0 {
		if full {
			// A full message of headers we hold: the peer forks off
			// further up than our sparse locator could say. Continue
			// from the last one.
			c.hint = &lastSent
		} else {
			// Nothing after our locator: the peer is not ahead of us.
			c.lowerTip(ps, end)
		}
		return
	}
	first := hs[0]
	if first.Height == 0 {
		c.reject(ps, OffenseBadHeaders, "header at height 0")
		return
	}
	switch at, ok := c.byID[first.Parent]; {
	case ok && at == first.Height-1:
		// Extends the header chain, maybe replacing a branch of it.
		if at < c.base+uint64(len(c.hdrs)) {
			c.resetFrom(at + 1)
		}
	case ok:
		c.reject(ps, OffenseBadHeaders, "header height %d after parent at %d", first.Height, at)
		return
	default:
		id, onBest := c.chain.BlockIDAt(first.Height - 1)
		switch {
		case onBest && id == first.Parent:
			// Forks off (or continues) our best chain: a new header chain.
			if len(c.hdrs) > 0 {
				c.resetFrom(min(c.base+1, first.Height))
			}
			c.hdrs = c.hdrs[:0]
			c.base = first.Height - 1
		case c.chain.HasBlock(first.Parent):
			// A block we hold off the best chain (our chain moved since the
			// locator): not the peer's fault; ask again a little later.
			ps.coolUntil = c.now.Add(FailBackoff)
			return
		default:
			c.reject(ps, OffenseBadHeaders, "headers do not connect to the locator (parent %s)", first.Parent.Short())
			return
		}
	}
	for _, h := range hs {
		if len(c.hdrs) >= MaxHeadersAhead {
			break
		}
		c.hdrs = append(c.hdrs, hdr{HeaderInfo: h, from: ps.id})
		c.byID[h.ID] = h.Height
	}
	last := c.hdrs[len(c.hdrs)-1]
	ps.agree = max(ps.agree, last.Height)
	if !full || !ps.tipKnown || last.Height > ps.tip.Height {
		// The peer's best chain ends at (or at least reaches) last.
		ps.tip, ps.tipKnown = Tip{Height: last.Height, ID: last.ID}, true
	}
	for _, q := range c.peerList {
		if q != ps {
			c.refreshAgree(q)
		}
	}
	c.advance()
}

// BlocksResult reports the answer to a GetBlocks: the blocks in the order
// received, with their header fields, or err.
func (c *Core) BlocksResult(req uint64, blocks []Block, err error, now time.Time) {
	c.setNow(now)
	r := c.take(req)
	if r == nil {
		return
	}
	defer c.schedule()
	ps := r.peer
	c.release(r)
	if err != nil {
		c.failed(r, err)
		return
	}
	if len(blocks) > r.count {
		c.reject(ps, OffenseUnrequested, "%d blocks for count %d", len(blocks), r.count)
		return
	}
	c.success(ps)
	if r.gen != c.gen {
		return // the header chain was replaced meanwhile
	}
	c.stats.BlocksReceived += uint64(len(blocks))
	if len(blocks) == 0 && ps.agree >= r.start {
		// The peer no longer has what its tip promised (a reorg): use
		// others for these heights until its next tip.
		ps.agree = r.start - 1
	}
	for i, b := range blocks {
		h := r.start + uint64(i)
		if h <= c.base {
			continue // connected meanwhile (gossip)
		}
		idx := h - c.base - 1
		if idx >= uint64(len(c.hdrs)) {
			break
		}
		if b.Info.ID != c.hdrs[idx].ID || b.Info.Height != h {
			if ps.agree >= h {
				c.reject(ps, OffenseMismatch, "block at height %d is %s, header says %s", h, b.Info.ID.Short(), c.hdrs[idx].ID.Short())
			}
			ps.agree = h - 1
			break
		}
		ps.agree = max(ps.agree, h)
		if _, dup := c.bodies[h]; dup {
			continue
		}
		c.bodies[h] = &received{Block: b, from: ps.id}
		c.bufBytes += len(b.Body)
	}
	c.advance()
}

// BlockResult reports the chain's verdict on the ConnectBlock for id.
func (c *Core) BlockResult(id wire.ID, v Verdict, err error, now time.Time) {
	c.setNow(now)
	if !c.connecting || len(c.hdrs) == 0 || c.hdrs[0].ID != id {
		return
	}
	c.connecting = false
	defer c.schedule()
	h := c.hdrs[0]
	b := c.bodies[h.Height]
	switch v {
	case Accepted, Known:
		c.ignored = 0
		c.headInvalid = 0
		c.stats.BlocksConnected++
		c.popFront()
	case Invalid:
		// The sender of the body is to blame. The header may still be
		// good (a body mutated in transit or by the sender hashes to the
		// same header id with another tx root), so the body is fetched
		// again from someone else; a second invalid body for the same
		// header, or one sent by the header's own source, condemns the
		// header and everything after it.
		c.stats.InvalidBlocks++
		from := h.from
		if b != nil {
			from = b.from
			c.bufBytes -= len(b.Body)
			delete(c.bodies, h.Height)
		}
		c.penalize(from, OffenseInvalidBlock, "block %d %s: %v", h.Height, id.Short(), err)
		c.markBad(from)
		c.headInvalid++
		if from == h.from || c.headInvalid >= 2 {
			if from != h.from {
				c.penalize(h.from, OffenseInvalidBlock, "headers led to invalid block %d %s", h.Height, id.Short())
				c.markBad(h.from)
			}
			c.resetFrom(h.Height)
		}
	case Orphan:
		// Our chain lost the parent (a reorg raced the download): start over
		// from a fresh locator.
		c.resetFrom(c.base + 1)
	default: // Ignored
		c.ignored++
		if c.ignored >= maxIgnoredConnects {
			c.ignored = 0
			if ps := c.peers[h.from]; ps != nil {
				c.lowerTip(ps, Tip{Height: h.Height - 1, ID: h.Parent})
			}
			c.resetFrom(h.Height)
		} else {
			c.pauseUntil = c.now.Add(RetryBackoff)
		}
	}
	c.advance()
}
