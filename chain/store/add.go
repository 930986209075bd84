package store

import (
	"errors"
	"fmt"
	"maps"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/rumor-relay/rumor/chain"
)

// MaxReorgDepth is the most blocks a reorg may disconnect. A block whose
// branch leaves the best chain deeper than this is refused with
// chain.ReasonReorgTooDeep, heavier or not, and is not stored. With
// proof-of-authority slots of seconds, 100 blocks is minutes of history:
// far more than a partition heals in on a testnet, and a bound on the work
// (and memory: both branches' blocks are loaded) one reorg can cost.
// go-ethereum's snapshot layers keep 128 blocks of diffs for the same job.
const MaxReorgDepth = 100

// AddStatus says what AddBlock did with a block.
type AddStatus uint8

const (
	// Rejected is the zero AddStatus: AddBlock returned an error.
	Rejected AddStatus = iota
	// Connected: the block is on the best chain now, by extending the tip
	// or by a reorg (AddResult.Disconnected is then non-empty).
	Connected
	// SideChain: the block is valid as far as CheckBlock goes and stored,
	// but its branch is not heavier than the best chain.
	SideChain
	// Known: the block was already stored; nothing changed.
	Known
)

// String names the status for logs and metrics labels.
func (s AddStatus) String() string {
	switch s {
	case Rejected:
		return "rejected"
	case Connected:
		return "connected"
	case SideChain:
		return "side-chain"
	case Known:
		return "known"
	}
	return fmt.Sprintf("add-status(%d)", uint8(s))
}

// AddResult reports what AddBlock changed.
type AddResult struct {
	ID     chain.Hash // the block's id
	Status AddStatus
	// Connected lists the blocks that joined the best chain, oldest first;
	// the added block is last. Empty unless Status is Connected.
	Connected []*chain.Block
	// Disconnected lists the blocks that left the best chain, the old tip
	// first. Callers (the mempool) return their transactions to the pool.
	Disconnected []*chain.Block
}

// AddBlock validates and stores a block and updates the best chain.
//
//   - A stored block returns Known; a block found invalid before returns
//     its *chain.RuleError again, without re-validating.
//   - A block whose parent is unknown returns a *chain.RuleError with
//     chain.ReasonUnknownParent and is not stored: the caller fetches the
//     ancestors and adds them first.
//   - A block that fails g.CheckBlock against its parent (header, proposer,
//     signatures, root, sizes, stateless tx rules) returns that error and is
//     not stored; a block whose parent was found invalid returns
//     chain.ReasonBadParent.
//   - Fork choice: the greatest height wins; on a tie the block seen first
//     (the current tip) stays. A block extending the tip is connected: its
//     transactions are applied to the state (chain.ApplyBlockTxs) and block,
//     height index, tip, tx index, state, and undo record are written in
//     one badger transaction. A side block that makes its branch higher
//     triggers a reorg: the old branch is disconnected with the undo
//     records and the new one connected, in one atomic commit. A block whose
//     transactions fail against the state is marked invalid (with its
//     descendants on the branch) and its error is returned; the best chain
//     and the state are then unchanged.
//   - A branch that forks more than MaxReorgDepth below the tip is refused
//     with chain.ReasonReorgTooDeep.
//
// Any other error is an I/O error. now is the local clock, for the
// timestamp rule.
func (s *Store) AddBlock(b *chain.Block, now time.Time) (AddResult, error) {
	return s.AddBlockVerified(b, now, nil)
}

// AddBlockVerified is AddBlock with chain.Genesis.CheckBlockVerified's
// signature cache: the signature check is skipped for every tx whose id
// verified reports true (a mempool's Has is sound for that). verified nil
// checks every signature.
//
// The stateless checks (signatures above all) run before the store's writer
// lock is taken, so concurrent callers of the store validate in parallel;
// only the state checks and the commit are serialized.
func (s *Store) AddBlockVerified(b *chain.Block, now time.Time, verified func(chain.Hash) bool) (AddResult, error) {
	return s.addBlock(b, now, verified, nil)
}

// AddBlockChecked is AddBlock for a block whose stateless checks the
// caller has run already: b passed this store's genesis's
// chain.Genesis.CheckBlockIDs against its parent's header as stored here
// (stored headers never change), which returned ids. The store skips those
// checks and uses ids for its tx index instead of hashing b's txs again.
// Everything that depends on stored state (known, invalid or missing
// parent, reorg depth, the txs' execution) is checked as in AddBlock.
// Rumor's node runs the checks on the caller's goroutine, so different
// blocks are checked in parallel, and commits on its one import goroutine.
func (s *Store) AddBlockChecked(b *chain.Block, ids []chain.Hash, now time.Time) (AddResult, error) {
	if b != nil && len(ids) != len(b.Txs) {
		return AddResult{}, fmt.Errorf("store: %d tx ids for a block of %d txs", len(ids), len(b.Txs))
	}
	return s.addBlock(b, now, nil, ids)
}

// addBlock adds b; ids non-nil means b passed its stateless checks
// (AddBlockChecked) and ids are its tx ids.
func (s *Store) addBlock(b *chain.Block, now time.Time, verified func(chain.Hash) bool, ids []chain.Hash) (AddResult, error) {
	if b == nil {
		return AddResult{}, &chain.RuleError{Reason: chain.ReasonMalformed, TxIndex: -1, Detail: "nil block"}
	}
	id := b.ID()
	res := AddResult{ID: id}

	// Unlocked pass: CheckBlock depends only on the parent header, which
	// never changes once stored. The locked pass below re-reads everything
	// else (another caller may have added the block or invalidated the
	// parent meanwhile).
	var checked *chain.Header
	known := false
	s.read("precheck", func(txn *badger.Txn) error {
		if _, ok, err := getMeta(txn, id); err != nil || ok {
			known = ok
			return err
		}
		pm, ok, err := getMeta(txn, b.Header.Parent)
		if err == nil && ok && pm.status != StatusInvalid && b.Header.Height != 0 {
			checked = &pm.header
		}
		return err
	})
	if !known && checked != nil && ids == nil {
		if err := s.g.CheckBlockVerified(b, checked, now, verified); err != nil {
			return res, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return res, ErrClosed
	}
	if s.broken != nil {
		return res, s.broken
	}
	// Only this goroutine writes (s.mu), so a read transaction opened now
	// sees exactly the state the commit below will replace.
	txn := s.db.NewTransaction(false)
	defer txn.Discard()

	if m, ok, err := getMeta(txn, id); err != nil {
		return res, err
	} else if ok {
		if m.status == StatusInvalid {
			return res, &chain.RuleError{Reason: m.reason, TxIndex: -1, Detail: "block " + id.Short() + " was found invalid before"}
		}
		res.Status = Known
		return res, nil
	}
	if b.Header.Height == 0 {
		return res, &chain.RuleError{Reason: chain.ReasonBadGenesis, TxIndex: -1, Detail: "a height-0 block that is not our genesis"}
	}
	pm, ok, err := getMeta(txn, b.Header.Parent)
	if err != nil {
		return res, err
	}
	if !ok {
		return res, &chain.RuleError{Reason: chain.ReasonUnknownParent, TxIndex: -1,
			Detail: fmt.Sprintf("parent %s of block %s at height %d", b.Header.Parent.Short(), id.Short(), b.Header.Height)}
	}
	if pm.status == StatusInvalid {
		return res, invalidParent(b.Header.Parent)
	}
	if checked == nil && ids == nil {
		if err := s.g.CheckBlockVerified(b, &pm.header, now, verified); err != nil {
			return res, err
		}
	}

	// Walk back from the parent to the best chain: the blocks passed are the
	// new branch (newest first), the first connected one is the fork point.
	tip := s.tip.Load()
	var branch []branchBlock
	cur, curID := pm, b.Header.Parent
	for cur.status != StatusConnected {
		if cur.status == StatusInvalid {
			return res, invalidParent(curID)
		}
		if tooDeep(tip.header.Height, cur.header.Height-1) {
			return res, reorgTooDeep(tip.header.Height, cur.header.Height-1)
		}
		branch = append(branch, branchBlock{id: curID, meta: cur})
		next := cur.header.Parent
		m, ok, err := getMeta(txn, next)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, corrupt("block %s: parent %s not stored", curID.Short(), next.Short())
		}
		cur, curID = m, next
	}
	forkHeight := cur.header.Height
	if tooDeep(tip.header.Height, forkHeight) {
		return res, reorgTooDeep(tip.header.Height, forkHeight)
	}
	seq := s.seq
	newMeta := blockMeta{status: StatusSide, seq: seq, header: b.Header}

	if b.Header.Height <= tip.header.Height {
		// Not heavier (a tie keeps the first seen): store as a side block.
		bt := newBatch(3, false)
		bt.set(keyID(prefixBlock, id), b.Encode())
		bt.set(keyID(prefixMeta, id), newMeta.encode())
		bt.set(key1(prefixSeq), u64(seq+1))
		if err := s.commit(bt); err != nil {
			return res, err
		}
		s.seq = seq + 1
		res.Status = SideChain
		log.Debugw("side block", "id", id.Short(), "height", b.Header.Height, "fork", forkHeight)
		return res, nil
	}

	// Heavier: connect the branch (oldest first), the new block last.
	for i, j := 0, len(branch)-1; i < j; i, j = i+1, j-1 {
		branch[i], branch[j] = branch[j], branch[i]
	}
	branch = append(branch, branchBlock{id: id, meta: newMeta, block: b, isNew: true, ids: ids})
	return s.reorg(txn, res, tip, forkHeight, branch)
}

// branchBlock is a block of the branch being connected.
type branchBlock struct {
	id    chain.Hash
	meta  blockMeta
	block *chain.Block // loaded lazily for stored blocks
	isNew bool         // the block being added: not stored yet
	ids   []chain.Hash // its tx ids when the caller hashed them already
}

func tooDeep(tipHeight, forkHeight uint64) bool {
	return forkHeight < tipHeight && tipHeight-forkHeight > MaxReorgDepth
}

func reorgTooDeep(tipHeight, forkHeight uint64) error {
	return &chain.RuleError{Reason: chain.ReasonReorgTooDeep, TxIndex: -1,
		Detail: fmt.Sprintf("branch forks at height %d, tip is %d, limit %d", forkHeight, tipHeight, MaxReorgDepth)}
}

// invalidParent is the error for a block descending from an invalid one.
// The chain package has no dedicated reason; ReasonBadParent (the parent is
// not acceptable) is the closest and, like Bitcoin's BLOCK_INVALID_PREV, is
// a penalty.
func invalidParent(parent chain.Hash) error {
	return &chain.RuleError{Reason: chain.ReasonBadParent, TxIndex: -1, Detail: "ancestor " + parent.Short() + " is invalid"}
}

// overlay is the account state during a reorg plan: writes in a map, reads
// falling through to the writer's account cache and then the snapshot.
type overlay struct {
	txn   *badger.Txn
	cache map[chain.Address]chain.Account // Store.acctCache, committed values
	dirty map[chain.Address]chain.Account
	reads map[chain.Address]chain.Account // read from txn, for the cache
	err   error                           // first read error; ApplyBlockTxs's getter cannot return one
}

func (o *overlay) get(a chain.Address) chain.Account {
	if v, ok := o.dirty[a]; ok {
		return v
	}
	if v, ok := o.cache[a]; ok {
		return v
	}
	v, err := getAccount(o.txn, a)
	if err != nil {
		if o.err == nil {
			o.err = err
		}
		return v
	}
	o.reads[a] = v
	return v
}

func (o *overlay) set(a chain.Address, v chain.Account) { o.dirty[a] = v }

// reorg disconnects the best chain down to forkHeight and connects branch
// (oldest first, ending with the block being added), planning every change
// in memory first: nothing is written unless the whole branch is valid.
// With no blocks to disconnect this is the plain extend-the-tip path.
func (s *Store) reorg(txn *badger.Txn, res AddResult, tip *tipInfo, forkHeight uint64, branch []branchBlock) (AddResult, error) {
	hint := 8
	for _, bb := range branch {
		hint += 4
		if bb.block != nil {
			hint += 3 * len(bb.block.Txs)
		}
	}
	ov := &overlay{txn: txn, cache: s.acctCache,
		dirty: make(map[chain.Address]chain.Account, hint/2), reads: make(map[chain.Address]chain.Account)}
	// Whatever happens below, values read from the snapshot are committed
	// state: keep them (the commit's own changes are added after it).
	defer s.cacheAccounts(ov.reads)
	bt := newBatch(hint, tip.header.Height > forkHeight)

	for h := tip.header.Height; h > forkHeight; h-- {
		blk, err := s.disconnect(txn, bt, ov, h)
		if err != nil {
			return res, err
		}
		res.Disconnected = append(res.Disconnected, blk)
	}

	for i := range branch {
		bb := &branch[i]
		if bb.block == nil {
			body, err := getValue(txn, keyID(prefixBlock, bb.id))
			if err != nil {
				return res, err
			}
			if body == nil {
				return res, corrupt("side block %s has no body", bb.id.Short())
			}
			if bb.block, err = chain.DecodeBlock(body); err != nil {
				return res, corrupt("side block %s: %v", bb.id.Short(), err)
			}
		}
		// Hash the tx ids (for the index) and encode a new block while
		// ApplyBlockTxs runs: a 1 MB block has thousands of txs.
		var ids []chain.Hash
		var body []byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			if ids = bb.ids; ids == nil {
				ids = bb.block.TxIDs()
			}
			if bb.isNew {
				body = bb.block.Encode()
			}
		}()
		changes, err := chain.ApplyBlockTxs(bb.block, ov.get, s.g.MinFee)
		<-done
		if ov.err != nil {
			return res, fmt.Errorf("store: reading state: %w", ov.err)
		}
		if err != nil {
			res.Connected, res.Disconnected = nil, nil
			return res, s.invalidate(branch[i:], err)
		}
		undo := make(undoRecord, 0, len(changes))
		for a, acct := range changes {
			undo = append(undo, undoEntry{addr: a, prev: ov.get(a)})
			ov.set(a, acct)
		}
		h := bb.meta.header.Height
		bt.set(keyHeight(h), bb.id[:])
		// The tx index: keys and values carved from two slabs, not two
		// allocations per tx.
		keys := make([]byte, len(ids)*(1+chain.HashSize))
		locs := make([]byte, 0, len(ids)*txLocSize)
		for j, txID := range ids {
			k := keys[j*(1+chain.HashSize) : (j+1)*(1+chain.HashSize) : (j+1)*(1+chain.HashSize)]
			k[0] = prefixTx
			copy(k[1:], txID[:])
			n := len(locs)
			locs = TxLocation{Block: bb.id, Height: h, Index: j}.appendEncode(locs)
			bt.set(k, locs[n:len(locs):len(locs)])
		}
		bt.set(keyID(prefixUndo, bb.id), undo.encode())
		m := bb.meta
		m.status = StatusConnected
		bt.set(keyID(prefixMeta, bb.id), m.encode())
		if bb.isNew {
			bt.set(keyID(prefixBlock, bb.id), body)
			bt.set(key1(prefixSeq), u64(m.seq+1))
		}
		res.Connected = append(res.Connected, bb.block)
	}

	// Account keys and values carved from two slabs.
	const keyLen = 1 + chain.AddressSize
	akeys := make([]byte, 0, len(ov.dirty)*keyLen)
	avals := make([]byte, 0, len(ov.dirty)*accountSize)
	for a, acct := range ov.dirty {
		n := len(akeys)
		akeys = append(append(akeys, prefixAccount), a[:]...)
		k := akeys[n:len(akeys):len(akeys)]
		if acct == (chain.Account{}) {
			bt.del(k)
		} else {
			n = len(avals)
			avals = appendAccount(avals, acct)
			bt.set(k, avals[n:len(avals):len(avals)])
		}
	}
	last := branch[len(branch)-1]
	bt.set(key1(prefixTip), last.id[:])
	start := time.Now()
	err := s.commit(bt)
	s.lastCommit = time.Since(start)
	if err != nil {
		// Whether any of it landed is unknown: forget cached values.
		clear(s.acctCache)
		clear(ov.reads)
		return AddResult{ID: res.ID}, err
	}
	maps.Copy(ov.reads, ov.dirty) // the deferred cacheAccounts stores both
	s.seq = last.meta.seq + 1
	s.tip.Store(&tipInfo{id: last.id, header: last.meta.header})
	res.Status = Connected
	if len(res.Disconnected) > 0 {
		log.Infow("reorg", "fork", forkHeight, "disconnected", len(res.Disconnected),
			"connected", len(res.Connected), "old", tip.id.Short(), "new", last.id.Short(), "height", last.meta.header.Height)
	} else {
		log.Debugw("block connected", "id", last.id.Short(), "height", last.meta.header.Height, "txs", len(last.block.Txs))
	}
	return res, nil
}

// disconnect plans the removal of the best chain's block at height h:
// restores the accounts from its undo record in ov and adds the index
// deletions to bt.
func (s *Store) disconnect(txn *badger.Txn, bt *batch, ov *overlay, h uint64) (*chain.Block, error) {
	v, err := getValue(txn, keyHeight(h))
	if err != nil {
		return nil, err
	}
	id, err := decodeHash(v)
	if err != nil {
		return nil, fmt.Errorf("height %d: %w", h, err)
	}
	m, ok, err := getMeta(txn, id)
	if err != nil {
		return nil, err
	}
	body, err := getValue(txn, keyID(prefixBlock, id))
	if err != nil {
		return nil, err
	}
	uv, err := getValue(txn, keyID(prefixUndo, id))
	if err != nil {
		return nil, err
	}
	if !ok || body == nil || uv == nil {
		return nil, corrupt("best-chain block %s at %d lacks meta, body or undo", id.Short(), h)
	}
	blk, err := chain.DecodeBlock(body)
	if err != nil {
		return nil, corrupt("block %s: %v", id.Short(), err)
	}
	undo, err := decodeUndo(uv)
	if err != nil {
		return nil, err
	}
	for _, e := range undo {
		ov.set(e.addr, e.prev)
	}
	bt.del(keyHeight(h))
	for _, tx := range blk.Txs {
		bt.del(keyID(prefixTx, tx.ID()))
	}
	bt.del(keyID(prefixUndo, id))
	m.status = StatusSide
	bt.set(keyID(prefixMeta, id), m.encode())
	return blk, nil
}

// invalidate marks failed (the branch block whose transactions failed with
// cause) and the rest of the branch after it invalid, dropping their
// bodies, and returns the error for the block being added (the last one).
// The best chain is untouched.
func (s *Store) invalidate(failed []branchBlock, cause error) error {
	reason, ok := chain.ReasonOf(cause)
	if !ok {
		reason = chain.ReasonInvalidTx
	}
	bt := newBatch(2*len(failed)+1, false)
	for i, bb := range failed {
		m := bb.meta
		m.status = StatusInvalid
		m.reason = reason
		if i > 0 {
			m.reason = chain.ReasonBadParent
		}
		bt.set(keyID(prefixMeta, bb.id), m.encode())
		bt.del(keyID(prefixBlock, bb.id))
		if bb.isNew {
			bt.set(key1(prefixSeq), u64(m.seq+1))
		}
	}
	if err := s.commit(bt); err != nil {
		return err
	}
	last := failed[len(failed)-1]
	if last.isNew {
		s.seq = last.meta.seq + 1
	}
	log.Infow("block invalid against state", "id", failed[0].id.Short(), "height", failed[0].meta.header.Height,
		"descendants", len(failed)-1, "err", cause)
	if len(failed) == 1 {
		return cause
	}
	var re *chain.RuleError
	if errors.As(cause, &re) {
		cause = re
	}
	return &chain.RuleError{Reason: chain.ReasonBadParent, TxIndex: -1,
		Detail: "ancestor " + failed[0].id.Short() + " is invalid", Err: cause}
}

// accountCacheSize bounds the writer's cache of committed account values.
// Badger answers a point read by searching every level (a key updated in
// each block has a version in every table), about 2 µs on disk and 10 µs
// in memory; a 1 MB block reads a thousand or more accounts, mostly the
// same active senders block after block. 32,768 entries cover the accounts
// of two worst-case default blocks (13,617 each) at about 3 MiB.
const accountCacheSize = 1 << 15

// cacheAccounts records committed account values in the writer's cache,
// evicting arbitrary entries (Go map order) when it is full. Under s.mu.
func (s *Store) cacheAccounts(vals map[chain.Address]chain.Account) {
	if len(vals) > s.acctCacheMax {
		// One commit bigger than the cache: not worth keeping, but no
		// entry may outlive a change to its account.
		for a := range vals {
			delete(s.acctCache, a)
		}
		return
	}
	if over := len(s.acctCache) + len(vals) - s.acctCacheMax; over > 0 {
		for a := range s.acctCache {
			if _, keep := vals[a]; keep {
				continue
			}
			delete(s.acctCache, a)
			if over--; over <= 0 {
				break
			}
		}
	}
	maps.Copy(s.acctCache, vals)
}
