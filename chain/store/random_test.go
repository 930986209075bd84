package store

import (
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// model is the reference the randomized test checks the store against: a
// tree of blocks, each with the full state after it (computed by applying
// the block to a copy of its parent's state), and fork choice written out
// the naive way.
type model struct {
	blocks map[chain.Hash]*modelBlock
	tip    *modelBlock
	seq    int
}

type modelBlock struct {
	b      *chain.Block
	id     chain.Hash
	parent *modelBlock
	seq    int // first-seen order
	// state after the block; nil when the block fails against its parent's
	// state (or descends from one that does).
	state   map[chain.Address]chain.Account
	invalid bool // the store has found it invalid (it has tried to connect it)
}

func newModel(g *chain.Genesis) *model {
	st := g.State()
	gb := &modelBlock{b: g.Block(), id: g.ID(), state: st}
	return &model{blocks: map[chain.Hash]*modelBlock{gb.id: gb}, tip: gb, seq: 1}
}

func (m *model) height(b *modelBlock) uint64 { return b.b.Header.Height }

// add applies fork choice and returns the expected status and reason.
func (m *model) add(g *chain.Genesis, b *chain.Block) (AddStatus, chain.Reason) {
	id := b.ID()
	if mb, ok := m.blocks[id]; ok {
		if mb.invalid {
			return Rejected, chain.ReasonInvalidTx // or BadParent: checked loosely
		}
		return Known, 0
	}
	parent := m.blocks[b.Header.Parent]
	// Walk to the best chain as the store does: an invalid ancestor or a
	// fork deeper than MaxReorgDepth refuses the block unstored.
	tipH := m.height(m.tip)
	x := parent
	for !m.onBest(x) {
		if x.invalid {
			return Rejected, chain.ReasonBadParent
		}
		if tooDeep(tipH, m.height(x)-1) {
			return Rejected, chain.ReasonReorgTooDeep
		}
		x = x.parent
	}
	if tooDeep(tipH, m.height(x)) {
		return Rejected, chain.ReasonReorgTooDeep
	}
	mb := &modelBlock{b: b, id: id, parent: parent, seq: m.seq}
	m.seq++
	if parent.state != nil {
		st := maps.Clone(parent.state)
		changes, err := chain.ApplyBlockTxs(b, func(a chain.Address) chain.Account { return st[a] }, g.MinFee)
		if err == nil {
			maps.Copy(st, changes)
			mb.state = st
		}
	}
	m.blocks[id] = mb
	if m.height(mb) <= m.height(m.tip) {
		return SideChain, 0
	}
	// Heavier: the branch connects only if every block on it is valid.
	var path []*modelBlock
	for x := mb; !m.onBest(x); x = x.parent {
		path = append(path, x)
	}
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].state == nil {
			for j := i; j >= 0; j-- {
				path[j].invalid = true
			}
			if i == 0 {
				return Rejected, chain.ReasonInvalidTx
			}
			return Rejected, chain.ReasonBadParent
		}
	}
	m.tip = mb
	return Connected, 0
}

func (m *model) onBest(x *modelBlock) bool {
	for y := m.tip; y != nil; y = y.parent {
		if m.height(y) < m.height(x) {
			return false
		}
		if y == x {
			return true
		}
	}
	return false
}

func liveState(st map[chain.Address]chain.Account) map[chain.Address]chain.Account {
	out := maps.Clone(st)
	maps.DeleteFunc(out, func(_ chain.Address, a chain.Account) bool { return a == chain.Account{} })
	return out
}

// TestRandomizedAgainstModel drives the store with random sequences of
// extensions, forks from recent ancestors, side blocks with state-invalid
// txs, extensions of those, and re-adds, and after every step compares the
// tip and the full state with the model (and every few steps the indexes
// with a replay).
func TestRandomizedAgainstModel(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 120
	}
	for _, seed := range []uint64{1, 2, 3} {
		t.Run("", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			const accounts = 6
			f := newFixture(t, accounts, 3)
			s := f.open(Options{})
			if seed == 2 {
				s.acctCacheMax = 4 // exercise eviction: most reads miss
			}
			m := newModel(f.g)
			fresh := []chain.Address{{0xf1}, {0xf2}, {0xf3}}
			recipients := fresh
			for i := range accounts {
				recipients = append(recipients, f.addr(i))
			}
			var all []*chain.Block
			events := map[string]int{}
			var lastSide *modelBlock // head of the latest side branch
			for step := range steps {
				s.forceLarge = rng.IntN(8) == 0
				var parent *modelBlock
				invalidTx := false
				switch r := rng.IntN(100); {
				case r < 35: // extend the tip
					parent = m.tip
				case r < 55: // fork from a recent best-chain ancestor
					parent = m.tip
					for d := rng.IntN(4); d > 0 && parent.parent != nil; d-- {
						parent = parent.parent
					}
				case r < 90 && lastSide != nil: // grow the competing branch
					parent = lastSide
				case r < 95: // extend a random known block (side, maybe latent-invalid)
					parent = randomBlock(rng, m)
				default: // re-add a known block
					if len(all) == 0 {
						continue
					}
					b := all[rng.IntN(len(all))]
					wantStatus, _ := m.add(f.g, b)
					res, err := s.AddBlock(b, f.now)
					if res.Status != wantStatus || (wantStatus == Rejected) != (err != nil) {
						t.Fatalf("step %d: re-add: status %v err %v, want %v", step, res.Status, err, wantStatus)
					}
					continue
				}
				invalidTx = rng.IntN(10) == 0
				var txs []*chain.Tx
				if parent.state != nil {
					used := map[int]bool{}
					for range rng.IntN(5) {
						from := rng.IntN(accounts)
						if used[from] {
							continue
						}
						used[from] = true
						acct := parent.state[f.addr(from)]
						nonce := acct.Nonce
						amount := rng.Uint64N(acct.Balance/4 + 1)
						if invalidTx {
							nonce += 1 + rng.Uint64N(2)
							invalidTx = false
						}
						txs = append(txs, f.tx(from, recipients[rng.IntN(len(recipients))], amount, 1+rng.Uint64N(3), nonce, nil))
					}
				}
				b := f.block(&parent.b.Header, rng.IntN(1000), txs...)
				wantStatus, wantReason := m.add(f.g, b)
				res, err := s.AddBlock(b, f.now)
				if res.Status != wantStatus {
					t.Fatalf("step %d: status %v (err %v), want %v", step, res.Status, err, wantStatus)
				}
				if wantStatus == Rejected {
					r, _ := chain.ReasonOf(err)
					if r != wantReason {
						t.Fatalf("step %d: reason %v, want %v (%v)", step, r, wantReason, err)
					}
				} else if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				switch {
				case err != nil:
					r, _ := chain.ReasonOf(err)
					events[r.String()]++
				case len(res.Disconnected) > 0:
					events["reorg"]++
				default:
					events[res.Status.String()]++
				}
				if res.Status == SideChain {
					lastSide = m.blocks[b.ID()]
				}
				if _, stored := m.blocks[b.ID()]; stored {
					all = append(all, b)
				}
				if _, id := s.Tip(); id != m.tip.id {
					t.Fatalf("step %d: tip %s, model %s", step, id.Short(), m.tip.id.Short())
				}
				sameState(t, "state vs model", snapshot(t, s), liveState(m.tip.state))
				if step%10 == 0 {
					checkConsistent(t, f.g, s)
				}
			}
			blocks := checkConsistent(t, f.g, s)
			t.Logf("seed %d: %d blocks tried, best chain %d, outcomes %v", seed, len(all), len(blocks), events)
			for _, e := range []string{"reorg", "side-chain", "invalid-tx", "bad-parent"} {
				if events[e] == 0 {
					t.Errorf("no %q outcome: the random walk misses a case", e)
				}
			}
		})
	}
}

func randomBlock(rng *rand.Rand, m *model) *modelBlock {
	n := rng.IntN(len(m.blocks))
	for _, b := range m.blocks {
		if n == 0 {
			return b
		}
		n--
	}
	return m.tip
}
