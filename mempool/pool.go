package mempool

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// StateView is the pool's read-only view of the confirmed state at the
// chain tip. Account is called with the pool's lock held: it must be cheap,
// safe for concurrent use, and must not call back into the Pool.
type StateView interface {
	// Account returns the confirmed balance and next nonce of a, the zero
	// Account if a was never funded.
	Account(a chain.Address) chain.Account
}

// entry is one held transaction.
type entry struct {
	tx    *chain.Tx
	id    chain.Hash
	size  int    // encoded size in bytes
	cost  uint64 // amount + fee (CheckTx rules out overflow)
	added time.Time
	s     *sender
	exec  bool // executable (in execHeap) or queued (in queuedHeap)

	feeIdx  int // position in execHeap or queuedHeap
	timeIdx int // position in timeHeap
}

// sender is one account's held transactions.
type sender struct {
	addr chain.Address
	// acct is the confirmed state the pool last synced to. Every held tx
	// has a nonce >= acct.Nonce.
	acct chain.Account
	// txs is sorted by nonce, no duplicates. txs[:nexec] are executable:
	// nonces acct.Nonce, acct.Nonce+1, ... with cumulative cost
	// pendingCost <= acct.Balance. The rest are queued.
	txs         []*entry
	nexec       int
	pendingCost uint64
}

// pendingNonce is the nonce the sender's next executable tx must carry.
func (s *sender) pendingNonce() uint64 { return s.acct.Nonce + uint64(s.nexec) }

// find returns the position of nonce in txs and whether a tx holds it.
func (s *sender) find(nonce uint64) (int, bool) {
	return slices.BinarySearchFunc(s.txs, nonce, func(e *entry, n uint64) int { return cmp.Compare(e.tx.Nonce, n) })
}

// costBefore is the cost of the executable txs before position i (i <= nexec).
func (s *sender) costBefore(i int) uint64 {
	if i >= s.nexec {
		return s.pendingCost
	}
	var c uint64
	for _, e := range s.txs[:i] {
		c += e.cost
	}
	return c
}

// Pool is the transaction pool. See the package documentation for its rules
// and its concurrency contract.
type Pool struct {
	cfg   Config
	g     *chain.Genesis
	state StateView
	sigs  *SigCache // shared verified signatures; nil = verify every tx

	mu         sync.RWMutex
	byID       map[chain.Hash]*entry
	senders    map[chain.Address]*sender
	execHeap   entryHeap // executable, cheapest (first to evict) on top
	queuedHeap entryHeap // queued, cheapest on top
	timeHeap   entryHeap // all, oldest on top
	bytes      int
	recent     recentSet
	// senderOver is set when a reorg re-add took a sender past
	// MaxPerSender; trim then scans the senders.
	senderOver bool
}

// New returns an empty pool with the given limits (zero fields take their
// defaults) for the chain g, reading confirmed state from state. g must be
// valid and not modified afterwards.
func New(cfg Config, g *chain.Genesis, state StateView, opts ...Option) (*Pool, error) {
	if g == nil || state == nil {
		return nil, errors.New("mempool: nil genesis or state view")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pool{
		cfg:     cfg,
		g:       g,
		state:   state,
		byID:    make(map[chain.Hash]*entry),
		senders: make(map[chain.Address]*sender),
		recent:  newRecentSet(cfg.MaxRecent),
	}
	for _, o := range opts {
		o(p)
	}
	feeIdx := func(e *entry) *int { return &e.feeIdx }
	p.execHeap = entryHeap{less: evictLess, index: feeIdx}
	p.queuedHeap = entryHeap{less: evictLess, index: feeIdx}
	p.timeHeap = entryHeap{less: ageLess, index: func(e *entry) *int { return &e.timeIdx }}
	return p, nil
}

// Option configures a Pool beyond its Config.
type Option func(*Pool)

// WithSigCache shares c with other pools of the same chain in this process:
// a signature one of them verified is not verified again.
func WithSigCache(c *SigCache) Option { return func(p *Pool) { p.sigs = c } }

// sigVerdict is what a caller already knows of a tx's signature.
type sigVerdict uint8

const (
	sigUnchecked sigVerdict = iota // not checked yet: checkTx checks it
	sigGood                        // verified in a batch just now
	sigBad                         // failed in a batch just now: final
)

// checkTx runs the stateless checks, and the signature check unless its
// verdict is known: from this call's batch (sig), or, when it verified, a
// pool sharing the cache.
func (p *Pool) checkTx(tx *chain.Tx, id chain.Hash, sig sigVerdict) error {
	switch {
	case sig == sigBad:
		return p.g.CheckTxSigChecked(tx, false)
	case sig == sigGood || (p.sigs != nil && p.sigs.Has(id)):
		if err := p.g.CheckTxUnsigned(tx); err != nil {
			return err
		}
	default:
		if err := p.g.CheckTx(tx); err != nil {
			return err
		}
	}
	if p.sigs != nil {
		p.sigs.Add(id)
	}
	return nil
}

// Config returns the pool's limits, defaults filled in.
func (p *Pool) Config() Config { return p.cfg }

func ruleErr(r chain.Reason, format string, args ...any) error {
	return &chain.RuleError{Reason: r, TxIndex: -1, Detail: fmt.Sprintf(format, args...)}
}

// codeOf maps a CheckTxState rejection onto a Code.
func codeOf(err error) Code {
	r, _ := chain.ReasonOf(err)
	switch r {
	case chain.ReasonFeeTooLow:
		return FeeTooLow
	case chain.ReasonInsufficientBalance:
		return InsufficientFunds
	case chain.ReasonNonceTooLow:
		return NonceTooLow
	case chain.ReasonNonceTooHigh:
		return NonceTooHigh
	}
	return Invalid
}

// Add validates tx and adds it to the pool; now is its arrival time (for
// the TTL). The fee minimum and the sender rules are checked first, under
// the read lock, then the signature with no lock held, then everything
// again under the write lock before the pool changes. See Code for the
// outcomes.
func (p *Pool) Add(tx *chain.Tx, now time.Time) Result {
	if tx == nil {
		return Result{Code: Invalid, Err: ruleErr(chain.ReasonMalformed, "nil tx")}
	}
	return p.add(tx, tx.ID(), now, sigUnchecked)
}

// AddEncoded decodes a transaction from untrusted bytes (a peer's or an RPC
// client's) and adds it like Add. A body that does not decode is Invalid,
// with ReasonTxTooLarge or ReasonMalformed and a zero ID. The id is the
// body's SHA-256, the tx id, since the encoding is canonical.
func (p *Pool) AddEncoded(body []byte, now time.Time) Result {
	tx, err := decodeBody(body)
	if err != nil {
		return Result{Code: Invalid, Err: err}
	}
	return p.add(tx, sha256.Sum256(body), now, sigUnchecked)
}

// decodeBody decodes an untrusted encoded tx, with the rule error AddEncoded
// reports for one that is oversize or does not decode.
func decodeBody(body []byte) (*chain.Tx, error) {
	if len(body) > chain.MaxTxSize {
		return nil, ruleErr(chain.ReasonTxTooLarge, "%d bytes exceeds wire cap %d", len(body), chain.MaxTxSize)
	}
	tx, err := chain.DecodeTx(body)
	if err != nil {
		return nil, &chain.RuleError{Reason: chain.ReasonMalformed, TxIndex: -1, Err: err}
	}
	return tx, nil
}

// AddEncodedBatch adds encoded transactions as AddEncoded would one after
// the other, in order, with the same results, but checks their signatures
// together (chain.VerifyTxSigs: about half the cost per signature in
// batches of dozens). Only txs that pass the cheap checks under the pool's
// current state go into the batch, so junk a map lookup turns away costs
// no signature check here either; a tx turned away before the batch that
// fits by its turn (an earlier one filled its nonce gap) is checked alone.
func (p *Pool) AddEncodedBatch(bodies [][]byte, now time.Time) []Result {
	out := make([]Result, len(bodies))
	txs := make([]*chain.Tx, len(bodies))
	ids := make([]chain.Hash, len(bodies))
	var batch []*chain.Tx
	var at []int // batch[k] is txs[at[k]]
	for i, body := range bodies {
		tx, err := decodeBody(body)
		if err != nil {
			out[i] = Result{Code: Invalid, Err: err}
			continue
		}
		txs[i], ids[i] = tx, sha256.Sum256(body)
		if p.worthSigCheck(tx, ids[i], now) {
			batch = append(batch, tx)
			at = append(at, i)
		}
	}
	sig := make([]sigVerdict, len(bodies))
	for k, ok := range chain.VerifyTxSigs(p.g.ChainID, batch) {
		sig[at[k]] = sigBad
		if ok {
			sig[at[k]] = sigGood
		}
	}
	for i, tx := range txs {
		if tx != nil {
			out[i] = p.add(tx, ids[i], now, sig[i])
		}
	}
	return out
}

// worthSigCheck reports whether add would come to tx's signature check
// under the pool's state now: the fee and precheck pass, the cheap
// stateless checks pass, and no pool sharing the cache verified it.
func (p *Pool) worthSigCheck(tx *chain.Tx, id chain.Hash, now time.Time) bool {
	if tx.Fee < p.g.MinFee || (p.sigs != nil && p.sigs.Has(id)) || p.g.CheckTxUnsigned(tx) != nil {
		return false
	}
	code, _ := p.precheck(tx, id, now)
	return code == 0
}

func (p *Pool) add(tx *chain.Tx, id chain.Hash, now time.Time, sig sigVerdict) Result {
	// Cheap policy before the signature, as Bitcoin Core runs its policy
	// checks before script checks: a tx the state rules out is rejected
	// for the price of a map lookup. Such a tx may carry a bad signature
	// and go unpenalized, but it cost us nothing to turn away. A tx whose
	// signature a batch verified passed them just before the batch
	// (worthSigCheck), and addLocked judges it again under the lock; one
	// the batch refused is prechecked again, as it would have been alone
	// (an earlier tx of the batch may rule it out first).
	if tx.Fee < p.g.MinFee {
		return Result{Code: FeeTooLow, ID: id, Err: ruleErr(chain.ReasonFeeTooLow, "fee %d below minimum %d", tx.Fee, p.g.MinFee)}
	}
	if sig != sigGood {
		if code, err := p.precheck(tx, id, now); code != 0 {
			return Result{Code: code, ID: id, Err: err}
		}
	}
	if err := p.checkTx(tx, id, sig); err != nil {
		return Result{Code: Invalid, ID: id, Err: err}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	trimmed := p.trim()
	r := p.addLocked(tx, id, now, false)
	if len(trimmed) > 0 {
		r.Evicted = append(trimmed, r.Evicted...)
	}
	return r
}

// addLocked is Add after the stateless checks. reorg marks a transaction
// of a disconnected block: it is re-admitted without the nonce-gap, sender,
// count and byte limits (trim restores them later) and replaces a
// conflicting held transaction without a fee bump.
func (p *Pool) addLocked(tx *chain.Tx, id chain.Hash, now time.Time, reorg bool) (r Result) {
	r.ID = id
	if _, ok := p.byID[id]; ok {
		r.Code, r.Err = AlreadyKnown, ErrKnown
		return r
	}
	if !reorg && p.recent.has(id) {
		r.Code, r.Err = AlreadyKnown, ErrIncluded
		return r
	}
	s := p.senders[tx.From]
	if s == nil {
		s = &sender{addr: tx.From, acct: p.state.Account(tx.From)}
		p.senders[tx.From] = s
	} else {
		p.syncSender(s, p.state.Account(tx.From), false, &r.Evicted, &r.Promoted)
	}
	defer p.gc(s)

	e := newEntry(tx, id, now, s)
	v := p.judge(e, reorg)
	if v.code != 0 {
		r.Code, r.Err = v.code, v.err
		return r
	}
	old, exec := v.old, v.exec
	var out []*entry // leaving the pool to make room
	if v.trade != nil {
		out = append(out, v.trade)
	}
	if !reorg {
		victims, err := p.makeRoom(e, exec, old, out)
		if err != nil {
			r.Code, r.Err = PoolFull, err
			return r
		}
		out = append(out, victims...)
	}

	if old != nil {
		p.remove(old)
		r.Evicted = append(r.Evicted, old.id)
	}
	var others map[*sender]bool // victims' senders, relinked below
	for _, v := range out {
		p.remove(v)
		r.Evicted = append(r.Evicted, v.id)
		if v.s != s {
			if others == nil {
				others = make(map[*sender]bool)
			}
			others[v.s] = true
		}
	}
	for o := range others {
		p.relink(o, nil, &r.Evicted)
		p.gc(o)
	}
	p.insert(e, exec)
	p.relink(s, &r.Promoted, &r.Evicted)
	if reorg && len(s.txs) > p.cfg.MaxPerSender {
		p.senderOver = true
	}

	switch {
	case old != nil:
		r.Code = Replaced
	case e.exec:
		r.Code = Added
	default:
		r.Code = Queued
	}
	r.Executable = e.exec
	return r
}

func newEntry(tx *chain.Tx, id chain.Hash, now time.Time, s *sender) *entry {
	cost, _ := tx.Cost() // CheckTx rules out overflow
	return &entry{tx: tx, id: id, size: tx.Size(), cost: cost, added: now, s: s, feeIdx: -1, timeIdx: -1}
}

// verdict is what the per-sender rules say about a candidate entry.
type verdict struct {
	code  Code   // zero: admissible, subject to room
	err   error  // why not
	old   *entry // held tx with the same nonce, to be replaced
	trade *entry // the full sender's highest queued tx, to make way
	exec  bool   // the candidate would be executable
}

// judge applies the per-sender rules to e against e.s, which must be
// synced to the confirmed state; it changes nothing, so Add also runs it
// under the read lock before the signature check, rejecting what the
// state rules out without spending a signature verification on it (the
// DETER flood is mostly such txs). reorg relaxes the rules for a tx of a
// disconnected block: no nonce gap, no bump, no sender limit.
func (p *Pool) judge(e *entry, reorg bool) (v verdict) {
	s, tx := e.s, e.tx
	nonce := tx.Nonce
	if nonce < s.acct.Nonce {
		v.code, v.err = NonceTooLow, ruleErr(chain.ReasonNonceTooLow, "nonce %d, sender's confirmed nonce is %d", nonce, s.acct.Nonce)
		return v
	}
	i, found := s.find(nonce)
	if found {
		v.old = s.txs[i]
	}
	pn := s.pendingNonce()
	// An executable tx takes the next nonce or replaces an executable one:
	// nonces below pn are all held, and none is queued at pn.
	v.exec = nonce <= pn
	if v.old == nil && !reorg && nonce > pn && nonce-pn > uint64(p.cfg.MaxNonceGap) {
		v.code, v.err = NonceTooHigh, ruleErr(chain.ReasonNonceTooHigh, "nonce %d is more than %d past pending nonce %d", nonce, p.cfg.MaxNonceGap, pn)
		return v
	}
	// Funds: the confirmed balance less what the sender's earlier pending
	// txs spend. For a queued tx the gap's cost is unknown; this is the
	// most it could have, and relink checks again on promotion.
	avail := s.acct.Balance - s.pendingCost
	if v.exec {
		avail = s.acct.Balance - s.costBefore(i)
	}
	if err := chain.CheckTxState(tx, chain.Account{Balance: avail, Nonce: nonce}, p.g.MinFee); err != nil {
		v.code, v.err = codeOf(err), err
		return v
	}
	if reorg {
		return v
	}
	if v.old != nil && !p.bumpOK(v.old, e) {
		v.code = FeeTooLow
		v.err = fmt.Errorf("%w: fee %d replacing %d needs +%d%% and no lower fee rate", ErrReplaceUnderpriced, tx.Fee, v.old.tx.Fee, p.cfg.ReplaceBumpPercent)
		return v
	}
	if v.old == nil && len(s.txs) >= p.cfg.MaxPerSender {
		// A full sender may trade its highest queued tx for a lower nonce,
		// which is closer to executable; anything else waits.
		last := s.txs[len(s.txs)-1]
		if last.exec || last.tx.Nonce < nonce {
			v.code, v.err = PoolFull, fmt.Errorf("%w: %d held", ErrSenderFull, len(s.txs))
			return v
		}
		v.trade = last
	}
	return v
}

// precheck runs the cheap checks of Add under the read lock: already
// known, then judge if the pool's view of the sender is current (if not,
// addLocked re-syncs it and judges under the write lock).
func (p *Pool) precheck(tx *chain.Tx, id chain.Hash, now time.Time) (Code, error) {
	acct := p.state.Account(tx.From)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if _, ok := p.byID[id]; ok {
		return AlreadyKnown, ErrKnown
	}
	if p.recent.has(id) {
		return AlreadyKnown, ErrIncluded
	}
	s := p.senders[tx.From]
	if s == nil {
		s = &sender{addr: tx.From, acct: acct}
	} else if s.acct != acct {
		return 0, nil
	}
	v := p.judge(newEntry(tx, id, now, s), false)
	return v.code, v.err
}

// bumpOK reports whether n may replace old: a fee at least
// ReplaceBumpPercent higher (and at least 1 unit higher, so a zero fee
// cannot be replaced for free), and a fee rate no lower (a larger tx must
// pay for its bytes too, as BIP125 requires).
func (p *Pool) bumpOK(old, n *entry) bool {
	if n.tx.Fee <= old.tx.Fee || rateCmp(n, old) < 0 {
		return false
	}
	// n.Fee * 100 >= old.Fee * (100 + bump), in 128 bits.
	nh, nl := bits.Mul64(n.tx.Fee, 100)
	oh, ol := bits.Mul64(old.tx.Fee, uint64(100+p.cfg.ReplaceBumpPercent))
	return nh > oh || (nh == oh && nl >= ol)
}

// makeRoom chooses what must leave so that n fits: within MaxTxs and
// MaxBytes, and within MaxQueued if n is a new queued tx. old (replaced by
// n) and pre (already leaving) count as freed. A new executable tx evicts
// queued txs first, whatever they pay, then the cheapest executable txs
// with their sender's later nonces, each of a strictly lower fee rate than
// n and none an ancestor of n. A queued tx may only evict queued txs of a
// strictly lower fee rate. On failure nothing changes.
func (p *Pool) makeRoom(n *entry, exec bool, old *entry, pre []*entry) ([]*entry, error) {
	needCount := len(p.byID) + 1 - p.cfg.MaxTxs
	needBytes := p.bytes + n.size - p.cfg.MaxBytes
	needQueued := 0
	if !exec && old == nil {
		needQueued = p.queuedHeap.len() + 1 - p.cfg.MaxQueued
	}
	if old != nil {
		needCount--
		needBytes -= old.size
	}
	for _, v := range pre {
		needCount--
		needBytes -= v.size
		if !v.exec {
			needQueued--
		}
	}
	if needCount <= 0 && needBytes <= 0 && needQueued <= 0 {
		return nil, nil
	}
	failErr := ErrPoolFull
	if needQueued > 0 {
		failErr = ErrQueueFull
	}

	leaving := make(map[*entry]bool, len(pre)+2)
	if old != nil {
		leaving[old] = true
	}
	for _, v := range pre {
		leaving[v] = true
	}
	var victims, popped []*entry
	take := func(v *entry) {
		leaving[v] = true
		victims = append(victims, v)
		needCount--
		needBytes -= v.size
		if !v.exec {
			needQueued--
		}
	}
	fail := func() ([]*entry, error) {
		// Popped entries are all still held: put them back.
		for _, v := range popped {
			if v.exec {
				p.execHeap.push(v)
			} else {
				p.queuedHeap.push(v)
			}
		}
		return nil, failErr
	}
	for needCount > 0 || needBytes > 0 || needQueued > 0 {
		if q := p.queuedHeap.pop(); q != nil {
			popped = append(popped, q)
			if leaving[q] {
				continue
			}
			if !exec && rateCmp(q, n) >= 0 {
				return fail()
			}
			take(q)
			continue
		}
		if !exec || needQueued > 0 {
			return fail()
		}
		v := p.execHeap.pop()
		if v == nil {
			return fail()
		}
		popped = append(popped, v)
		if leaving[v] {
			continue
		}
		if rateCmp(v, n) >= 0 || (v.s == n.s && v.tx.Nonce < n.tx.Nonce) {
			return fail()
		}
		j, _ := v.s.find(v.tx.Nonce)
		for _, d := range v.s.txs[j:] {
			if !leaving[d] {
				take(d)
			}
		}
	}
	// Every popped entry is leaving (a victim, old or pre); remove handles
	// entries already out of their heap.
	return victims, nil
}

// insert adds e to the indexes; the caller relinks e.s.
func (p *Pool) insert(e *entry, exec bool) {
	s := e.s
	i, _ := s.find(e.tx.Nonce)
	s.txs = slices.Insert(s.txs, i, e)
	p.byID[e.id] = e
	p.bytes += e.size
	e.exec = exec
	if exec {
		p.execHeap.push(e)
	} else {
		p.queuedHeap.push(e)
	}
	p.timeHeap.push(e)
}

// remove takes e out of every index; the caller relinks e.s (and gc's it).
func (p *Pool) remove(e *entry) {
	delete(p.byID, e.id)
	s := e.s
	if i, ok := s.find(e.tx.Nonce); ok && s.txs[i] == e {
		s.txs = slices.Delete(s.txs, i, i+1)
	}
	p.bytes -= e.size
	// e is in one of the two fee heaps; remove ignores the other.
	p.execHeap.remove(e)
	p.queuedHeap.remove(e)
	p.timeHeap.remove(e)
}

// dropFrom removes s.txs[i:], recording their ids; the caller relinks s.
func (p *Pool) dropFrom(s *sender, i int, evicted *[]chain.Hash) {
	for j := len(s.txs) - 1; j >= i; j-- {
		e := s.txs[j]
		p.remove(e)
		if evicted != nil {
			*evicted = append(*evicted, e.id)
		}
	}
}

// setExec moves e between the executable and queued heaps.
func (p *Pool) setExec(e *entry, exec bool) {
	if e.exec == exec {
		return
	}
	if exec {
		p.queuedHeap.remove(e)
		p.execHeap.push(e)
	} else {
		p.execHeap.remove(e)
		p.queuedHeap.push(e)
	}
	e.exec = exec
}

// relink recomputes s's executable prefix from its confirmed state:
// consecutive nonces from acct.Nonce while the balance covers them. The
// first tx the balance cannot cover leaves with every later nonce (they
// could never be mined after it); txs after a gap are queued.
func (p *Pool) relink(s *sender, promoted, evicted *[]chain.Hash) {
	next := s.acct.Nonce
	var cum uint64
	i := 0
	for ; i < len(s.txs); i++ {
		e := s.txs[i]
		if e.tx.Nonce != next {
			break
		}
		c := cum + e.cost
		if c < cum || c > s.acct.Balance {
			p.dropFrom(s, i, evicted)
			break
		}
		cum = c
		next++
		if !e.exec {
			p.setExec(e, true)
			if promoted != nil {
				*promoted = append(*promoted, e.id)
			}
		}
	}
	for _, e := range s.txs[i:] {
		p.setExec(e, false)
	}
	s.nexec = i
	s.pendingCost = cum
}

// syncSender brings s to the confirmed state acct: txs with spent nonces
// leave, then the executable prefix is recomputed. It does nothing if acct
// is what s last saw, unless force (the caller removed txs of s).
func (p *Pool) syncSender(s *sender, acct chain.Account, force bool, evicted, promoted *[]chain.Hash) {
	if !force && s.acct == acct {
		return
	}
	s.acct = acct
	k, _ := s.find(acct.Nonce)
	for j := k - 1; j >= 0; j-- {
		e := s.txs[j]
		p.remove(e)
		if evicted != nil {
			*evicted = append(*evicted, e.id)
		}
	}
	p.relink(s, promoted, evicted)
}

// gc forgets a sender with nothing held.
func (p *Pool) gc(s *sender) {
	if len(s.txs) == 0 && p.senders[s.addr] == s {
		delete(p.senders, s.addr)
	}
}

// trim restores every limit after a reorg re-admitted transactions beyond
// them: each sender's highest nonces beyond MaxPerSender, then the cheapest
// queued txs beyond MaxQueued, then, while over MaxTxs or MaxBytes, queued
// txs first and then the cheapest executable txs with their later nonces.
func (p *Pool) trim() (evicted []chain.Hash) {
	if p.senderOver {
		for _, s := range p.senders {
			if len(s.txs) > p.cfg.MaxPerSender {
				p.dropFrom(s, p.cfg.MaxPerSender, &evicted)
				p.relink(s, nil, &evicted)
			}
		}
		p.senderOver = false
	}
	for p.queuedHeap.len() > p.cfg.MaxQueued {
		q := p.queuedHeap.peek()
		p.remove(q)
		evicted = append(evicted, q.id)
		p.gc(q.s)
	}
	for len(p.byID) > p.cfg.MaxTxs || p.bytes > p.cfg.MaxBytes {
		if q := p.queuedHeap.peek(); q != nil {
			p.remove(q)
			evicted = append(evicted, q.id)
			p.gc(q.s)
			continue
		}
		v := p.execHeap.peek()
		j, _ := v.s.find(v.tx.Nonce)
		p.dropFrom(v.s, j, &evicted)
		p.relink(v.s, nil, &evicted)
		p.gc(v.s)
	}
	if len(evicted) > 0 {
		log.Debugw("trimmed pool to its limits", "evicted", len(evicted))
	}
	return evicted
}

// knownErr returns ErrKnown or ErrIncluded if id is held or recently
// included, nil otherwise.
func (p *Pool) knownErr(id chain.Hash) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if _, ok := p.byID[id]; ok {
		return ErrKnown
	}
	if p.recent.has(id) {
		return ErrIncluded
	}
	return nil
}

// Has reports whether the pool holds the transaction (executable or
// queued).
func (p *Pool) Has(id chain.Hash) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	_, ok := p.byID[id]
	return ok
}

// Known reports whether the pool holds the transaction or a recently
// connected block included it: what the relay's HasTx needs, so it does not
// fetch a just-mined transaction again.
func (p *Pool) Known(id chain.Hash) bool { return p.knownErr(id) != nil }

// GetEncoded returns a held transaction's canonical encoding (a fresh
// copy), what a peer's request for it is answered with.
func (p *Pool) GetEncoded(id chain.Hash) ([]byte, bool) {
	tx, ok := p.Get(id)
	if !ok {
		return nil, false
	}
	return tx.Encode(), true
}

// Get returns a held transaction. It is shared: do not modify it.
func (p *Pool) Get(id chain.Hash) (*chain.Tx, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if e, ok := p.byID[id]; ok {
		return e.tx, true
	}
	return nil, false
}

// PendingNonce returns the nonce a's next transaction should carry: its
// confirmed nonce plus its executable transactions in the pool.
func (p *Pool) PendingNonce(a chain.Address) uint64 {
	acct := p.state.Account(a)
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := p.senders[a]
	if s == nil || s.acct.Nonce != acct.Nonce {
		// Not held, or the store moved and the pool has not heard yet:
		// the pool's chain for a is not anchored at the confirmed nonce.
		if s != nil && s.acct.Nonce < acct.Nonce {
			return max(acct.Nonce, s.pendingNonce())
		}
		return acct.Nonce
	}
	return s.pendingNonce()
}

// Stats summarizes the pool.
type Stats struct {
	Count   int // transactions held, queued ones included
	Bytes   int // sum of their encoded sizes
	Queued  int // transactions waiting for a nonce gap to fill
	Senders int // distinct senders with a transaction held
}

// Stats returns the pool's current totals.
func (p *Pool) Stats() Stats {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return Stats{Count: len(p.byID), Bytes: p.bytes, Queued: p.queuedHeap.len(), Senders: len(p.senders)}
}
