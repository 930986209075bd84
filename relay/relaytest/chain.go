// Package relaytest is a second chain for the relay: a small in-memory
// chain and mempool behind the relay's interfaces, with rules deliberately
// unlike rumor's own chain, so that tests and examples prove the relay takes
// everything chain-specific from its embedder:
//
//   - a transaction is any byte string (a body whose first byte is 0xFF is
//     invalid) and its id is SHA3-256 of the bytes, not SHA-256;
//   - a block's id is the double SHA-256 of its header, as in Bitcoin;
//   - its limits (Limits) are its own: transactions up to 256 KiB, over
//     rumor's 128 KiB, and blocks up to 1 MiB.
//
// Blocks use a tiny format:
//
//	header = height[u64] parent[32] txroot[32] salt[u64]   (80 bytes)
//	block  = header uvarint(n) n×(uvarint(len) tx)
//
// txroot = SHA-256 of the concatenated tx ids, so a block rebuilt with a
// wrong tx fails validation. Fork choice is the greatest height, first seen
// on ties.
//
// It imports only the relay's leaf packages (relay/wire, relay/syncer), so
// package relay's own tests use it too. Chain and Pool are safe for
// concurrent use: each guards its state with one mutex, never held while
// calling out.
package relaytest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/relay/syncer"
	"github.com/rumor-relay/rumor/relay/wire"
)

// ID, Verdict and HeaderInfo are the relay's types (relay.ID, relay.Verdict
// and relay.HeaderInfo are aliases of these).
type (
	ID         = wire.ID
	Verdict    = syncer.Verdict
	HeaderInfo = syncer.HeaderInfo
)

// HeaderSize is the size of an encoded header.
const HeaderSize = 8 + 32 + 32 + 8

// The chain's limits, to be copied into relay.Config.
const (
	MaxTxBytes    = 256 << 10
	MaxBlockBytes = 1 << 20
	MaxBlockTxs   = 4096
)

// ErrMalformed is wrapped by every format error.
var ErrMalformed = errors.New("relaytest: malformed")

// TxID is the chain's transaction id: SHA3-256 of the bytes.
func TxID(b []byte) ID { return sha3.Sum256(b) }

// BlockID is the chain's block id: double SHA-256 of the encoded header.
func BlockID(header []byte) ID {
	first := sha256.Sum256(header)
	return sha256.Sum256(first[:])
}

// Notifier lets callers wait for state changes instead of sleeping: the
// owner calls Notify after each change, waiters call WaitFor. The zero value
// is ready to use.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *Notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// Notify wakes every WaitFor to check its condition again.
func (n *Notifier) Notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

// WaitFor waits until cond holds or ctx ends; cond is checked again after
// every change.
func (n *Notifier) WaitFor(ctx context.Context, cond func() bool) error {
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

// Pool is the chain's mempool: every valid tx, no fees, no limits beyond
// MaxTxBytes (it is a test chain).
type Pool struct {
	Notifier
	mu       sync.Mutex
	txs      map[ID][]byte
	included map[ID]bool
	withhold bool
	batches  int // AddTxs calls
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{txs: make(map[ID][]byte), included: make(map[ID]bool)}
}

// SetWithhold makes GetTx find nothing: a node that announces but never
// serves.
func (p *Pool) SetWithhold(w bool) {
	p.mu.Lock()
	p.withhold = w
	p.mu.Unlock()
}

// HasTx implements relay.TxPool: held, or included in a block.
func (p *Pool) HasTx(id ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.txs[id]
	return ok || p.included[id]
}

// Has reports whether every id is held or included.
func (p *Pool) Has(ids ...ID) bool {
	for _, id := range ids {
		if !p.HasTx(id) {
			return false
		}
	}
	return true
}

// Count returns the number of pending txs.
func (p *Pool) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.txs)
}

// GetTx implements relay.TxPool.
func (p *Pool) GetTx(id ID) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.withhold {
		return nil, false
	}
	b, ok := p.txs[id]
	return b, ok
}

// TxID implements relay.TxPool.
func (p *Pool) TxID(body []byte) (ID, error) {
	if len(body) == 0 || len(body) > MaxTxBytes {
		return ID{}, fmt.Errorf("%w: tx of %d bytes", ErrMalformed, len(body))
	}
	return TxID(body), nil
}

// AddTx implements relay.TxPool.
func (p *Pool) AddTx(body []byte) (ID, Verdict, error) {
	id, err := p.TxID(body)
	if err != nil {
		return ID{}, syncer.Invalid, err
	}
	if body[0] == 0xFF {
		return id, syncer.Invalid, fmt.Errorf("relaytest: invalid tx %s", id.Short())
	}
	p.mu.Lock()
	if _, ok := p.txs[id]; ok || p.included[id] {
		p.mu.Unlock()
		return id, syncer.Known, errors.New("relaytest: known")
	}
	p.txs[id] = bytes.Clone(body)
	p.mu.Unlock()
	p.Notify()
	return id, syncer.Accepted, nil
}

// AddTxs implements relay.TxBatchPool: AddTx of each body in order.
func (p *Pool) AddTxs(bodies [][]byte) []syncer.TxAddResult {
	p.mu.Lock()
	p.batches++
	p.mu.Unlock()
	out := make([]syncer.TxAddResult, len(bodies))
	for i, b := range bodies {
		out[i].ID, out[i].Verdict, out[i].Err = p.AddTx(b)
	}
	return out
}

// Batches returns how many batches AddTxs took.
func (p *Pool) Batches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.batches
}

// LookupShortIDs implements relay.TxPool.
func (p *Pool) LookupShortIDs(shortID func(ID) uint64, short []uint64) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	index := make(map[uint64][]byte, len(p.txs))
	dup := make(map[uint64]bool)
	for id, b := range p.txs {
		s := shortID(id)
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

// PendingIDs implements relay.PoolIDSource (ids in byte order).
func (p *Pool) PendingIDs(max int) []ID {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]ID, 0, len(p.txs))
	for id := range p.txs {
		ids = append(ids, id)
	}
	sortIDs(ids)
	return ids[:min(len(ids), max)]
}

func sortIDs(ids []ID) {
	slices.SortFunc(ids, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
}

// blockConnected drops the block's txs from the pool and remembers them as
// included.
func (p *Pool) blockConnected(txs [][]byte) {
	p.mu.Lock()
	for _, tx := range txs {
		id := TxID(tx)
		delete(p.txs, id)
		p.included[id] = true
	}
	p.mu.Unlock()
	p.Notify()
}

type block struct {
	raw    []byte
	height uint64
	parent ID
}

// Chain is the chain's block store.
type Chain struct {
	Notifier
	pool     *Pool
	mu       sync.Mutex
	blocks   map[ID]*block
	byHeight map[uint64]ID // best chain
	tipH     uint64
	tipID    ID
	adds     int
	gate     chan struct{}
}

// Genesis is the encoded genesis block every Chain starts from.
var Genesis = EncodeBlock(0, ID{}, 0, nil)

// NewChain returns a chain at genesis whose connected blocks leave pool
// (nil: no pool).
func NewChain(pool *Pool) *Chain {
	c := &Chain{pool: pool, blocks: make(map[ID]*block), byHeight: make(map[uint64]ID)}
	id := BlockID(Genesis[:HeaderSize])
	c.blocks[id] = &block{raw: Genesis}
	c.byHeight[0] = id
	c.tipID = id
	return c
}

// SetGate makes GetBlock wait until gate is closed (nil: no wait): a node
// whose store is slow, to hold request slots in tests.
func (c *Chain) SetGate(gate chan struct{}) {
	c.mu.Lock()
	c.gate = gate
	c.mu.Unlock()
}

// Adds returns how many AddBlock calls stored a block.
func (c *Chain) Adds() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adds
}

// TxRoot is the header's commitment to txs.
func TxRoot(txs [][]byte) ID {
	h := sha256.New()
	for _, tx := range txs {
		id := TxID(tx)
		h.Write(id[:])
	}
	var out ID
	h.Sum(out[:0])
	return out
}

// EncodeHeader encodes a header.
func EncodeHeader(height uint64, parent ID, root ID, salt uint64) []byte {
	b := make([]byte, 0, HeaderSize)
	b = binary.BigEndian.AppendUint64(b, height)
	b = append(b, parent[:]...)
	b = append(b, root[:]...)
	return binary.BigEndian.AppendUint64(b, salt)
}

// EncodeBlock encodes a block of txs.
func EncodeBlock(height uint64, parent ID, salt uint64, txs [][]byte) []byte {
	b := EncodeHeader(height, parent, TxRoot(txs), salt)
	b = binary.AppendUvarint(b, uint64(len(txs)))
	for _, tx := range txs {
		b = binary.AppendUvarint(b, uint64(len(tx)))
		b = append(b, tx...)
	}
	return b
}

// Tip implements relay.Chain.
func (c *Chain) Tip() (uint64, ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tipH, c.tipID
}

// HasBlock implements relay.Chain.
func (c *Chain) HasBlock(id ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.blocks[id]
	return ok
}

// GetBlock implements relay.Chain.
func (c *Chain) GetBlock(id ID) ([]byte, bool) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[id]
	if !ok {
		return nil, false
	}
	return b.raw, true
}

// GetHeader implements relay.HeaderSource: the header is the block's
// first HeaderSize bytes, no decoding needed.
func (c *Chain) GetHeader(id ID) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[id]
	if !ok {
		return nil, false
	}
	return b.raw[:HeaderSize], true
}

// BlockSize implements relay.BlockSizer (it does not wait on the gate:
// sizing reads an index, not the block).
func (c *Chain) BlockSize(id ID) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.blocks[id]
	if !ok {
		return 0, false
	}
	return len(b.raw), true
}

// BlockIDAt implements relay.Chain.
func (c *Chain) BlockIDAt(h uint64) (ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.byHeight[h]
	return id, ok
}

// ParseHeader implements relay.Chain.
func (c *Chain) ParseHeader(h []byte) (HeaderInfo, error) {
	if len(h) != HeaderSize {
		return HeaderInfo{}, fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(h))
	}
	var info HeaderInfo
	info.ID = BlockID(h)
	info.Height = binary.BigEndian.Uint64(h)
	copy(info.Parent[:], h[8:40])
	return info, nil
}

// SplitBlock implements relay.Chain.
func (c *Chain) SplitBlock(b []byte) ([]byte, [][]byte, error) {
	if len(b) < HeaderSize || len(b) > MaxBlockBytes {
		return nil, nil, fmt.Errorf("%w: block of %d bytes", ErrMalformed, len(b))
	}
	hdr, rest := b[:HeaderSize], b[HeaderSize:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) || n > MaxBlockTxs {
		return nil, nil, fmt.Errorf("%w: tx count", ErrMalformed)
	}
	rest = rest[k:]
	txs := make([][]byte, 0, n)
	for range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l == 0 || l > uint64(len(rest)-k) {
			return nil, nil, fmt.Errorf("%w: tx length", ErrMalformed)
		}
		txs = append(txs, rest[k:k+int(l)])
		rest = rest[k+int(l):]
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: trailing bytes", ErrMalformed)
	}
	return hdr, txs, nil
}

// AssembleBlock implements relay.Chain.
func (c *Chain) AssembleBlock(hdr []byte, txs [][]byte) ([]byte, error) {
	if len(hdr) != HeaderSize {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(hdr))
	}
	b := append([]byte(nil), hdr...)
	b = binary.AppendUvarint(b, uint64(len(txs)))
	for _, tx := range txs {
		if len(tx) == 0 {
			return nil, fmt.Errorf("%w: empty tx", ErrMalformed)
		}
		b = binary.AppendUvarint(b, uint64(len(tx)))
		b = append(b, tx...)
	}
	return b, nil
}

// AddBlock implements relay.Chain.
func (c *Chain) AddBlock(b []byte) (ID, Verdict, error) {
	hdr, txs, err := c.SplitBlock(b)
	if err != nil {
		return ID{}, syncer.Invalid, err
	}
	info, _ := c.ParseHeader(hdr)
	var root ID
	copy(root[:], hdr[40:72])
	if root != TxRoot(txs) {
		return info.ID, syncer.Invalid, errors.New("relaytest: bad tx root")
	}
	for _, tx := range txs {
		if tx[0] == 0xFF || len(tx) > MaxTxBytes {
			return info.ID, syncer.Invalid, errors.New("relaytest: invalid tx")
		}
	}
	c.mu.Lock()
	if _, ok := c.blocks[info.ID]; ok {
		c.mu.Unlock()
		return info.ID, syncer.Known, nil
	}
	parent, ok := c.blocks[info.Parent]
	if !ok {
		c.mu.Unlock()
		return info.ID, syncer.Orphan, errors.New("relaytest: unknown parent")
	}
	if info.Height != parent.height+1 {
		c.mu.Unlock()
		return info.ID, syncer.Invalid, errors.New("relaytest: bad height")
	}
	c.blocks[info.ID] = &block{raw: bytes.Clone(b), height: info.Height, parent: info.Parent}
	c.adds++
	if info.Height > c.tipH {
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
	c.Notify()
	return info.ID, syncer.Accepted, nil
}

// Build makes a block with txs on top of the current tip; salt tells apart
// blocks with the same txs.
func (c *Chain) Build(salt uint64, txs [][]byte) (block []byte, id ID) {
	h, tip := c.Tip()
	b := EncodeBlock(h+1, tip, salt, txs)
	return b, BlockID(b[:HeaderSize])
}

// Eventually polls cond on a ticker until it returns nil, failing t when d
// passes first. It is for state that offers no event to wait on (a gossip
// mesh, counters); inside a testing/synctest bubble the ticker is virtual.
func Eventually(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", d, err)
		}
		<-tick.C
	}
}

// ForgedSalt marks a header as made up for AuthChain: a header whose salt
// has this bit set does not verify.
const ForgedSalt = 1 << 63

// AuthChain is a Chain that can authenticate a header alone
// (relay.HeaderVerifier), as a chain whose headers are signed by their
// proposer can, and check a body against its header (relay.BodyVerifier):
// relays on it forward blocks before storing them (cut-through). A header
// verifies unless its salt carries ForgedSalt.
type AuthChain struct{ *Chain }

// VerifyBody implements relay.BodyVerifier: the header's tx root.
func (c AuthChain) VerifyBody(h []byte, txs [][]byte) error {
	if len(h) != HeaderSize {
		return fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(h))
	}
	var root ID
	copy(root[:], h[40:72])
	if root != TxRoot(txs) {
		return errors.New("relaytest: bad tx root")
	}
	return nil
}

// VerifyHeader implements relay.HeaderVerifier.
func (c AuthChain) VerifyHeader(h []byte) error {
	if len(h) != HeaderSize {
		return fmt.Errorf("%w: header of %d bytes", ErrMalformed, len(h))
	}
	if binary.BigEndian.Uint64(h[HeaderSize-8:])&ForgedSalt != 0 {
		return errors.New("relaytest: forged header")
	}
	return nil
}
