package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	badger "github.com/dgraph-io/badger/v4"
)

// batch collects the writes of one logical commit (one block connected, one
// reorg, one side block stored). With dedup, the last write to a key wins,
// so a reorg can delete an old branch's index entries and then set the new
// branch's without caring whether they overlap; a plain extension writes
// distinct keys and skips the map (a 1 MB block writes 5,000 keys).
type batch struct {
	ops   []keyedOp
	index map[string]int // key -> position in ops; nil without dedup
}

type op struct {
	val []byte
	del bool
}

// keyedOp is one write.
type keyedOp struct {
	key []byte
	op
}

func newBatch(sizeHint int, dedup bool) *batch {
	b := &batch{ops: make([]keyedOp, 0, sizeHint)}
	if dedup {
		b.index = make(map[string]int, sizeHint)
	}
	return b
}

func (b *batch) put(k []byte, o op) {
	if b.index != nil {
		if i, ok := b.index[string(k)]; ok {
			b.ops[i].op = o
			return
		}
		b.index[string(k)] = len(b.ops)
	}
	b.ops = append(b.ops, keyedOp{key: k, op: o})
}

func (b *batch) set(k, v []byte) { b.put(k, op{val: v}) }
func (b *batch) del(k []byte)    { b.put(k, op{del: true}) }

// sorted returns the ops in key order, which makes a journal deterministic.
func (b *batch) sorted() []keyedOp {
	out := slices.Clone(b.ops)
	slices.SortFunc(out, func(x, y keyedOp) int { return bytes.Compare(x.key, y.key) })
	return out
}

func apply(txn *badger.Txn, o keyedOp) error {
	if o.del {
		return txn.Delete(o.key)
	}
	return txn.Set(o.key, o.val)
}

// commit writes the batch atomically. The common case is one badger
// transaction. A batch too big for one (badger refuses transactions larger
// than 15% of a memtable: a deep reorg of full blocks, or a full block in a
// small in-memory store) goes through commitLarge, which is atomic for
// readers of this Store and, on disk, across crashes.
func (s *Store) commit(b *batch) error {
	err := s.commitOps(b)
	if err != nil {
		// Whether any of it landed is unknown.
		s.tipAccts.forget()
		return err
	}
	s.tipAccts.committed(b.ops)
	return nil
}

// commitOps writes b in one badger transaction, or through commitLarge
// when it does not fit one.
func (s *Store) commitOps(b *batch) error {
	if s.forceLarge {
		return s.commitLarge(b.sorted())
	}
	txn := s.db.NewTransaction(true)
	// One allocation for the entries instead of one per Set (a full block
	// writes thousands).
	ents := make([]badger.Entry, len(b.ops))
	for i, o := range b.ops {
		var err error
		if o.del {
			err = txn.Delete(o.key)
		} else {
			ents[i].Key, ents[i].Value = o.key, o.val
			err = txn.SetEntry(&ents[i])
		}
		if err != nil {
			txn.Discard()
			if errors.Is(err, badger.ErrTxnTooBig) {
				return s.commitLarge(b.sorted())
			}
			return fmt.Errorf("store: write: %w", err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// journalPartBytes bounds one journal part. Parts are values in the value
// log (disk stores keep values above valueThreshold there), so the bound only
// has to stay well below valueLogFileSize; 4 MiB keeps a part's encoding
// buffer small.
const journalPartBytes = 4 << 20

// commitLarge writes ops in as many badger transactions as they need.
// Queries are held off (s.view) while they are applied, so that none sees
// half of them. On disk it
// first writes the ops as a journal (a redo log): parts, then a header that
// makes the journal live. Open replays a live journal, so a crash in the
// middle of applying leaves nothing half done; a crash before the header is
// written leaves the old state and some garbage parts that Open deletes.
func (s *Store) commitLarge(ops []keyedOp) error {
	s.largeCommits++
	log.Debugw("large commit", "ops", len(ops), "journal", !s.inMemory)
	if !s.inMemory {
		parts := encodeJournal(ops)
		for i, p := range parts {
			if err := s.db.Update(func(txn *badger.Txn) error {
				return txn.Set(keyJournalPart(uint32(i)), p)
			}); err != nil {
				return fmt.Errorf("store: journal: %w", err)
			}
		}
		if err := s.db.Update(func(txn *badger.Txn) error {
			return txn.Set(key1(prefixJournal), binary.BigEndian.AppendUint32(nil, uint32(len(parts))))
		}); err != nil {
			return fmt.Errorf("store: journal: %w", err)
		}
		if s.crashAfterJournal {
			s.broken = errSimulatedCrash
			return errSimulatedCrash
		}
	}
	// The journal changes nothing a query reads; hold queries off only
	// while the ops themselves land.
	s.view.Lock()
	err := s.applyChunked(ops)
	s.view.Unlock()
	if err != nil {
		// Half applied: on disk the journal repairs it at the next Open; in
		// memory nothing can. Either way this Store must not go on.
		s.broken = fmt.Errorf("store: large commit failed halfway: %w", err)
		log.Errorw("store broken", "err", err)
		return s.broken
	}
	if !s.inMemory {
		if err := s.clearJournal(); err != nil {
			s.broken = err
			return err
		}
	}
	return nil
}

// errSimulatedCrash is returned by the crashAfterJournal test hook.
var errSimulatedCrash = errors.New("store: simulated crash")

// applyChunked applies ops in order, starting a new transaction whenever the
// current one is full.
func (s *Store) applyChunked(ops []keyedOp) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	n := 0
	for _, o := range ops {
		err := apply(txn, o)
		if errors.Is(err, badger.ErrTxnTooBig) && n > 0 {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = s.db.NewTransaction(true)
			n = 0
			err = apply(txn, o)
		}
		if err != nil {
			return err
		}
		n++
	}
	return txn.Commit()
}

// clearJournal deletes the journal header first (so a crash after it leaves
// no live journal), then its parts.
func (s *Store) clearJournal() error {
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Delete(key1(prefixJournal))
	}); err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	var del []keyedOp
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixJournalP}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			del = append(del, keyedOp{key: it.Item().KeyCopy(nil), op: op{del: true}})
		}
		return nil
	})
	if err == nil {
		err = s.applyChunked(del)
	}
	if err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	return nil
}

// recoverJournal replays a live journal left by a crash during commitLarge,
// then deletes it. Called by Open before anything else reads the store.
func (s *Store) recoverJournal() error {
	var parts [][]byte
	live := false
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key1(prefixJournal))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if len(v) != 4 {
			return corrupt("journal header: %d bytes", len(v))
		}
		live = true
		n := binary.BigEndian.Uint32(v)
		for i := uint32(0); i < n; i++ {
			item, err := txn.Get(keyJournalPart(i))
			if err != nil {
				return fmt.Errorf("journal part %d: %w", i, err)
			}
			p, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			parts = append(parts, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: journal: %w", err)
	}
	if live {
		var ops []keyedOp
		for _, p := range parts {
			o, err := decodeJournalPart(p)
			if err != nil {
				return err
			}
			ops = append(ops, o...)
		}
		log.Warnw("replaying the journal of an interrupted commit", "ops", len(ops))
		if err := s.applyChunked(ops); err != nil {
			return fmt.Errorf("store: journal replay: %w", err)
		}
	}
	return s.clearJournal()
}

// Journal part encoding: a sequence of
//
//	kind[1] (0 set, 1 delete) uvarint(len key) key [uvarint(len val) val]
func encodeJournal(ops []keyedOp) [][]byte {
	var parts [][]byte
	var cur []byte
	for _, o := range ops {
		if len(cur) > 0 && len(cur)+len(o.key)+len(o.val)+24 > journalPartBytes {
			parts = append(parts, cur)
			cur = nil
		}
		if o.del {
			cur = append(cur, 1)
			cur = binary.AppendUvarint(cur, uint64(len(o.key)))
			cur = append(cur, o.key...)
			continue
		}
		cur = append(cur, 0)
		cur = binary.AppendUvarint(cur, uint64(len(o.key)))
		cur = append(cur, o.key...)
		cur = binary.AppendUvarint(cur, uint64(len(o.val)))
		cur = append(cur, o.val...)
	}
	if len(cur) > 0 {
		parts = append(parts, cur)
	}
	return parts
}

func decodeJournalPart(b []byte) ([]keyedOp, error) {
	var ops []keyedOp
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		v := b[k : k+int(n)]
		b = b[k+int(n):]
		return v, true
	}
	for len(b) > 0 {
		kind := b[0]
		b = b[1:]
		if kind > 1 {
			return nil, corrupt("journal: op kind %d", kind)
		}
		k, ok := field()
		if !ok {
			return nil, corrupt("journal: truncated key")
		}
		o := keyedOp{key: bytes.Clone(k), op: op{del: kind == 1}}
		if kind == 0 {
			v, ok := field()
			if !ok {
				return nil, corrupt("journal: truncated value")
			}
			o.val = append([]byte(nil), v...)
		}
		ops = append(ops, o)
	}
	return ops, nil
}
