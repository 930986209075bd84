package node

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay"
)

// ErrQueued is the error AddTx returns with relay.Ignored for a transaction
// the pool now holds but cannot mine yet: its nonce is ahead of a gap. It is
// not announced (the pool's rule: only executable transactions travel, so a
// peer's future nonces cost the network nothing); it is announced when a
// later transaction fills the gap and the pool promotes it. It has a
// Queued() method so the RPC server (which cannot import this package)
// answers tx_send with success and "queued": true.
var ErrQueued error = queuedError{}

type queuedError struct{}

// Error implements error.
func (queuedError) Error() string { return "transaction queued: nonce gap" }

// Queued marks the error for the RPC server.
func (queuedError) Queued() bool { return true }

// PoolRejectError is the error AddTx returns when the pool refuses a
// transaction for a reason of policy rather than a chain rule (pool full,
// replacement underpriced, sender limit). Code is the pool's outcome.
type PoolRejectError struct {
	Code mempool.Code
	Err  error
}

// Error implements error.
func (e *PoolRejectError) Error() string { return fmt.Sprintf("%v: %v", e.Code, e.Err) }

// Unwrap returns the pool's error.
func (e *PoolRejectError) Unwrap() error { return e.Err }

// RejectReason names the outcome for RPC errors.
func (e *PoolRejectError) RejectReason() string { return e.Code.String() }

// chainAdapter is the default relay.Chain and relay.TxPool: rumor's own
// chain (chain/store) and mempool behind the relay's byte-level interfaces.
//
// Verdicts, from the pool's codes: Added, and Replaced of an executable
// transaction, are Accepted (the relay announces them); AlreadyKnown is
// Known; a code whose Penalize() is true (a stateless rule broken) is
// Invalid; everything else, Queued included, is Ignored (held or not, it is
// not forwarded; see ErrQueued). From the store: a block that is new and
// valid, on the best chain or a side branch, is Accepted (peers need side
// blocks too to follow a reorg); a stored one is Known; UnknownParent is
// Orphan; a RuleError whose reason Penalize()s is Invalid; other rule errors
// (a timestamp too far ahead, a reorg too deep: not the sender's fault) and
// I/O errors are Ignored.
//
// Blocks are committed by one goroutine, the importer, together with the
// pool updates and head events they cause, so the pool sees
// BlockDisconnected/BlockConnected in the store's order even when the relay
// validates blocks on several goroutines and the producer adds its own.
// Transactions do not pass through it: the pool serializes itself.
type chainAdapter struct {
	g     *chain.Genesis
	store *store.Store
	pool  *mempool.Pool
	now   func() time.Time

	// Hooks, set before the adapter is shared and never changed. They must
	// not block; onHead runs on the importer, the others on the caller's
	// goroutine or the importer.
	onHead     func(h *chain.Header, id chain.Hash) // a block joined the best chain
	onPending  func(id chain.Hash)                  // a tx became announceable
	onPromoted func(ids []chain.Hash)               // txs became executable without an announcement (promoted from the queue, taken from a side-chain block)

	// imp commits blocks, one at a time, on its own goroutine (see
	// importer); nil until start.
	imp *importer

	// recent serves the bodies of recently mined transactions (see
	// recentServedBlocks).
	recent recentTxs

	// cpu charges modelled CPU time in simulations (nil: none).
	cpu *cpu
}

// recentServedBlocks is how many of the latest connected blocks have their
// transactions kept servable after they leave the pool. A peer that heard
// our announcement a moment before we mined (or received) the block that
// included the tx still asks us for it; answering "not found" would stall
// its fetch for a fallback round and cost us score at that peer. Four
// blocks cover the announce-to-request window (milliseconds) with a wide
// margin even at sub-second block intervals, for at most four blocks'
// worth of memory (4 MiB at the default block size).
const recentServedBlocks = 4

// recentTxs is a ring of per-block maps from tx id to encoding.
type recentTxs struct {
	mu   sync.RWMutex
	ring [recentServedBlocks]map[chain.Hash][]byte
	next int
}

func (r *recentTxs) add(b *chain.Block, ids []chain.Hash) {
	m := make(map[chain.Hash][]byte, len(b.Txs))
	for i, tx := range b.Txs {
		m[ids[i]] = tx.Encode()
	}
	r.mu.Lock()
	r.ring[r.next] = m
	r.next = (r.next + 1) % recentServedBlocks
	r.mu.Unlock()
}

func (r *recentTxs) get(id chain.Hash) ([]byte, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, m := range r.ring {
		if b, ok := m[id]; ok {
			return b, true
		}
	}
	return nil, false
}

var (
	_ relay.Chain        = (*chainAdapter)(nil)
	_ relay.HeaderSource = (*chainAdapter)(nil)
	_ relay.TxBatchPool  = (*chainAdapter)(nil)
	_ relay.PoolIDSource = (*chainAdapter)(nil)
)

// Rumor's chain names txs and blocks by SHA-256 (chain.Hash); the relay's
// ids are the same 32 bytes in its own type (relay.ID), so the adapter
// converts at the seam.

// Tip implements relay.Chain.
func (a *chainAdapter) Tip() (uint64, relay.ID) {
	h, id := a.store.Tip()
	return h.Height, relay.ID(id)
}

// HasBlock implements relay.Chain.
func (a *chainAdapter) HasBlock(id relay.ID) bool { return a.store.HasBlock(chain.Hash(id)) }

// GetBlock implements relay.Chain.
func (a *chainAdapter) GetBlock(id relay.ID) ([]byte, bool) {
	return a.store.BlockBytes(chain.Hash(id))
}

// BlockSize implements relay.BlockSizer from the store's index.
func (a *chainAdapter) BlockSize(id relay.ID) (int, bool) {
	return a.store.BlockSize(chain.Hash(id))
}

// GetHeader implements relay.HeaderSource: from the block's metadata, so
// a headers request never loads or decodes whole blocks.
func (a *chainAdapter) GetHeader(id relay.ID) ([]byte, bool) {
	h, ok := a.store.Header(chain.Hash(id))
	if !ok {
		return nil, false
	}
	return h.Encode(), true
}

// BlockIDAt implements relay.Chain.
func (a *chainAdapter) BlockIDAt(height uint64) (relay.ID, bool) {
	id, ok := a.store.BlockIDAt(height)
	return relay.ID(id), ok
}

var (
	_ relay.HeaderVerifier = (*chainAdapter)(nil)
	_ relay.BlockSizer     = (*chainAdapter)(nil)
)

// ParseHeader implements relay.Chain.
func (a *chainAdapter) ParseHeader(b []byte) (relay.HeaderInfo, error) {
	h, err := chain.DecodeHeader(b)
	if err != nil {
		return relay.HeaderInfo{}, err
	}
	// The encoding is canonical, so the id is the hash of the bytes given.
	return relay.HeaderInfo{ID: sha256.Sum256(b), Parent: relay.ID(h.Parent), Height: h.Height}, nil
}

// VerifyHeader implements relay.HeaderVerifier: the proposer's turn and
// signature (chain.Genesis.CheckHeaderAuth). AddBlock checks the signature
// again; one more ed25519 check per block is cheap next to the commit, and
// keeps the store's validation whole on its own.
func (a *chainAdapter) VerifyHeader(b []byte) error {
	h, err := chain.DecodeHeader(b)
	if err != nil {
		return err
	}
	a.cpu.txVerify()
	return a.g.CheckHeaderAuth(h)
}

// VerifyBody implements relay.BodyVerifier: the header's TxRoot is the
// Merkle root of the txs' ids. The encoding is canonical, so a tx's id is
// the hash of the bytes given; bytes that are not a canonical tx hash to
// an id the root does not commit to.
func (a *chainAdapter) VerifyBody(header []byte, txs [][]byte) error {
	h, err := chain.DecodeHeader(header)
	if err != nil {
		return err
	}
	ids := make([]chain.Hash, len(txs))
	for i, tx := range txs {
		ids[i] = sha256.Sum256(tx)
	}
	if chain.MerkleRoot(ids) != h.TxRoot {
		return fmt.Errorf("%w: txs do not match the header's tx root", chain.ErrMalformed)
	}
	return nil
}

// SplitBlock implements relay.Chain.
func (a *chainAdapter) SplitBlock(b []byte) ([]byte, [][]byte, error) {
	blk, err := chain.DecodeBlock(b)
	if err != nil {
		return nil, nil, err
	}
	txs := make([][]byte, len(blk.Txs))
	for i, tx := range blk.Txs {
		txs[i] = tx.Encode()
	}
	// The header is the first HeaderSize bytes of a canonical block.
	return append([]byte(nil), b[:chain.HeaderSize]...), txs, nil
}

// AssembleBlock implements relay.Chain.
func (a *chainAdapter) AssembleBlock(header []byte, txs [][]byte) ([]byte, error) {
	if len(txs) > chain.MaxBlockTxs {
		return nil, fmt.Errorf("%w: %d txs exceeds limit %d", chain.ErrMalformed, len(txs), chain.MaxBlockTxs)
	}
	total := len(header)
	for _, t := range txs {
		total += len(t)
	}
	if total > chain.MaxBlockSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds limit %d", chain.ErrMalformed, total, chain.MaxBlockSize)
	}
	h, err := chain.DecodeHeader(header)
	if err != nil {
		return nil, err
	}
	blk := &chain.Block{Header: *h, Txs: make([]*chain.Tx, len(txs))}
	for i, t := range txs {
		tx, err := chain.DecodeTx(t)
		if err != nil {
			return nil, fmt.Errorf("tx %d: %w", i, err)
		}
		blk.Txs[i] = tx
	}
	return blk.Encode(), nil
}

// AddBlock implements relay.Chain.
func (a *chainAdapter) AddBlock(b []byte) (relay.ID, relay.Verdict, error) {
	blk, err := chain.DecodeBlock(b)
	if err != nil {
		var id relay.ID
		if len(b) >= chain.HeaderSize {
			id = sha256.Sum256(b[:chain.HeaderSize])
		}
		return id, relay.Invalid, &chain.RuleError{Reason: chain.ReasonMalformed, TxIndex: -1, Err: err}
	}
	return a.addBlock(blk)
}

// addBlock stores a decoded block and, if the best chain changed, updates
// the pool and emits head events. The block's stateless checks (signatures
// above all) run on the caller's goroutine, so the blocks of several
// callers are checked in parallel; the commit and its consequences run on
// the importer, one block at a time.
func (a *chainAdapter) addBlock(blk *chain.Block) (relay.ID, relay.Verdict, error) {
	if a.cpu != nil {
		// Charged on the caller's goroutine, so that modelled validations
		// of different blocks overlap as the real ones do.
		unverified := 0
		for _, tx := range blk.Txs {
			if !a.pool.Has(tx.ID()) {
				unverified++
			}
		}
		a.cpu.block(blk.Size(), unverified)
	}
	// The store's stateless checks run here, exactly when the store would
	// run them (a block it does not know, stored or found invalid, on a
	// parent it stores), and with the same answer; the importer then hands
	// the store (and the pool and the served-tx cache) the tx ids they
	// hashed, and the store skips the checks. Without a stored parent the
	// importer's store call checks the block itself.
	var ids []chain.Hash
	if _, _, known := a.store.BlockStatus(blk.ID()); !known && blk.Header.Height != 0 {
		if parent, ok := a.store.Header(blk.Header.Parent); ok {
			var err error
			if ids, err = a.g.CheckBlockIDs(blk, parent, a.now(), a.pool.Has); err != nil {
				return relay.ID(blk.ID()), blockVerdict(err), err
			}
		}
	}
	return a.imp.run(blk, ids)
}

// start starts the importer; stop (after every caller of AddBlock has
// stopped) ends it.
func (a *chainAdapter) start() { a.imp = newImporter(a.commitBlock) }

// stop ends the importer; blocks offered afterwards are Ignored.
func (a *chainAdapter) stop() { a.imp.stop() }

// commitBlock runs on the importer: it stores blk and applies what changed
// to the pool, the recent-tx ring and the head feed, in commit order. ids
// non-nil means addBlock checked blk, and they are its tx ids.
func (a *chainAdapter) commitBlock(blk *chain.Block, ids []chain.Hash) (relay.ID, relay.Verdict, error) {
	now := a.now()
	var res store.AddResult
	var err error
	if ids != nil {
		res, err = a.store.AddBlockChecked(blk, ids, now)
	} else {
		res, err = a.store.AddBlockVerified(blk, now, a.pool.Has)
	}
	if err != nil {
		return relay.ID(blk.ID()), blockVerdict(err), err
	}
	switch res.Status {
	case store.Known:
		return relay.ID(res.ID), relay.Known, errors.New("block already stored")
	case store.SideChain:
		a.offerSideTxs(blk, now)
		return relay.ID(res.ID), relay.Accepted, nil
	}
	for _, d := range res.Disconnected {
		a.pool.BlockDisconnected(d, now)
	}
	var promoted []chain.Hash
	for _, c := range res.Connected {
		cids := ids
		if c != blk || cids == nil {
			cids = c.TxIDs() // a block of the branch below blk
		}
		_, p := a.pool.BlockConnectedIDs(c, cids, now)
		promoted = append(promoted, p...)
		a.recent.add(c, cids)
		if a.onHead != nil {
			h := c.Header
			a.onHead(&h, c.ID())
		}
	}
	// Txs a block made executable (it filled their sender's nonce gap)
	// were queued, so never announced or reported pending here: after a
	// partition heals, a tx often arrives before its predecessor, which
	// then comes only in a block. A later block of the same batch may
	// have mined some of them.
	promoted = slices.DeleteFunc(promoted, func(id chain.Hash) bool { return !a.pool.Has(id) })
	a.notePromoted(promoted)
	if len(res.Disconnected) > 0 {
		log.Infow("reorg", "disconnected", len(res.Disconnected), "connected", len(res.Connected), "tip", res.ID.Short())
	}
	return relay.ID(res.ID), relay.Accepted, nil
}

// offerSideTxs gives the pool the txs of a block stored on a side branch
// that it neither holds nor finds on the best chain, and has those it
// takes as executable announced. Without it a tx that only a losing branch
// carried (the far side of a healed partition mined it) would be pending
// nowhere on the winning side: gossip had announced it only on its own
// side, and reconciliation repairs only what some pool holds. Whatever
// conflicts with the best chain (a nonce it spent) the pool refuses.
func (a *chainAdapter) offerSideTxs(blk *chain.Block, now time.Time) {
	var fresh []chain.Hash
	for _, tx := range blk.Txs {
		id := tx.ID()
		if a.pool.Known(id) {
			continue
		}
		if _, mined := a.store.TxLocation(id); mined {
			continue
		}
		res := a.pool.Add(tx, now)
		if res.Code.Held() && res.Executable {
			fresh = append(fresh, res.ID)
		}
		fresh = append(fresh, res.Promoted...)
	}
	a.notePromoted(fresh)
}

// notePromoted tells the hooks that ids became executable without an
// announcement of their own: each is pending, and all are to be announced.
func (a *chainAdapter) notePromoted(ids []chain.Hash) {
	if len(ids) == 0 {
		return
	}
	if a.onPending != nil {
		for _, id := range ids {
			a.onPending(id)
		}
	}
	if a.onPromoted != nil {
		a.onPromoted(ids)
	}
}

// blockVerdict maps a store error to the relay's verdict.
func blockVerdict(err error) relay.Verdict {
	r, ok := chain.ReasonOf(err)
	switch {
	case !ok:
		return relay.Ignored // I/O, store closed: not the sender's fault
	case r == chain.ReasonUnknownParent:
		return relay.Orphan
	case r.Penalize():
		return relay.Invalid
	default:
		return relay.Ignored
	}
}

// HasTx implements relay.TxPool: held, or recently included in a block.
func (a *chainAdapter) HasTx(id relay.ID) bool { return a.pool.Known(chain.Hash(id)) }

// TxID implements relay.TxPool: SHA-256 of the canonical encoding.
func (a *chainAdapter) TxID(body []byte) (relay.ID, error) {
	if len(body) == 0 || len(body) > chain.MaxTxSize {
		return relay.ID{}, fmt.Errorf("%w: tx of %d bytes", chain.ErrMalformed, len(body))
	}
	return sha256.Sum256(body), nil
}

// GetTx implements relay.TxPool: from the pool, or from the last few
// blocks for a tx mined since it was announced.
func (a *chainAdapter) GetTx(id relay.ID) ([]byte, bool) {
	if tx, ok := a.pool.Get(chain.Hash(id)); ok {
		return tx.Encode(), true
	}
	return a.recent.get(chain.Hash(id))
}

// AddTx implements relay.TxPool.
func (a *chainAdapter) AddTx(body []byte) (relay.ID, relay.Verdict, error) {
	res := a.pool.AddEncoded(body, a.now())
	if checkedSig(res) {
		a.cpu.txVerify()
	}
	r := a.took(res)
	return r.ID, r.Verdict, r.Err
}

// AddTxs implements relay.TxBatchPool: the pool checks the bodies'
// signatures as one batch.
func (a *chainAdapter) AddTxs(bodies [][]byte) []relay.TxAddResult {
	results := a.pool.AddEncodedBatch(bodies, a.now())
	checked := 0
	for _, res := range results {
		if checkedSig(res) {
			checked++
		}
	}
	a.cpu.txVerifyBatch(checked)
	out := make([]relay.TxAddResult, len(results))
	for i, res := range results {
		out[i] = a.took(res)
	}
	return out
}

// checkedSig reports whether the pool (in the CPU model's reckoning)
// checked the signature of the tx behind res, or found it bad: anything
// that decoded and was not already known.
func checkedSig(res mempool.Result) bool {
	return res.Code != mempool.AlreadyKnown && res.ID != (chain.Hash{})
}

// took maps a pool result to the relay's and does what follows an add: the
// pending feed, promoted txs.
func (a *chainAdapter) took(res mempool.Result) relay.TxAddResult {
	v, err := txVerdict(res)
	if v == relay.Accepted && a.onPending != nil {
		a.onPending(res.ID)
	}
	a.notePromoted(res.Promoted)
	return relay.TxAddResult{ID: relay.ID(res.ID), Verdict: v, Err: err}
}

// txVerdict maps a pool result to the relay's verdict and its error.
func txVerdict(res mempool.Result) (relay.Verdict, error) {
	switch {
	case res.Code.Held() && res.Executable:
		return relay.Accepted, nil
	case res.Code.Held():
		return relay.Ignored, ErrQueued
	case res.Code == mempool.AlreadyKnown:
		return relay.Known, res.Err
	case res.Code.Penalize():
		return relay.Invalid, res.Err
	}
	if _, ok := chain.ReasonOf(res.Err); ok {
		return relay.Ignored, res.Err
	}
	return relay.Ignored, &PoolRejectError{Code: res.Code, Err: res.Err}
}

// LookupShortIDs implements relay.TxPool.
func (a *chainAdapter) LookupShortIDs(shortID func(relay.ID) uint64, short []uint64) [][]byte {
	txs := a.pool.LookupShortIDs(func(id chain.Hash) uint64 { return shortID(relay.ID(id)) }, short)
	out := make([][]byte, len(txs))
	for i, tx := range txs {
		if tx != nil {
			out[i] = tx.Encode()
		}
	}
	return out
}

// PendingIDs implements relay.PoolIDSource: the ids a joining peer pulls
// during mempool sync.
func (a *chainAdapter) PendingIDs(max int) []relay.ID {
	ids := a.pool.IDs(max)
	out := make([]relay.ID, len(ids))
	for i, id := range ids {
		out[i] = relay.ID(id)
	}
	return out
}
