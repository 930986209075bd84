package mempool

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// model is the reference pool: a flat set of held txs, every rule
// recomputed from scratch on each call, no indexes, heaps or caches. It
// implements the pool's policy except fee-rate eviction for room, so the
// exact comparison runs with MaxTxs, MaxBytes and MaxQueued out of reach
// (TestRandomTightLimits covers eviction with invariants instead).
type model struct {
	cfg        Config
	minFee     uint64
	chainID    string
	txs        map[chain.Hash]*mEntry
	recent     map[chain.Hash]bool
	senderOver bool
}

type mEntry struct {
	tx    *chain.Tx
	id    chain.Hash
	added time.Time
	exec  bool
}

func newModel(cfg Config, g *chain.Genesis) *model {
	return &model{cfg: cfg.withDefaults(), minFee: g.MinFee, chainID: g.ChainID,
		txs: make(map[chain.Hash]*mEntry), recent: make(map[chain.Hash]bool)}
}

func (m *model) list(a chain.Address) []*mEntry {
	var out []*mEntry
	for _, e := range m.txs {
		if e.tx.From == a {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y *mEntry) int { return cmp.Compare(x.tx.Nonce, y.tx.Nonce) })
	return out
}

func (m *model) senders() []chain.Address {
	var out []chain.Address
	for _, e := range m.txs {
		if !slices.Contains(out, e.tx.From) {
			out = append(out, e.tx.From)
		}
	}
	return out
}

func cost(tx *chain.Tx) uint64 { c, _ := tx.Cost(); return c }

// normalize applies the confirmed account: spent nonces leave, the
// consecutive affordable run from acct.Nonce is executable, the first
// unaffordable one leaves with everything after it, the rest is queued.
func (m *model) normalize(a chain.Address, acct chain.Account) {
	var keep []*mEntry
	for _, e := range m.list(a) {
		if e.tx.Nonce < acct.Nonce {
			delete(m.txs, e.id)
		} else {
			keep = append(keep, e)
		}
	}
	next, spent := acct.Nonce, uint64(0)
	i := 0
	for ; i < len(keep) && keep[i].tx.Nonce == next; i++ {
		if spent+cost(keep[i].tx) > acct.Balance {
			for _, e := range keep[i:] {
				delete(m.txs, e.id)
			}
			return
		}
		spent += cost(keep[i].tx)
		keep[i].exec = true
		next++
	}
	for _, e := range keep[i:] {
		e.exec = false
	}
}

func (m *model) pendingNonce(a chain.Address, acct chain.Account) uint64 {
	n := acct.Nonce
	for _, e := range m.list(a) {
		if e.exec {
			n++
		}
	}
	return n
}

// spentBefore is what a's executable txs before nonce cost.
func (m *model) spentBefore(a chain.Address, nonce uint64) uint64 {
	var s uint64
	for _, e := range m.list(a) {
		if e.exec && e.tx.Nonce < nonce {
			s += cost(e.tx)
		}
	}
	return s
}

func (m *model) trim() {
	if !m.senderOver {
		return
	}
	for _, a := range m.senders() {
		l := m.list(a)
		for _, e := range l[min(len(l), m.cfg.MaxPerSender):] {
			delete(m.txs, e.id)
		}
	}
	m.senderOver = false
}

// judge returns the per-sender rules' verdict on tx (0 = admissible) and
// the held tx it replaces or trades away, changing nothing.
func (m *model) judge(tx *chain.Tx, acct chain.Account) (code Code, old, trade *mEntry) {
	if tx.Nonce < acct.Nonce {
		return NonceTooLow, nil, nil
	}
	l := m.list(tx.From)
	pn := m.pendingNonce(tx.From, acct)
	for _, e := range l {
		if e.tx.Nonce == tx.Nonce {
			old = e
		}
	}
	if old == nil && tx.Nonce > pn && tx.Nonce-pn > uint64(m.cfg.MaxNonceGap) {
		return NonceTooHigh, nil, nil
	}
	if cost(tx) > acct.Balance-m.spentBefore(tx.From, tx.Nonce) {
		return InsufficientFunds, nil, nil
	}
	if old != nil {
		// fee > old, fee*100 >= old*(100+bump), rate not lower.
		if tx.Fee <= old.tx.Fee || tx.Fee*100 < old.tx.Fee*uint64(100+m.cfg.ReplaceBumpPercent) ||
			tx.Fee*uint64(old.tx.Size()) < old.tx.Fee*uint64(tx.Size()) {
			return FeeTooLow, nil, nil
		}
		return 0, old, nil
	}
	if len(l) >= m.cfg.MaxPerSender {
		last := l[len(l)-1]
		if last.exec || last.tx.Nonce < tx.Nonce {
			return PoolFull, nil, nil
		}
		return 0, nil, last
	}
	return 0, nil, nil
}

// add mirrors Pool.Add's order: known, fee, the sender rules (before the
// signature), the signature, trim, the sender rules again, insert.
func (m *model) add(tx *chain.Tx, now time.Time, st func(chain.Address) chain.Account) Code {
	id := tx.ID()
	if tx.Fee < m.minFee {
		return FeeTooLow
	}
	if m.txs[id] != nil || m.recent[id] {
		return AlreadyKnown
	}
	acct := st(tx.From)
	m.normalize(tx.From, acct)
	if code, _, _ := m.judge(tx, acct); code != 0 {
		return code
	}
	if !tx.VerifySig(m.chainID) {
		return Invalid
	}
	m.trim()
	code, old, trade := m.judge(tx, acct)
	if code != 0 {
		return code
	}
	for _, e := range []*mEntry{old, trade} {
		if e != nil {
			delete(m.txs, e.id)
		}
	}
	e := &mEntry{tx: tx, id: id, added: now}
	m.txs[id] = e
	m.normalize(tx.From, acct)
	switch {
	case old != nil:
		return Replaced
	case e.exec:
		return Added
	}
	return Queued
}

func (m *model) connect(b *chain.Block, st func(chain.Address) chain.Account) {
	for _, id := range b.TxIDs() {
		delete(m.txs, id)
		m.recent[id] = true
	}
	for _, a := range m.senders() {
		m.normalize(a, st(a))
	}
	m.trim()
}

func (m *model) disconnect(b *chain.Block, now time.Time, st func(chain.Address) chain.Account) {
	for _, id := range b.TxIDs() {
		delete(m.recent, id)
	}
	for _, a := range m.senders() {
		m.normalize(a, st(a))
	}
	for _, tx := range b.Txs {
		id := tx.ID()
		if m.txs[id] != nil {
			continue
		}
		acct := st(tx.From)
		if tx.Nonce < acct.Nonce || cost(tx) > acct.Balance-m.spentBefore(tx.From, tx.Nonce) {
			continue
		}
		for _, e := range m.list(tx.From) {
			if e.tx.Nonce == tx.Nonce {
				delete(m.txs, e.id)
			}
		}
		m.txs[id] = &mEntry{tx: tx, id: id, added: now}
		m.normalize(tx.From, acct)
		if len(m.list(tx.From)) > m.cfg.MaxPerSender {
			m.senderOver = true
		}
	}
}

func (m *model) expire(now time.Time) {
	for _, a := range m.senders() {
		cut := uint64(math.MaxUint64)
		for _, e := range m.list(a) {
			if now.Sub(e.added) >= m.cfg.TTL {
				cut = min(cut, e.tx.Nonce)
			}
		}
		for _, e := range m.list(a) {
			if e.tx.Nonce >= cut {
				delete(m.txs, e.id)
			}
		}
	}
	m.trim()
}

// sim drives a pool (and optionally the model) through random events on
// a simulated chain whose state transitions are chain.ApplyBlockTxs.
type sim struct {
	t        *testing.T
	rng      *rand.Rand
	f        *fixture
	m        *model // nil: invariants only
	nSenders int
	now      time.Time
	states   []map[chain.Address]chain.Account // states[h]: after block h
	blocks   []*chain.Block                    // blocks[h-1]: block at height h
	relaxed  bool                              // a bare disconnect has not been trimmed yet
	blockMax int                               // most txs a new block takes from the template
	stats    map[string]int
}

func newSim(t *testing.T, seed uint64, cfg Config, nSenders int, withModel bool) *sim {
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), f: newFixture(t, cfg),
		nSenders: nSenders, now: t0, stats: make(map[string]int), blockMax: 12}
	if withModel {
		s.m = newModel(cfg, s.f.g)
	}
	genesis := make(map[chain.Address]chain.Account)
	for i := range nSenders {
		genesis[addr(i)] = chain.Account{Balance: uint64(2000 + s.rng.IntN(20000))}
	}
	s.states = append(s.states, genesis)
	s.f.st.replace(genesis)
	return s
}

func (s *sim) tip() map[chain.Address]chain.Account { return s.states[len(s.states)-1] }

func (s *sim) st(a chain.Address) chain.Account { return s.f.st.Account(a) }

// randomTx makes a tx meant to hit every rule now and then.
func (s *sim) randomTx() *chain.Tx {
	r := s.rng
	if r.IntN(20) == 0 {
		// A duplicate: held, or recently included.
		if snap := s.f.p.snapshot(); len(snap) > 0 && r.IntN(2) == 0 {
			for id := range snap {
				x, _ := s.f.p.Get(id)
				return x
			}
		}
		if n := len(s.blocks); n > 0 && len(s.blocks[n-1].Txs) > 0 {
			return s.blocks[n-1].Txs[0]
		}
	}
	from := r.IntN(s.nSenders)
	a := addr(from)
	acct := s.st(a)
	pn := s.f.p.PendingNonce(a)
	var nonce uint64
	var old *chain.Tx
	switch c := r.IntN(100); {
	case c < 8 && acct.Nonce > 0:
		nonce = acct.Nonce - 1
	case c < 55:
		nonce = pn
	case c < 75:
		nonce = pn + 1 + uint64(r.IntN(s.f.p.cfg.MaxNonceGap+2))
	case c < 90:
		nonce = acct.Nonce + uint64(r.IntN(int(pn-acct.Nonce)+1))
	default:
		nonce = acct.Nonce + uint64(r.IntN(10))
	}
	for id := range s.f.p.snapshot() {
		if x, _ := s.f.p.Get(id); x != nil && x.From == a && x.Nonce == nonce {
			old = x
		}
	}
	fee := uint64(1 + r.IntN(30))
	if old != nil {
		fee = old.Fee*uint64(95+r.IntN(30))/100 + uint64(r.IntN(2))
	}
	if r.IntN(25) == 0 {
		fee = 0
	}
	amount := uint64(r.IntN(60))
	if r.IntN(8) == 0 { // often an overdraft
		amount = uint64(r.Int64N(int64(acct.Balance) + 1))
	}
	spec := txSpec{from: from, to: r.IntN(s.nSenders + 2), nonce: nonce, fee: fee, amount: amount}
	if r.IntN(3) == 0 {
		spec.payload = r.IntN(200)
	}
	x := mkTx(spec)
	if r.IntN(25) == 0 {
		x.Sig[5] ^= 0x10
	}
	return x
}

// fill picks, in order, the candidates that apply on top of state, at most
// max of them, each kept with probability keep%.
func (s *sim) fill(state map[chain.Address]chain.Account, cands []*chain.Tx, max, keep int, height uint64) *chain.Block {
	b := block(height, addr(s.rng.IntN(2)*(s.nSenders+5)), nil...)
	b.Header.Time = int64(height)*1000 + int64(s.rng.IntN(1000)) // distinct ids across branches
	seen := make(map[chain.Hash]bool)
	for _, c := range cands {
		if len(b.Txs) >= max || seen[c.ID()] || s.rng.IntN(100) >= keep {
			continue
		}
		b.Txs = append(b.Txs, c)
		if _, err := chain.ApplyBlockTxs(b, func(a chain.Address) chain.Account { return state[a] }, s.f.g.MinFee); err != nil {
			b.Txs = b.Txs[:len(b.Txs)-1]
			continue
		}
		seen[c.ID()] = true
	}
	return b
}

// foreign makes valid txs the pool has never seen (conflicts with held ones).
func (s *sim) foreign(state map[chain.Address]chain.Account, n int) []*chain.Tx {
	var out []*chain.Tx
	for range n {
		from := s.rng.IntN(s.nSenders)
		acct := state[addr(from)]
		out = append(out, mkTx(txSpec{from: from, to: s.nSenders, nonce: acct.Nonce, fee: 3, amount: uint64(s.rng.IntN(100)) + 7}))
	}
	return out
}

func (s *sim) checkTemplateApplies() {
	tpl := s.f.p.Template(math.MaxInt, math.MaxInt)
	if err := checkTemplate(s.f.p, tpl, math.MaxInt, math.MaxInt); err != nil {
		s.t.Fatal(err)
	}
	tip := s.tip()
	b := block(uint64(len(s.blocks)+1), addr(s.nSenders+5), tpl...)
	if _, err := chain.ApplyBlockTxs(b, func(a chain.Address) chain.Account { return tip[a] }, s.f.g.MinFee); err != nil {
		s.t.Fatalf("the pool's whole template does not apply to the tip: %v", err)
	}
}

func (s *sim) connectNew() {
	tip := s.tip()
	h := uint64(len(s.blocks) + 1)
	cands := s.f.p.Template(s.rng.IntN(3000)+300, s.rng.IntN(s.blockMax)+1)
	if s.rng.IntN(3) == 0 {
		cands = append(cands, s.foreign(tip, 1+s.rng.IntN(2))...)
	}
	b := s.fill(tip, cands, 1000, 90, h)
	s.blocks = append(s.blocks, b)
	s.states = append(s.states, applyBlock(s.t, tip, b, s.f.g.MinFee))
	s.f.st.replace(s.tip())
	s.f.p.BlockConnected(b, s.now)
	if s.m != nil {
		s.m.connect(b, s.st)
	}
	s.stats["connect"]++
}

// reorg replaces the last k blocks by 0..k+1 new ones: the store moves to
// the new tip first, then the pool hears Disconnected (tip first) and
// Connected (oldest first).
func (s *sim) reorg() {
	k := 1 + s.rng.IntN(min(3, len(s.blocks)))
	fork := len(s.blocks) - k
	old := slices.Clone(s.blocks[fork:])
	cands := s.f.p.Template(math.MaxInt, 30)
	for _, b := range old {
		cands = append(cands, b.Txs...)
	}
	s.rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	s.blocks = s.blocks[:fork]
	s.states = s.states[:fork+1]
	n := s.rng.IntN(k + 2)
	var fresh []*chain.Block
	for range n {
		tip := s.tip()
		more := append(slices.Clone(cands), s.foreign(tip, s.rng.IntN(2))...)
		b := s.fill(tip, more, min(8, s.blockMax), 60, uint64(len(s.blocks)+1))
		fresh = append(fresh, b)
		s.blocks = append(s.blocks, b)
		s.states = append(s.states, applyBlock(s.t, tip, b, s.f.g.MinFee))
	}
	s.f.st.replace(s.tip())
	for i := len(old) - 1; i >= 0; i-- {
		s.f.p.BlockDisconnected(old[i], s.now)
		if s.m != nil {
			s.m.disconnect(old[i], s.now, s.st)
		}
	}
	for _, b := range fresh {
		s.f.p.BlockConnected(b, s.now)
		if s.m != nil {
			s.m.connect(b, s.st)
		}
	}
	// A bare disconnect leaves limits to the next trim (Connected,
	// Expire, or an Add that gets past the stateless checks).
	s.relaxed = len(fresh) == 0
	s.stats["reorg"]++
}

func (s *sim) step() {
	s.now = s.now.Add(time.Duration(s.rng.IntN(30)) * time.Second)
	switch c := s.rng.IntN(100); {
	case c < 78:
		x := s.randomTx()
		before := s.f.p.snapshot()
		r := s.f.p.Add(x, s.now)
		s.stats[r.Code.String()]++
		if r.Code.Held() {
			s.relaxed = false
			if r.Code != Replaced && len(r.Evicted) > 0 {
				s.stats["evicting-add"]++
			}
		}
		if s.m != nil {
			if want := s.m.add(x, s.now, s.st); r.Code != want {
				s.t.Fatalf("Add nonce %d fee %d: pool says %v (%v), model says %v", x.Nonce, x.Fee, r.Code, r.Err, want)
			}
		}
		s.checkResult(x, r, before)
	case c < 89:
		s.connectNew()
		s.relaxed = false
	case c < 95 && len(s.blocks) > 0:
		s.reorg()
	default:
		if s.rng.IntN(10) == 0 {
			s.now = s.now.Add(s.f.p.cfg.TTL / 2)
		}
		s.f.p.Expire(s.now)
		s.relaxed = false
		if s.m != nil {
			s.m.expire(s.now)
		}
		s.stats["expire"]++
	}
	s.check()
}

// checkResult checks an Add's Result against what changed in the pool.
func (s *sim) checkResult(x *chain.Tx, r Result, before map[chain.Hash]bool) {
	after := s.f.p.snapshot()
	_, has := after[x.ID()]
	if r.Code.Held() != has && r.Code != AlreadyKnown {
		s.t.Fatalf("code %v but held=%v", r.Code, has)
	}
	if r.Code.Held() && r.Executable != after[x.ID()] {
		s.t.Fatalf("Executable %v, pool says %v", r.Executable, after[x.ID()])
	}
	var left, promoted []chain.Hash
	for id, exec := range before {
		nowExec, ok := after[id]
		if !ok {
			left = append(left, id)
		} else if !exec && nowExec {
			promoted = append(promoted, id)
		}
	}
	if !sameIDs(left, r.Evicted) {
		s.t.Fatalf("%v: %d txs left, Evicted lists %d", r.Code, len(left), len(r.Evicted))
	}
	if !sameIDs(promoted, r.Promoted) {
		s.t.Fatalf("%v: %d txs promoted, Promoted lists %d", r.Code, len(promoted), len(r.Promoted))
	}
	if !r.Code.Held() && (len(after) != len(before)-len(left) || len(r.Promoted) > 0) {
		s.t.Fatalf("rejected tx changed the pool beyond re-syncing")
	}
}

func (s *sim) check() {
	s.stats["max-held"] = max(s.stats["max-held"], s.f.p.Stats().Count)
	if err := s.f.p.checkInvariants(s.relaxed); err != nil {
		s.t.Fatalf("invariant: %v", err)
	}
	s.checkTemplateApplies()
	if s.m == nil {
		return
	}
	snap := s.f.p.snapshot()
	if len(snap) != len(s.m.txs) {
		s.t.Fatalf("pool holds %d, model %d", len(snap), len(s.m.txs))
	}
	bytes, queued := 0, 0
	for id, e := range s.m.txs {
		exec, ok := snap[id]
		if !ok || exec != e.exec {
			s.t.Fatalf("tx nonce %d: pool held=%v exec=%v, model exec=%v", e.tx.Nonce, ok, exec, e.exec)
		}
		bytes += e.tx.Size()
		if !e.exec {
			queued++
		}
	}
	st := s.f.p.Stats()
	if st.Count != len(s.m.txs) || st.Bytes != bytes || st.Queued != queued || st.Senders != len(s.m.senders()) {
		s.t.Fatalf("stats %+v, model count %d bytes %d queued %d senders %d", st, len(s.m.txs), bytes, queued, len(s.m.senders()))
	}
	for i := range s.nSenders {
		a := addr(i)
		if got, want := s.f.p.PendingNonce(a), s.m.pendingNonce(a, s.st(a)); got != want {
			s.t.Fatalf("sender %d pending nonce %d, model %d", i, got, want)
		}
	}
}

func simSteps(t *testing.T) int {
	if testing.Short() {
		return 600
	}
	return 2000
}

// TestRandomAgainstModel runs random adds, blocks, reorgs and expiries and
// compares the pool with the reference model after every step.
func TestRandomAgainstModel(t *testing.T) {
	cfg := Config{MaxTxs: 100_000, MaxBytes: 1 << 30, MaxQueued: 100_000, MaxPerSender: 6, MaxNonceGap: 3, TTL: 10 * time.Minute}
	for _, seed := range []uint64{1, 2} {
		s := newSim(t, seed, cfg, 8, true)
		for range simSteps(t) {
			s.step()
		}
		t.Logf("seed %d: %v; final %+v", seed, s.stats, s.f.p.Stats())
		for _, c := range []string{"added", "queued", "replaced", "already-known", "nonce-too-low", "nonce-too-high",
			"fee-too-low", "insufficient-funds", "pool-full", "invalid", "reorg"} {
			if s.stats[c] == 0 {
				t.Errorf("seed %d never produced %s", seed, c)
			}
		}
	}
}

// TestRandomTightLimits runs the same events against small limits, where
// fee-rate eviction happens all the time, and checks invariants and that
// every Result matches what changed.
func TestRandomTightLimits(t *testing.T) {
	cfg := Config{MaxTxs: 25, MaxBytes: 25 * 230, MaxQueued: 6, MaxPerSender: 5, MaxNonceGap: 3, TTL: 2 * time.Hour}
	s := newSim(t, 3, cfg, 16, false)
	s.blockMax = 3
	for range simSteps(t) {
		s.step()
	}
	t.Logf("%v; final %+v", s.stats, s.f.p.Stats())
	if s.stats["pool-full"] == 0 || s.stats["evicting-add"] == 0 {
		t.Error("limits never bound")
	}
}
