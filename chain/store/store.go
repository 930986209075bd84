package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/rumor-relay/rumor/chain"
)

// Options configures a Store.
type Options struct {
	// Dir is the Badger directory, created if missing. "" keeps the whole
	// store in memory (tests, simulations); nothing survives Close.
	Dir string
	// SyncWrites fsyncs every commit before AddBlock returns, so an
	// acknowledged block survives power loss. Without it an acknowledged
	// block survives a crash or kill -9 of the process (Badger's files are
	// memory-mapped and the kernel keeps the pages) but the last commits
	// may be lost on power failure. Ignored in memory.
	SyncWrites bool
}

// ErrClosed is returned by AddBlock after Close.
var ErrClosed = errors.New("store: closed")

// ErrGenesisMismatch is returned by Open when the store was created with a
// different genesis.
var ErrGenesisMismatch = errors.New("store: data was created with a different genesis")

// tipInfo is the cached best block; replaced whole, never mutated.
type tipInfo struct {
	id     chain.Hash
	header chain.Header
}

// Store is the block store and account state of one node. See the package
// documentation for the key layout and the concurrency contract.
type Store struct {
	g         *chain.Genesis
	genesisID chain.Hash
	db        *badger.DB
	inMemory  bool

	// mu serializes writers (AddBlock, Close) and guards seq and broken.
	mu sync.Mutex
	// view is held shared by every query and exclusively by a commit that
	// spans several badger transactions (commitLarge) and by Close, so no
	// query sees half of a commit or a closed database.
	view   sync.RWMutex
	closed bool // under view (and mu to set)

	tip    atomic.Pointer[tipInfo]
	seq    uint64 // next first-seen sequence number; under mu
	broken error  // set when a commit failed halfway; under mu
	// lastCommit is how long the last block commit took in Badger (under
	// mu); the commit benchmark reports it apart from validation.
	lastCommit time.Duration
	// acctCache holds committed account values for the writer's state
	// checks (see accountCacheSize). Under mu; queries never use it.
	acctCache    map[chain.Address]chain.Account
	acctCacheMax int // accountCacheSize; tests lower it
	// tipAccts caches tip accounts for Account (queries); commits write
	// through it.
	tipAccts *tipAccounts
	// largeCommits counts commits that took the chunked path (under mu).
	largeCommits int

	// Test hooks. forceLarge sends every commit through commitLarge;
	// crashAfterJournal makes commitLarge stop once its journal is live, as
	// if the process died there.
	forceLarge        bool
	crashAfterJournal bool
}

// Open opens the store in opts.Dir, or a fresh in-memory store when Dir is
// "". An empty store is initialised with the genesis block at height 0 and
// the genesis accounts; a store created with another genesis is refused
// (ErrGenesisMismatch). A commit interrupted by a crash is completed from
// its journal before Open returns. g must be valid (g.Validate) and must
// not change while the store is open.
//
// Memory: Badger is sized so that many in-memory stores fit in one process
// (see badger.go). An empty in-memory store adds 10.5 MiB of Go heap, almost
// all of it the memtable arena Badger allocates up front, but only 0.25 MiB
// resident (the OS backs the arena as it is written), and 10 goroutines:
// TestMemoryPerStore measures it (20 stores, runtime.MemStats.HeapAlloc
// delta / 20). 100 empty stores thus take about 1 GiB of heap and 25 MiB
// resident; a store that has taken blocks holds up to two arenas (21 MiB)
// plus its data, which in memory is every block it stored, and a cache of
// up to accountCacheSize account values (3 MiB when full). An on-disk store
// with the default genesis allocates 16 MiB memtables (three at most) and
// an 8 MiB block cache.
func Open(g *chain.Genesis, opts Options) (*Store, error) {
	if g == nil {
		return nil, errors.New("store: nil genesis")
	}
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := badger.Open(badgerOptions(g, opts))
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", opts.Dir, err)
	}
	s := &Store{g: g, genesisID: g.ID(), db: db, inMemory: opts.Dir == "",
		acctCache: make(map[chain.Address]chain.Account), acctCacheMax: accountCacheSize,
		tipAccts: newTipAccounts(tipAccountCacheSize)}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	t := s.tip.Load()
	log.Debugw("store open", "dir", opts.Dir, "tip", t.id.Short(), "height", t.header.Height)
	return s, nil
}

// init checks or writes the genesis, replays a journal, loads tip and seq.
func (s *Store) init() error {
	if err := s.recoverJournal(); err != nil {
		return err
	}
	var stored []byte
	var version []byte
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if stored, err = getValue(txn, key1(prefixGenesis)); err != nil {
			return err
		}
		version, err = getValue(txn, key1(prefixVersion))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if stored == nil {
		if err := s.writeGenesis(); err != nil {
			return err
		}
	} else {
		if v, err := decodeU64(version); err != nil || v != formatVersion {
			return fmt.Errorf("store: format version %x, want %d", version, formatVersion)
		}
		if !bytes.Equal(stored, s.genesisID[:]) {
			return fmt.Errorf("%w: stored %x, configured %s", ErrGenesisMismatch, stored, s.genesisID)
		}
	}
	return s.db.View(func(txn *badger.Txn) error {
		v, err := getValue(txn, key1(prefixTip))
		if err != nil {
			return err
		}
		id, err := decodeHash(v)
		if err != nil {
			return fmt.Errorf("tip: %w", err)
		}
		m, ok, err := getMeta(txn, id)
		if err != nil {
			return err
		}
		if !ok || m.status != StatusConnected {
			return corrupt("tip %s has no connected metadata", id.Short())
		}
		s.tip.Store(&tipInfo{id: id, header: m.header})
		v, err = getValue(txn, key1(prefixSeq))
		if err != nil {
			return err
		}
		s.seq, err = decodeU64(v)
		return err
	})
}

func (s *Store) writeGenesis() error {
	gb := s.g.Block()
	id := gb.ID()
	b := newBatch(len(s.g.Accounts)+8, false)
	b.set(key1(prefixVersion), u64(formatVersion))
	b.set(key1(prefixGenesis), id[:])
	b.set(keyID(prefixBlock, id), gb.Encode())
	m := blockMeta{status: StatusConnected, seq: 0, header: gb.Header}
	b.set(keyID(prefixMeta, id), m.encode())
	b.set(keyHeight(0), id[:])
	b.set(key1(prefixTip), id[:])
	b.set(key1(prefixSeq), u64(1))
	for addr, acct := range s.g.State() {
		if acct != (chain.Account{}) {
			b.set(keyAccount(addr), encodeAccount(acct))
		}
	}
	if err := s.commit(b); err != nil {
		return err
	}
	log.Infow("store initialised with genesis", "id", id.Short(), "accounts", len(s.g.Accounts))
	return nil
}

// Close closes the database. Queries after Close report nothing found;
// AddBlock returns ErrClosed. Close waits for a running AddBlock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.view.Lock()
	defer s.view.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.tipAccts.forget() // queries after Close find nothing, cached or not
	return s.db.Close()
}

// Genesis returns the genesis the store was opened with.
func (s *Store) Genesis() *chain.Genesis { return s.g }

// GenesisID returns the genesis block id.
func (s *Store) GenesisID() chain.Hash { return s.genesisID }

// Tip returns a copy of the best block's header and its id. It reads a
// cached value and never blocks.
func (s *Store) Tip() (*chain.Header, chain.Hash) {
	t := s.tip.Load()
	h := t.header
	return &h, t.id
}

// read runs fn in a badger read transaction, unless the store is closed.
// Errors other than "not found" are logged: queries have no error result,
// and a read error here means a broken database, not a missing item.
func (s *Store) read(what string, fn func(txn *badger.Txn) error) bool {
	s.view.RLock()
	defer s.view.RUnlock()
	if s.closed {
		return false
	}
	err := s.db.View(fn)
	if err != nil && !errors.Is(err, errNotFound) {
		log.Errorw("read failed", "what", what, "err", err)
	}
	return err == nil
}

// errNotFound ends a read transaction whose item does not exist.
var errNotFound = errors.New("not found")

// getValue returns a copy of the value at k, or nil if absent.
func getValue(txn *badger.Txn, k []byte) ([]byte, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func getMeta(txn *badger.Txn, id chain.Hash) (blockMeta, bool, error) {
	v, err := getValue(txn, keyID(prefixMeta, id))
	if err != nil || v == nil {
		return blockMeta{}, false, err
	}
	m, err := decodeMeta(v)
	return m, err == nil, err
}

func getAccount(txn *badger.Txn, a chain.Address) (chain.Account, error) {
	v, err := getValue(txn, keyAccount(a))
	if err != nil || v == nil {
		return chain.Account{}, err
	}
	return decodeAccount(v)
}

// HasBlock reports whether the block is stored, on any branch. Blocks
// found invalid are not "had": their bodies are dropped.
func (s *Store) HasBlock(id chain.Hash) bool {
	_, ok := s.Header(id)
	return ok
}

// Header returns the header of a stored block (any branch, not invalid).
func (s *Store) Header(id chain.Hash) (*chain.Header, bool) {
	var h *chain.Header
	s.read("header", func(txn *badger.Txn) error {
		m, ok, err := getMeta(txn, id)
		if err != nil {
			return err
		}
		if !ok || m.status == StatusInvalid {
			return errNotFound
		}
		h = &m.header
		return nil
	})
	return h, h != nil
}

// BlockBytes returns the canonical encoding of a stored block (any branch).
func (s *Store) BlockBytes(id chain.Hash) ([]byte, bool) {
	var body []byte
	s.read("block", func(txn *badger.Txn) error {
		v, err := getValue(txn, keyID(prefixBlock, id))
		if err != nil {
			return err
		}
		if v == nil {
			return errNotFound
		}
		body = v
		return nil
	})
	return body, body != nil
}

// BlockSize returns the encoded size of a stored block (any branch) from
// Badger's index, without reading the block: a server sizes a response, and
// charges for it, before loading it. The size is Badger's estimate, within
// a few bytes of the true one (it guesses the length of the value log
// entry's header).
func (s *Store) BlockSize(id chain.Hash) (int, bool) {
	size := -1
	s.read("block size", func(txn *badger.Txn) error {
		item, err := txn.Get(keyID(prefixBlock, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		size = int(max(item.ValueSize(), 0))
		return nil
	})
	return size, size >= 0
}

// Block returns a stored block (any branch), decoded.
func (s *Store) Block(id chain.Hash) (*chain.Block, bool) {
	body, ok := s.BlockBytes(id)
	if !ok {
		return nil, false
	}
	b, err := chain.DecodeBlock(body)
	if err != nil {
		log.Errorw("stored block does not decode", "id", id.Short(), "err", err)
		return nil, false
	}
	return b, true
}

// BlockIDAt returns the id of the best chain's block at height.
func (s *Store) BlockIDAt(height uint64) (chain.Hash, bool) {
	var id chain.Hash
	ok := s.read("height", func(txn *badger.Txn) error {
		v, err := getValue(txn, keyHeight(height))
		if err != nil {
			return err
		}
		if v == nil {
			return errNotFound
		}
		id, err = decodeHash(v)
		return err
	})
	return id, ok
}

// TxLocation returns where a transaction sits on the best chain.
func (s *Store) TxLocation(id chain.Hash) (TxLocation, bool) {
	var loc TxLocation
	ok := s.read("tx", func(txn *badger.Txn) error {
		v, err := getValue(txn, keyID(prefixTx, id))
		if err != nil {
			return err
		}
		if v == nil {
			return errNotFound
		}
		loc, err = decodeTxLoc(v)
		return err
	})
	return loc, ok
}

// Account returns an account's balance and next nonce at the tip; an
// unknown account is the zero Account.
func (s *Store) Account(a chain.Address) chain.Account {
	acct, ok, gen := s.tipAccts.get(a)
	if ok {
		return acct
	}
	if s.read("account", func(txn *badger.Txn) error {
		var err error
		acct, err = getAccount(txn, a)
		return err
	}) {
		s.tipAccts.fill(a, acct, gen)
	}
	return acct
}

// BlockStatus returns the fork-choice status of a known block, including
// blocks found invalid (with the reason they failed).
func (s *Store) BlockStatus(id chain.Hash) (st Status, reason chain.Reason, ok bool) {
	s.read("status", func(txn *badger.Txn) error {
		m, found, err := getMeta(txn, id)
		if err != nil || !found {
			return err
		}
		st, reason, ok = m.status, m.reason, true
		return nil
	})
	return st, reason, ok
}

// ForEachAccount calls fn for every account with a non-zero balance or
// nonce at the tip, in address order, until fn returns false. It reads one
// consistent snapshot (for RPC dumps, audits and tests). fn must not call
// the Store: the iteration holds the query lock.
func (s *Store) ForEachAccount(fn func(chain.Address, chain.Account) bool) error {
	var iterErr error
	s.read("accounts", func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixAccount}, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			var a chain.Address
			k := item.Key()
			if len(k) != 1+chain.AddressSize {
				iterErr = corrupt("account key of %d bytes", len(k))
				return iterErr
			}
			copy(a[:], k[1:])
			var acct chain.Account
			if err := item.Value(func(v []byte) error {
				var err error
				acct, err = decodeAccount(v)
				return err
			}); err != nil {
				iterErr = err
				return err
			}
			if !fn(a, acct) {
				return nil
			}
		}
		return nil
	})
	if iterErr == nil && s.isClosed() {
		return ErrClosed
	}
	return iterErr
}

func (s *Store) isClosed() bool {
	s.view.RLock()
	defer s.view.RUnlock()
	return s.closed
}
