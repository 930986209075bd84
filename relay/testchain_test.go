package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/rumor-relay/rumor/chain"
)

// This file is a small in-memory chain and pool behind the relay's
// interfaces: the embedding seam exercised by the network tests.
//
// Transactions are arbitrary bytes; a tx's id is sha256(body); a body whose
// first byte is 0xFF is invalid. Blocks use a tiny format:
//
//	header = height[u64] parent[32] txroot[32] salt[u64]   (80 bytes)
//	block  = header uvarint(n) n×(uvarint(len) tx)
//
// txroot = sha256 of the concatenated tx ids, so a block rebuilt with a
// wrong tx fails validation.

const testHeaderSize = 8 + 32 + 32 + 8

var errTestMalformed = errors.New("test chain: malformed")

// notifier lets tests wait for state changes instead of sleeping.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

// waitFor waits until cond holds or ctx ends.
func (n *notifier) waitFor(ctx context.Context, cond func() bool) error {
	for {
		ch := n.changed()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type testPool struct {
	notifier
	mu       sync.Mutex
	txs      map[ID][]byte
	included map[ID]bool
	withhold bool // GetTx finds nothing (a node that announces but never serves)
}

func newTestPool() *testPool {
	return &testPool{txs: make(map[ID][]byte), included: make(map[ID]bool)}
}

func (p *testPool) HasTx(id ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.txs[id]
	return ok || p.included[id]
}

func (p *testPool) GetTx(id ID) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.withhold {
		return nil, false
	}
	b, ok := p.txs[id]
	return b, ok
}

func (p *testPool) AddTx(body []byte) (ID, Verdict, error) {
	if len(body) == 0 {
		return ID{}, Invalid, errTestMalformed
	}
	id := ID(sha256.Sum256(body))
	if body[0] == 0xFF {
		return id, Invalid, fmt.Errorf("test pool: invalid tx %s", id.Short())
	}
	p.mu.Lock()
	if _, ok := p.txs[id]; ok || p.included[id] {
		p.mu.Unlock()
		return id, Known, errors.New("known")
	}
	p.txs[id] = bytes.Clone(body)
	p.mu.Unlock()
	p.notify()
	return id, Accepted, nil
}

func (p *testPool) LookupShortIDs(key chain.ShortIDKey, short []uint64) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	index := make(map[uint64][]byte, len(p.txs))
	dup := make(map[uint64]bool)
	for id, b := range p.txs {
		s := chain.ShortID(key, id)
		if _, ok := index[s]; ok {
			dup[s] = true
		}
		index[s] = b
	}
	out := make([][]byte, len(short))
	for i, s := range short {
		if !dup[s] {
			out[i] = index[s]
		}
	}
	return out
}

func (p *testPool) has(ids ...ID) bool {
	for _, id := range ids {
		if !p.HasTx(id) {
			return false
		}
	}
	return true
}

// blockConnected drops the block's txs from the pool and remembers them as
// included.
func (p *testPool) blockConnected(txs [][]byte) {
	p.mu.Lock()
	for _, tx := range txs {
		id := ID(sha256.Sum256(tx))
		delete(p.txs, id)
		p.included[id] = true
	}
	p.mu.Unlock()
	p.notify()
}

type testBlock struct {
	raw    []byte
	height uint64
	parent ID
}

type testChain struct {
	notifier
	pool     *testPool
	mu       sync.Mutex
	blocks   map[ID]*testBlock
	byHeight map[uint64]ID // best chain
	tipH     uint64
	tipID    ID
	adds     int // AddBlock calls that stored a block
}

var testGenesis = encodeTestBlock(0, ID{}, 0, nil)

func newTestChain(pool *testPool) *testChain {
	c := &testChain{pool: pool, blocks: make(map[ID]*testBlock), byHeight: make(map[uint64]ID)}
	id := ID(sha256.Sum256(testGenesis[:testHeaderSize]))
	c.blocks[id] = &testBlock{raw: testGenesis}
	c.byHeight[0] = id
	c.tipID = id
	return c
}

func txRoot(txs [][]byte) ID {
	h := sha256.New()
	for _, tx := range txs {
		id := sha256.Sum256(tx)
		h.Write(id[:])
	}
	var out ID
	h.Sum(out[:0])
	return out
}

func encodeTestHeader(height uint64, parent ID, root ID, salt uint64) []byte {
	b := make([]byte, 0, testHeaderSize)
	b = binary.BigEndian.AppendUint64(b, height)
	b = append(b, parent[:]...)
	b = append(b, root[:]...)
	return binary.BigEndian.AppendUint64(b, salt)
}

func encodeTestBlock(height uint64, parent ID, salt uint64, txs [][]byte) []byte {
	b := encodeTestHeader(height, parent, txRoot(txs), salt)
	b = binary.AppendUvarint(b, uint64(len(txs)))
	for _, tx := range txs {
		b = binary.AppendUvarint(b, uint64(len(tx)))
		b = append(b, tx...)
	}
	return b
}

func (c *testChain) Tip() (uint64, ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tipH, c.tipID
}

func (c *testChain) HasBlock(id ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.blocks[id]
	return ok
}

func (c *testChain) GetBlock(id ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[id]
	if !ok {
		return nil, false
	}
	return b.raw, true
}

func (c *testChain) BlockIDAt(h uint64) (ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.byHeight[h]
	return id, ok
}

func (c *testChain) ParseHeader(h []byte) (HeaderInfo, error) {
	if len(h) != testHeaderSize {
		return HeaderInfo{}, errTestMalformed
	}
	var info HeaderInfo
	info.ID = sha256.Sum256(h)
	info.Height = binary.BigEndian.Uint64(h)
	copy(info.Parent[:], h[8:40])
	return info, nil
}

func (c *testChain) SplitBlock(b []byte) ([]byte, [][]byte, error) {
	if len(b) < testHeaderSize {
		return nil, nil, errTestMalformed
	}
	hdr, rest := b[:testHeaderSize], b[testHeaderSize:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return nil, nil, errTestMalformed
	}
	rest = rest[k:]
	txs := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l == 0 || l > uint64(len(rest)-k) {
			return nil, nil, errTestMalformed
		}
		txs = append(txs, rest[k:k+int(l)])
		rest = rest[k+int(l):]
	}
	if len(rest) != 0 {
		return nil, nil, errTestMalformed
	}
	return hdr, txs, nil
}

func (c *testChain) AssembleBlock(hdr []byte, txs [][]byte) ([]byte, error) {
	if len(hdr) != testHeaderSize {
		return nil, errTestMalformed
	}
	b := append([]byte(nil), hdr...)
	b = binary.AppendUvarint(b, uint64(len(txs)))
	for _, tx := range txs {
		if len(tx) == 0 {
			return nil, errTestMalformed
		}
		b = binary.AppendUvarint(b, uint64(len(tx)))
		b = append(b, tx...)
	}
	return b, nil
}

func (c *testChain) AddBlock(b []byte) (ID, Verdict, error) {
	hdr, txs, err := c.SplitBlock(b)
	if err != nil {
		return ID{}, Invalid, err
	}
	info, _ := c.ParseHeader(hdr)
	var root ID
	copy(root[:], hdr[40:72])
	if root != txRoot(txs) {
		return info.ID, Invalid, errors.New("test chain: bad tx root")
	}
	for _, tx := range txs {
		if tx[0] == 0xFF {
			return info.ID, Invalid, errors.New("test chain: invalid tx")
		}
	}
	c.mu.Lock()
	if _, ok := c.blocks[info.ID]; ok {
		c.mu.Unlock()
		return info.ID, Known, nil
	}
	parent, ok := c.blocks[info.Parent]
	if !ok {
		c.mu.Unlock()
		return info.ID, Orphan, errors.New("test chain: unknown parent")
	}
	if info.Height != parent.height+1 {
		c.mu.Unlock()
		return info.ID, Invalid, errors.New("test chain: bad height")
	}
	c.blocks[info.ID] = &testBlock{raw: bytes.Clone(b), height: info.Height, parent: info.Parent}
	c.adds++
	best := info.Height > c.tipH
	if best {
		// Rewrite the best-chain index back to the fork point.
		c.tipH, c.tipID = info.Height, info.ID
		for id, h := info.ID, info.Height; ; h-- {
			if cur, ok := c.byHeight[h]; ok && cur == id {
				break
			}
			c.byHeight[h] = id
			if h == 0 {
				break
			}
			id = c.blocks[id].parent
		}
		for h := info.Height + 1; ; h++ {
			if _, ok := c.byHeight[h]; !ok {
				break
			}
			delete(c.byHeight, h)
		}
	}
	c.mu.Unlock()
	if c.pool != nil {
		c.pool.blockConnected(txs)
	}
	c.notify()
	return info.ID, Accepted, nil
}

// build makes a block on top of the current tip with txs.
func (c *testChain) build(salt uint64, txs [][]byte) (block []byte, id ID) {
	h, tip := c.Tip()
	b := encodeTestBlock(h+1, tip, salt, txs)
	return b, ID(sha256.Sum256(b[:testHeaderSize]))
}

var _ TxPool = (*testPool)(nil)
var _ Chain = (*testChain)(nil)
