package mempool

import (
	"math"
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// chainSim is a tiny store: states by height, moved before the pool hears.
type chainSim struct {
	t      *testing.T
	f      *fixture
	states []map[chain.Address]chain.Account
	blocks []*chain.Block
}

func newChainSim(t *testing.T, f *fixture, genesis map[chain.Address]chain.Account) *chainSim {
	f.st.replace(genesis)
	return &chainSim{t: t, f: f, states: []map[chain.Address]chain.Account{genesis}}
}

func (c *chainSim) tip() map[chain.Address]chain.Account { return c.states[len(c.states)-1] }

// connect applies a block on the tip and tells the pool.
func (c *chainSim) connect(txs ...*chain.Tx) *chain.Block {
	b := block(uint64(len(c.blocks)+1), addr(77), txs...)
	c.blocks = append(c.blocks, b)
	c.states = append(c.states, applyBlock(c.t, c.tip(), b, c.f.g.MinFee))
	c.f.st.replace(c.tip())
	c.f.p.BlockConnected(b, t0)
	return b
}

// reorg replaces the blocks above fork with branch (each a tx list): the
// store moves first, then Disconnected tip first, then Connected.
func (c *chainSim) reorg(fork int, branch ...[]*chain.Tx) {
	old := c.blocks[fork:]
	c.blocks = c.blocks[:fork:fork]
	c.states = c.states[: fork+1 : fork+1]
	var fresh []*chain.Block
	for i, txs := range branch {
		b := block(uint64(fork+i+1), addr(78), txs...)
		b.Header.Time = 1e6 + int64(i) // a different branch: different ids
		fresh = append(fresh, b)
		c.blocks = append(c.blocks, b)
		c.states = append(c.states, applyBlock(c.t, c.tip(), b, c.f.g.MinFee))
	}
	c.f.st.replace(c.tip())
	for i := len(old) - 1; i >= 0; i-- {
		c.f.p.BlockDisconnected(old[i], t0)
		if err := c.f.p.checkInvariants(true); err != nil {
			c.t.Fatalf("after Disconnected: %v", err)
		}
	}
	for _, b := range fresh {
		c.f.p.BlockConnected(b, t0)
	}
	if len(fresh) > 0 {
		if err := c.f.p.checkInvariants(false); err != nil {
			c.t.Fatalf("after reorg: %v", err)
		}
	}
}

func wantHeld(t *testing.T, p *Pool, exec bool, txs ...*chain.Tx) {
	t.Helper()
	snap := p.snapshot()
	for _, x := range txs {
		e, ok := snap[x.ID()]
		if !ok || e != exec {
			t.Fatalf("tx nonce %d of %x: held %v executable %v, want held executable=%v", x.Nonce, x.From[:2], ok, e, exec)
		}
	}
}

func wantGone(t *testing.T, p *Pool, txs ...*chain.Tx) {
	t.Helper()
	for _, x := range txs {
		if p.Has(x.ID()) {
			t.Fatalf("tx nonce %d of %x still held", x.Nonce, x.From[:2])
		}
	}
}

// TestReorgMultiBlock: a two-block reorg whose blocks come back newest
// first, with a conflicting tx on the new branch and a recipient whose
// incoming funds vanish.
func TestReorgMultiBlock(t *testing.T) {
	f := newFixture(t, Config{MaxNonceGap: 1}) // the reorg must not need the gap
	const S, T, U = 1, 2, 3
	c := newChainSim(t, f, map[chain.Address]chain.Account{
		addr(S): {Balance: 10_000}, addr(T): {Balance: 1_000},
	})
	s := make([]*chain.Tx, 4)
	for n := range s {
		s[n] = tx(S, uint64(n), 5)
	}
	s[0] = mkTx(txSpec{from: S, to: U, nonce: 0, fee: 5, amount: 500}) // funds U
	t0x, t1x := tx(T, 0, 5), tx(T, 1, 5)
	for _, x := range append(s, t0x, t1x) {
		f.mustAdd(x, Added)
	}
	c.connect(s[0], s[1])
	c.connect(s[2], t0x)
	u0 := mkTx(txSpec{from: U, to: S, nonce: 0, fee: 5, amount: 400}) // spends U's new funds
	f.mustAdd(u0, Added)
	wantHeld(t, f.p, true, s[3], t1x, u0)

	// New branch: T's nonce 0 is a different tx; S's and U's txs are not
	// in it.
	t0y := mkTx(txSpec{from: T, to: S, nonce: 0, fee: 7, amount: 3})
	c.reorg(0, []*chain.Tx{t0y}, nil)

	wantHeld(t, f.p, true, s[0], s[1], s[2], s[3], t1x)
	wantGone(t, f.p, t0x, t0y, u0) // t0x: nonce spent by t0y; u0: U has no funds now
	if f.p.Known(t0x.ID()) || !f.p.Known(t0y.ID()) {
		t.Fatal("recently included set not updated by the reorg")
	}
	if n := f.p.PendingNonce(addr(S)); n != 4 {
		t.Fatalf("S pending nonce %d, want 4", n)
	}
	tpl := f.p.Template(math.MaxInt, math.MaxInt)
	if err := checkTemplate(f.p, tpl, math.MaxInt, math.MaxInt); err != nil {
		t.Fatal(err)
	}
	tip := c.tip()
	if _, err := chain.ApplyBlockTxs(block(9, addr(77), tpl...), func(a chain.Address) chain.Account { return tip[a] }, f.g.MinFee); err != nil {
		t.Fatalf("template does not apply after reorg: %v", err)
	}
}

// TestReorgOverLimits: a disconnected block's txs come back even into a
// full pool, and the next BlockConnected trims by fee rate.
func TestReorgOverLimits(t *testing.T) {
	f := newFixture(t, Config{MaxTxs: 5, MaxPerSender: 2, MaxQueued: 1})
	const X = 10
	genesis := map[chain.Address]chain.Account{addr(X): {Balance: 10_000}}
	for i := range 5 {
		genesis[addr(i)] = chain.Account{Balance: 10_000}
	}
	c := newChainSim(t, f, genesis)
	rich := []*chain.Tx{tx(X, 0, 50), tx(X, 1, 50), tx(X, 2, 50)} // 3 > MaxPerSender
	c.connect(rich...)
	var cheap []*chain.Tx
	for i := range 5 {
		x := tx(i, 0, 10+uint64(i))
		f.mustAdd(x, Added)
		cheap = append(cheap, x)
	}
	c.reorg(0) // bare disconnect: everything comes back, limits wait
	if s := f.p.Stats(); s.Count != 8 {
		t.Fatalf("after disconnect %+v, want all 8 held", s)
	}
	c.connect() // an empty block on the new tip trims
	// X keeps its 2 lowest nonces (sender limit), then 7 txs > MaxTxs 5:
	// the two lowest fee rates go.
	wantHeld(t, f.p, true, rich[0], rich[1], cheap[2], cheap[3], cheap[4])
	wantGone(t, f.p, rich[2], cheap[0], cheap[1])
	if err := f.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
}

// TestReorgNewBranchIncludesSame: a tx on both branches stays out of the
// pool and stays known.
func TestReorgNewBranchIncludesSame(t *testing.T) {
	f := newFixture(t, Config{})
	c := newChainSim(t, f, map[chain.Address]chain.Account{addr(1): {Balance: 1000}})
	a0, a1 := tx(1, 0, 5), tx(1, 1, 5)
	f.mustAdd(a0, Added)
	f.mustAdd(a1, Added)
	c.connect(a0)
	c.connect(a1)
	c.reorg(0, []*chain.Tx{a0}) // the new branch keeps a0 only
	wantGone(t, f.p, a0)
	wantHeld(t, f.p, true, a1)
	if !f.p.Known(a0.ID()) || !f.p.Known(a1.ID()) {
		t.Fatal("known set wrong")
	}
}
