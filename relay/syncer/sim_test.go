package syncer

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/relay/transport"

	"github.com/rumor-relay/rumor/relay/wire"
)

// This file is a deterministic harness for the core: a fake chain and
// pool, scripted peers that answer from their own chains after a latency
// (or never), and an explicit clock. No goroutines, no sleeping.

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// genChain extends base (heights 0..len-1) by n headers; salt makes a fork.
func genChain(base []HeaderInfo, n int, salt string) []HeaderInfo {
	out := slices.Clone(base)
	if len(out) == 0 {
		out = append(out, HeaderInfo{ID: sha256.Sum256([]byte("genesis")), Height: 0})
	}
	for i := 0; i < n; i++ {
		prev := out[len(out)-1]
		var b [40]byte
		copy(b[:32], prev.ID[:])
		binary.BigEndian.PutUint64(b[32:], prev.Height+1)
		id := sha256.Sum256(append(b[:], salt...))
		out = append(out, HeaderInfo{ID: id, Parent: prev.ID, Height: prev.Height + 1})
	}
	return out
}

// fakeChain stores blocks by id; the best chain is the highest (first
// seen wins a tie). invalid ids are refused as Invalid.
type fakeChain struct {
	blocks  map[wire.ID]HeaderInfo
	best    []wire.ID
	invalid map[wire.ID]bool
	adds    int
}

func newFakeChain(genesis []HeaderInfo) *fakeChain {
	c := &fakeChain{blocks: make(map[wire.ID]HeaderInfo), invalid: make(map[wire.ID]bool)}
	for _, h := range genesis {
		c.blocks[h.ID] = h
		c.best = append(c.best, h.ID)
	}
	return c
}

func (c *fakeChain) Tip() (uint64, wire.ID) {
	return uint64(len(c.best) - 1), c.best[len(c.best)-1]
}

func (c *fakeChain) BlockIDAt(h uint64) (wire.ID, bool) {
	if h >= uint64(len(c.best)) {
		return wire.ID{}, false
	}
	return c.best[h], true
}

func (c *fakeChain) HasBlock(id wire.ID) bool { _, ok := c.blocks[id]; return ok }

func (c *fakeChain) add(h HeaderInfo) Verdict {
	c.adds++
	if c.invalid[h.ID] {
		return Invalid
	}
	if _, ok := c.blocks[h.ID]; ok {
		return Known
	}
	p, ok := c.blocks[h.Parent]
	if !ok || p.Height+1 != h.Height {
		return Orphan
	}
	c.blocks[h.ID] = h
	if h.Height >= uint64(len(c.best)) {
		// Reorg onto h's branch.
		best := make([]wire.ID, h.Height+1)
		for cur := h; ; cur = c.blocks[cur.Parent] {
			best[cur.Height] = cur.ID
			if cur.Height == 0 {
				break
			}
		}
		c.best = best
	}
	return Accepted
}

// fakePool holds txs; a tx listed in after is ignored until the tx it
// names is held (a nonce gap).
type fakePool struct {
	txs   map[wire.ID][]byte
	after map[wire.ID]wire.ID
}

func (p *fakePool) HasTx(id wire.ID) bool { _, ok := p.txs[id]; return ok }

func (p *fakePool) TxID(b []byte) (wire.ID, error) { return txID(b), nil }

// simPeer answers from its own chain and pool.
type simPeer struct {
	id      transport.PeerID
	chain   []HeaderInfo
	pool    map[wire.ID][]byte
	latency time.Duration

	stallBlocks int              // the first n block requests get no answer
	refuse      int              // the next n block requests are refused (busy)
	blockTimes  []time.Time      // when each block request was sent
	stallAll    bool             // no answer to anything
	mismatchAt  map[uint64]bool  // serves a different block at these heights
	tamperAt    map[uint64]bool  // serves the right id with a corrupt body
	withhold    map[wire.ID]bool // pool ids listed but not served
	wrongBody   map[wire.ID]bool // serves another body for these ids

	blockReqs, txReqs int
	timeouts          []time.Duration // Timeout of every request sent to it
	blockTimeouts     []time.Duration // Timeout of every block request
}

func (p *simPeer) tip() Tip {
	h := p.chain[len(p.chain)-1]
	return Tip{Height: h.Height, ID: h.ID}
}

var errBusy = errors.New("busy")

func blockBody(id wire.ID) []byte { return append([]byte("block:"), id[:]...) }

func txBody(i int) []byte { return []byte(fmt.Sprintf("tx-%d", i)) }

func txID(b []byte) wire.ID { return sha256.Sum256(b) }

type delivery struct {
	at time.Time
	fn func()
}

type sim struct {
	t     *testing.T
	now   time.Time
	core  *Core
	chain *fakeChain
	pool  *fakePool
	peers map[transport.PeerID]*simPeer
	queue []delivery

	penalties []Penalize
	maxAhead  uint64       // highest height requested beyond the connect point
	hook      func(Action) // sees every action first, if set
}

func newSim(t *testing.T, ours []HeaderInfo, cfg CoreConfig) *sim {
	s := &sim{t: t, now: t0, chain: newFakeChain(ours), pool: &fakePool{txs: make(map[wire.ID][]byte)},
		peers: make(map[transport.PeerID]*simPeer)}
	s.core = NewCore(cfg, s.chain, s.pool, t0)
	return s
}

func (s *sim) addPeer(p *simPeer) {
	if p.latency == 0 {
		p.latency = 50 * time.Millisecond
	}
	s.peers[p.id] = p
	s.core.AddPeer(p.id, s.now)
	s.process()
}

func (s *sim) after(p *simPeer, fn func()) {
	s.queue = append(s.queue, delivery{at: s.now.Add(p.latency), fn: fn})
}

// process carries out the core's actions until it asks for nothing more.
func (s *sim) process() {
	for {
		acts := s.core.Actions()
		if len(acts) == 0 {
			return
		}
		for _, a := range acts {
			s.do(a)
		}
	}
}

func (s *sim) do(a Action) {
	if s.hook != nil {
		s.hook(a)
	}
	switch a := a.(type) {
	case *GetTip:
		p := s.peers[a.Peer]
		p.timeouts = append(p.timeouts, a.Timeout)
		if p.stallAll {
			return
		}
		tip := p.tip()
		s.after(p, func() { s.core.TipResult(a.Req, tip, nil, s.now) })
	case *GetHeaders:
		p := s.peers[a.Peer]
		p.timeouts = append(p.timeouts, a.Timeout)
		if a.Max > MaxHeadersPerRequest || len(a.Locator) > MaxLocatorIDs {
			s.t.Fatalf("headers request max %d locator %d", a.Max, len(a.Locator))
		}
		if p.stallAll {
			return
		}
		start := 0
	loc:
		for _, id := range a.Locator {
			for h, hi := range p.chain {
				if hi.ID == id {
					start = h
					break loc
				}
			}
		}
		end := min(len(p.chain), start+1+a.Max)
		hs := slices.Clone(p.chain[start+1 : end])
		s.after(p, func() { s.core.HeadersResult(a.Req, hs, nil, s.now) })
	case *GetBlocks:
		p := s.peers[a.Peer]
		p.timeouts = append(p.timeouts, a.Timeout)
		p.blockReqs++
		p.blockTimeouts = append(p.blockTimeouts, a.Timeout)
		p.blockTimes = append(p.blockTimes, s.now)
		if p.refuse > 0 {
			p.refuse--
			s.after(p, func() { s.core.BlocksResult(a.Req, nil, errBusy, s.now) })
			return
		}
		if a.Count < 1 || a.Count > BlocksPerRequest {
			s.t.Fatalf("block request count %d", a.Count)
		}
		tip, _ := s.chain.Tip()
		if ahead := a.Start + uint64(a.Count) - 1 - tip; ahead > s.maxAhead && a.Start > tip {
			s.maxAhead = ahead
		}
		if p.stallAll || p.blockReqs <= p.stallBlocks {
			return
		}
		var bs []Block
		for h := a.Start; h < a.Start+uint64(a.Count) && h < uint64(len(p.chain)); h++ {
			info := p.chain[h]
			if p.mismatchAt[h] {
				info.ID[0] ^= 0xff
			}
			body := blockBody(info.ID)
			if p.tamperAt[h] {
				body = []byte("tampered")
			}
			bs = append(bs, Block{Info: info, Body: body})
		}
		s.after(p, func() { s.core.BlocksResult(a.Req, bs, nil, s.now) })
	case *GetPoolIDs:
		p := s.peers[a.Peer]
		if p.stallAll {
			return
		}
		var ids []wire.ID
		for id := range p.pool {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b wire.ID) int { return slices.Compare(a[:], b[:]) })
		ids = ids[:min(len(ids), a.Max)]
		s.after(p, func() { s.core.PoolIDsResult(a.Req, ids, nil, s.now) })
	case *GetTxs:
		p := s.peers[a.Peer]
		p.txReqs++
		if len(a.IDs) == 0 || len(a.IDs) > MaxTxsPerRequest {
			s.t.Fatalf("tx request of %d ids", len(a.IDs))
		}
		if p.stallAll {
			return
		}
		out := make([][]byte, len(a.IDs))
		for i, id := range a.IDs {
			switch {
			case p.withhold[id]:
			case p.wrongBody[id]:
				out[i] = []byte("not it")
			default:
				out[i] = p.pool[id]
			}
		}
		s.after(p, func() { s.core.TxsResult(a.Req, out, nil, s.now) })
	case *ConnectBlock:
		// The body names its block: find its header in any peer's chain.
		var info HeaderInfo
		found := false
		for _, p := range s.peers {
			for _, h := range p.chain {
				if h.ID == a.ID {
					info, found = h, true
				}
			}
		}
		if !found {
			s.t.Fatalf("connect of unknown block %s", a.ID.Short())
		}
		v := Invalid // a body that is not the block's
		if string(a.Body) == string(blockBody(a.ID)) {
			v = s.chain.add(info)
		}
		s.core.BlockResult(a.ID, v, nil, s.now)
	case *AddTx:
		v := Accepted
		if prev, ok := s.pool.after[a.ID]; ok && !s.pool.HasTx(prev) {
			v = Ignored
		} else if s.pool.HasTx(a.ID) {
			v = Known
		} else {
			s.pool.txs[a.ID] = a.Body
		}
		s.core.TxResult(a, v, nil, s.now)
	case *Penalize:
		s.penalties = append(s.penalties, *a)
	default:
		s.t.Fatalf("unknown action %T", a)
	}
}

// step moves the clock to the next delivery or core deadline and runs it.
func (s *sim) step() {
	next := s.core.NextDeadline()
	for _, d := range s.queue {
		if d.at.Before(next) {
			next = d.at
		}
	}
	if next.After(s.now) {
		s.now = next
	}
	var due []delivery
	rest := s.queue[:0]
	for _, d := range s.queue {
		if d.at.After(s.now) {
			rest = append(rest, d)
		} else {
			due = append(due, d)
		}
	}
	s.queue = rest
	for _, d := range due {
		d.fn()
		s.process()
	}
	s.core.Tick(s.now)
	s.process()
	s.checkInvariants()
}

func (s *sim) checkInvariants() {
	for _, ps := range s.core.peerList {
		if ps.blocksInFlight > MaxBlocksInFlightPerPeer || ps.blocksInFlight < 0 {
			s.t.Fatalf("peer %s has %d blocks in flight", ps.id, ps.blocksInFlight)
		}
		if ps.txReqs > MaxTxRequestsPerPeer || ps.txReqs < 0 {
			s.t.Fatalf("peer %s has %d tx requests", ps.id, ps.txReqs)
		}
	}
	if s.maxAhead > DownloadWindow {
		s.t.Fatalf("requested %d blocks past the connect point (window %d)", s.maxAhead, DownloadWindow)
	}
	if len(s.core.hdrs) > MaxHeadersAhead {
		s.t.Fatalf("%d headers held", len(s.core.hdrs))
	}
	if s.core.poolReqs > MaxPoolIDRequestsInFlight || s.core.poolReqs < 0 {
		s.t.Fatalf("%d pool id requests", s.core.poolReqs)
	}
}

// runUntil steps until cond holds or the simulated time limit passes.
func (s *sim) runUntil(limit time.Duration, cond func() bool) {
	s.t.Helper()
	deadline := s.now.Add(limit)
	for !cond() {
		if s.now.After(deadline) {
			st := s.core.Stats()
			s.t.Fatalf("condition not met after %v simulated: tip %d, stats %+v", limit, uint64(len(s.chain.best)-1), st)
		}
		s.step()
	}
}

func (s *sim) tipIs(want HeaderInfo) func() bool {
	return func() bool { h, id := s.chain.Tip(); return h == want.Height && id == want.ID }
}

func (s *sim) penalized(p transport.PeerID, o Offense) int {
	n := 0
	for _, x := range s.penalties {
		if x.Peer == p && x.Offense == o {
			n++
		}
	}
	return n
}
