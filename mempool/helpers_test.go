package mempool

import (
	"github.com/dchest/siphash"

	"crypto/ed25519"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

const (
	testChainID = "mempool-test"
	testSeed    = "mempool"
)

var t0 = time.UnixMilli(1_700_000_000_000)

// testKeys caches deterministic account keys.
var testKeys struct {
	sync.Mutex
	keys []ed25519.PrivateKey
}

func key(i int) ed25519.PrivateKey {
	testKeys.Lock()
	defer testKeys.Unlock()
	for len(testKeys.keys) <= i {
		testKeys.keys = append(testKeys.keys, chain.TestnetAccountKey(testSeed, len(testKeys.keys)))
	}
	return testKeys.keys[i]
}

func addr(i int) chain.Address { return chain.AddressOf(key(i)) }

// fakeState is the pool's input: a map of confirmed accounts.
type fakeState struct {
	mu sync.RWMutex
	m  map[chain.Address]chain.Account
}

func newFakeState() *fakeState { return &fakeState{m: make(map[chain.Address]chain.Account)} }

func (f *fakeState) Account(a chain.Address) chain.Account {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.m[a]
}

func (f *fakeState) set(a chain.Address, acct chain.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[a] = acct
}

// replace swaps in a whole state (copied).
func (f *fakeState) replace(m map[chain.Address]chain.Account) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = make(map[chain.Address]chain.Account, len(m))
	for k, v := range m {
		f.m[k] = v
	}
}

func testGenesis(t testing.TB) *chain.Genesis {
	t.Helper()
	g := chain.NewTestnetGenesis(testChainID, testSeed, 0, 1, time.Second, t0)
	if err := g.Validate(); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	return g
}

// fixture is a pool over a fake state.
type fixture struct {
	t  testing.TB
	g  *chain.Genesis
	st *fakeState
	p  *Pool
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	g := testGenesis(t)
	st := newFakeState()
	p, err := New(cfg, g, st)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{t: t, g: g, st: st, p: p}
}

func (f *fixture) fund(i int, balance uint64) { f.st.set(addr(i), chain.Account{Balance: balance}) }

// txSpec describes a test transaction.
type txSpec struct {
	from    int
	to      int
	nonce   uint64
	fee     uint64
	amount  uint64
	payload int
}

// signed memoizes mkTx: signing dominates the cost of the large tests, and
// several build the same txs.
var signed struct {
	sync.Mutex
	m map[txSpec]*chain.Tx
}

// mkTx returns a signed tx for s (a fresh copy: callers may tamper with it).
func mkTx(s txSpec) *chain.Tx {
	signed.Lock()
	x := signed.m[s]
	signed.Unlock()
	if x == nil {
		x = signTx(s)
		signed.Lock()
		if signed.m == nil {
			signed.m = make(map[txSpec]*chain.Tx)
		}
		signed.m[s] = x
		signed.Unlock()
	}
	c := *x
	return &c
}

func signTx(s txSpec) *chain.Tx {
	tx := &chain.Tx{From: addr(s.from), To: addr(s.to), Amount: s.amount, Fee: s.fee, Nonce: s.nonce}
	if s.payload > 0 {
		tx.Payload = make([]byte, s.payload)
		for i := range tx.Payload {
			tx.Payload[i] = byte(i + int(s.nonce))
		}
	}
	tx.Sign(testChainID, key(s.from))
	return tx
}

// tx makes a signed tx from account from with nonce and fee, amount 1.
func tx(from int, nonce, fee uint64) *chain.Tx {
	return mkTx(txSpec{from: from, to: from + 1000, nonce: nonce, fee: fee, amount: 1})
}

func (f *fixture) add(tx *chain.Tx, now time.Time) Result {
	f.t.Helper()
	r := f.p.Add(tx, now)
	if err := f.p.checkInvariants(false); err != nil {
		f.t.Fatalf("after Add (%v): %v", r.Code, err)
	}
	return r
}

func (f *fixture) mustAdd(tx *chain.Tx, want Code) Result {
	f.t.Helper()
	r := f.add(tx, t0)
	if r.Code != want {
		f.t.Fatalf("Add nonce %d fee %d: got %v (%v), want %v", tx.Nonce, tx.Fee, r.Code, r.Err, want)
	}
	return r
}

// block builds an unsigned block carrying txs (the pool does not check
// headers); height makes ids distinct.
func block(height uint64, proposer chain.Address, txs ...*chain.Tx) *chain.Block {
	return &chain.Block{Header: chain.Header{Height: height, Proposer: proposer, Time: int64(height)}, Txs: txs}
}

// applyBlock returns state after b, using the chain's own rules.
func applyBlock(t testing.TB, state map[chain.Address]chain.Account, b *chain.Block, minFee uint64) map[chain.Address]chain.Account {
	t.Helper()
	changes, err := chain.ApplyBlockTxs(b, func(a chain.Address) chain.Account { return state[a] }, minFee)
	if err != nil {
		t.Fatalf("applyBlock: %v", err)
	}
	out := make(map[chain.Address]chain.Account, len(state)+len(changes))
	for k, v := range state {
		out[k] = v
	}
	for k, v := range changes {
		out[k] = v
	}
	return out
}

func idsOf(txs ...*chain.Tx) []chain.Hash {
	out := make([]chain.Hash, len(txs))
	for i, tx := range txs {
		out[i] = tx.ID()
	}
	return out
}

func sameIDs(a, b []chain.Hash) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmpH := func(x, y chain.Hash) int { return slices.Compare(x[:], y[:]) }
	slices.SortFunc(a, cmpH)
	slices.SortFunc(b, cmpH)
	return slices.Equal(a, b)
}

// snapshot returns the held ids and which are executable.
func (p *Pool) snapshot() map[chain.Hash]bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	m := make(map[chain.Hash]bool, len(p.byID))
	for id, e := range p.byID {
		m[id] = e.exec
	}
	return m
}

// checkInvariants verifies the pool's internal consistency and, unless
// relaxed (just after BlockDisconnected), its limits.
func (p *Pool) checkInvariants(relaxed bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	count, bytes, queued, exec := 0, 0, 0, 0
	for a, s := range p.senders {
		if s.addr != a {
			return fmt.Errorf("sender key mismatch")
		}
		if len(s.txs) == 0 {
			return fmt.Errorf("empty sender %x kept", a[:4])
		}
		if !relaxed && len(s.txs) > p.cfg.MaxPerSender {
			return fmt.Errorf("sender %x holds %d > MaxPerSender %d", a[:4], len(s.txs), p.cfg.MaxPerSender)
		}
		// Mid-reorg (relaxed), senders touched only by blocks not yet
		// reported are still at their old state.
		if acct := p.state.Account(a); !relaxed && acct != s.acct {
			return fmt.Errorf("sender %x synced to %+v, state says %+v", a[:4], s.acct, acct)
		}
		var cum uint64
		for i, e := range s.txs {
			if e.s != s || p.byID[e.id] != e {
				return fmt.Errorf("entry index mismatch")
			}
			if i > 0 && s.txs[i-1].tx.Nonce >= e.tx.Nonce {
				return fmt.Errorf("sender %x nonces not strictly increasing", a[:4])
			}
			if e.tx.Nonce < s.acct.Nonce {
				return fmt.Errorf("sender %x holds stale nonce %d < %d", a[:4], e.tx.Nonce, s.acct.Nonce)
			}
			if i < s.nexec {
				if !e.exec || e.tx.Nonce != s.acct.Nonce+uint64(i) {
					return fmt.Errorf("sender %x executable prefix broken at %d", a[:4], i)
				}
				cum += e.cost
				if cum > s.acct.Balance {
					return fmt.Errorf("sender %x executable txs cost %d > balance %d", a[:4], cum, s.acct.Balance)
				}
				exec++
			} else {
				if e.exec {
					return fmt.Errorf("sender %x: tx %d past the prefix marked executable", a[:4], i)
				}
				if i == s.nexec && e.tx.Nonce == s.pendingNonce() {
					return fmt.Errorf("sender %x: queued tx at pending nonce %d", a[:4], e.tx.Nonce)
				}
				queued++
			}
			count++
			bytes += e.size
			if c, _ := e.tx.Cost(); c != e.cost || e.size != e.tx.Size() || e.id != e.tx.ID() {
				return fmt.Errorf("entry cached fields wrong")
			}
		}
		if cum != s.pendingCost {
			return fmt.Errorf("sender %x pendingCost %d, want %d", a[:4], s.pendingCost, cum)
		}
	}
	if count != len(p.byID) || bytes != p.bytes {
		return fmt.Errorf("totals: count %d/%d bytes %d/%d", count, len(p.byID), bytes, p.bytes)
	}
	if queued != p.queuedHeap.len() || exec != p.execHeap.len() || count != p.timeHeap.len() {
		return fmt.Errorf("heap sizes: queued %d/%d exec %d/%d time %d/%d", queued, p.queuedHeap.len(), exec, p.execHeap.len(), count, p.timeHeap.len())
	}
	for _, h := range []*entryHeap{&p.execHeap, &p.queuedHeap, &p.timeHeap} {
		for i, e := range h.items {
			if *h.index(e) != i {
				return fmt.Errorf("heap index wrong")
			}
			if i > 0 && h.less(e, h.items[(i-1)/2]) {
				return fmt.Errorf("heap order broken")
			}
		}
	}
	if !relaxed {
		if count > p.cfg.MaxTxs || bytes > p.cfg.MaxBytes || queued > p.cfg.MaxQueued {
			return fmt.Errorf("limits: count %d/%d bytes %d/%d queued %d/%d", count, p.cfg.MaxTxs, bytes, p.cfg.MaxBytes, queued, p.cfg.MaxQueued)
		}
	}
	return nil
}

// checkTemplate verifies a template: executable txs only, per-sender
// nonce order from the confirmed nonce, within limits.
func checkTemplate(p *Pool, txs []*chain.Tx, maxBytes, maxTxs int) error {
	if len(txs) > maxTxs {
		return fmt.Errorf("template has %d txs > %d", len(txs), maxTxs)
	}
	used := 0
	next := make(map[chain.Address]uint64)
	for _, tx := range txs {
		used += inBlockSize(tx.Size())
		n, ok := next[tx.From]
		if !ok {
			n = p.state.Account(tx.From).Nonce
		}
		if tx.Nonce != n {
			return fmt.Errorf("template: nonce %d, want %d", tx.Nonce, n)
		}
		next[tx.From] = n + 1
		p.mu.RLock()
		e := p.byID[tx.ID()]
		p.mu.RUnlock()
		if e == nil || !e.exec {
			return fmt.Errorf("template holds a tx that is not executable in the pool")
		}
	}
	if used > maxBytes {
		return fmt.Errorf("template uses %d bytes > %d", used, maxBytes)
	}
	return nil
}

// sipShortID is a keyed 48-bit short-id function like the relay's compact
// blocks use (SipHash-2-4 of the tx id); the scheme itself is the relay's.
func sipShortID(k uint64) func(chain.Hash) uint64 {
	return func(id chain.Hash) uint64 { return siphash.Hash(k, ^k, id[:]) & (1<<48 - 1) }
}
