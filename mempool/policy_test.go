package mempool

import (
	"errors"
	"math"
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// policyConfig is small enough that every limit is easy to reach.
var policyConfig = Config{MaxTxs: 10, MaxBytes: 1 << 20, MaxPerSender: 4, MaxNonceGap: 3, MaxQueued: 3}

// TestAddPolicy checks one rule per case: a setup, one Add, its outcome.
func TestAddPolicy(t *testing.T) {
	var held map[string]*chain.Tx // txs the setup added, by label
	hold := func(f *fixture, label string, tx *chain.Tx, want Code) {
		f.mustAdd(tx, want)
		held[label] = tx
	}
	cases := []struct {
		name       string
		cfg        *Config // nil = policyConfig
		gmod       func(g *chain.Genesis)
		setup      func(f *fixture)
		tx         func() *chain.Tx
		want       Code
		wantErr    error
		wantReason chain.Reason
		evicted    []string // labels of held txs that must leave
		promoted   []string
		executable bool
	}{
		{
			name: "executable tx added", setup: func(f *fixture) { f.fund(1, 1000) },
			tx: func() *chain.Tx { return tx(1, 0, 5) }, want: Added, executable: true,
		},
		{
			name:  "duplicate is already known",
			setup: func(f *fixture) { f.fund(1, 1000); hold(f, "a", tx(1, 0, 5), Added) },
			tx:    func() *chain.Tx { return tx(1, 0, 5) }, want: AlreadyKnown, wantErr: ErrKnown,
		},
		{
			name: "bad signature is invalid", setup: func(f *fixture) { f.fund(1, 1000) },
			tx: func() *chain.Tx {
				x := tx(1, 0, 5)
				x.Sig[0] ^= 1
				return x
			}, want: Invalid, wantReason: chain.ReasonBadSignature,
		},
		{
			name: "field changed after signing is invalid", setup: func(f *fixture) { f.fund(1, 1000) },
			tx: func() *chain.Tx {
				x := tx(1, 0, 5)
				x.Amount++
				return x
			}, want: Invalid, wantReason: chain.ReasonBadSignature,
		},
		{
			name: "payload over the genesis limit is invalid",
			gmod: func(g *chain.Genesis) { g.MaxPayloadBytes = 100 }, setup: func(f *fixture) { f.fund(1, 1000) },
			tx: func() *chain.Tx { return mkTx(txSpec{from: 1, fee: 5, payload: 101}) }, want: Invalid, wantReason: chain.ReasonPayloadTooLarge,
		},
		{
			name: "amount plus fee overflow is invalid", setup: func(f *fixture) { f.fund(1, math.MaxUint64) },
			tx: func() *chain.Tx { return mkTx(txSpec{from: 1, fee: 5, amount: math.MaxUint64}) }, want: Invalid, wantReason: chain.ReasonAmountOverflow,
		},
		{
			name: "fee below the chain minimum", setup: func(f *fixture) { f.fund(1, 1000) },
			tx: func() *chain.Tx { return tx(1, 0, 0) }, want: FeeTooLow, wantReason: chain.ReasonFeeTooLow,
		},
		{
			name:  "nonce below the confirmed nonce",
			setup: func(f *fixture) { f.st.set(addr(1), chain.Account{Balance: 1000, Nonce: 3}) },
			tx:    func() *chain.Tx { return tx(1, 2, 5) }, want: NonceTooLow, wantReason: chain.ReasonNonceTooLow,
		},
		{
			name:  "the last nonce can never be used (it would wrap)",
			setup: func(f *fixture) { f.st.set(addr(1), chain.Account{Balance: 1000, Nonce: math.MaxUint64}) },
			tx:    func() *chain.Tx { return tx(1, math.MaxUint64, 5) }, want: NonceTooHigh, wantReason: chain.ReasonNonceTooHigh,
		},
		{
			name:  "future nonce within the gap is queued",
			setup: func(f *fixture) { f.fund(1, 1000); hold(f, "n0", tx(1, 0, 5), Added) },
			tx:    func() *chain.Tx { return tx(1, 4, 5) }, want: Queued,
		},
		{
			name:  "future nonce beyond the gap",
			setup: func(f *fixture) { f.fund(1, 1000); hold(f, "n0", tx(1, 0, 5), Added) },
			tx:    func() *chain.Tx { return tx(1, 5, 5) }, want: NonceTooHigh, wantReason: chain.ReasonNonceTooHigh,
		},
		{
			name: "filling the gap promotes queued txs",
			setup: func(f *fixture) {
				f.fund(1, 1000)
				hold(f, "n0", tx(1, 0, 5), Added)
				hold(f, "n2", tx(1, 2, 5), Queued)
				hold(f, "n3", tx(1, 3, 5), Queued)
			},
			tx: func() *chain.Tx { return tx(1, 1, 5) }, want: Added, executable: true, promoted: []string{"n2", "n3"},
		},
		{
			name: "cost above the balance", setup: func(f *fixture) { f.fund(1, 5) },
			tx: func() *chain.Tx { return mkTx(txSpec{from: 1, fee: 5, amount: 1}) }, want: InsufficientFunds, wantReason: chain.ReasonInsufficientBalance,
		},
		{
			name: "overdraft chain: balance minus pending cost",
			setup: func(f *fixture) {
				f.fund(1, 30)
				hold(f, "n0", mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 15}), Added)
			},
			tx:   func() *chain.Tx { return mkTx(txSpec{from: 1, nonce: 1, fee: 5, amount: 15}) },
			want: InsufficientFunds, wantReason: chain.ReasonInsufficientBalance,
		},
		{
			name: "queued overdraft",
			setup: func(f *fixture) {
				f.fund(1, 30)
				hold(f, "n0", mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 15}), Added)
			},
			tx:   func() *chain.Tx { return mkTx(txSpec{from: 1, nonce: 2, fee: 5, amount: 15}) },
			want: InsufficientFunds,
		},
		{
			name: "promotion drops a queued tx the balance no longer covers",
			setup: func(f *fixture) {
				f.fund(1, 50)
				hold(f, "n0", mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 5}), Added)
				hold(f, "n2", mkTx(txSpec{from: 1, nonce: 2, fee: 5, amount: 30}), Queued)
				hold(f, "n3", mkTx(txSpec{from: 1, nonce: 3, fee: 5, amount: 1}), Queued)
			},
			tx:   func() *chain.Tx { return mkTx(txSpec{from: 1, nonce: 1, fee: 5, amount: 5}) },
			want: Added, executable: true, evicted: []string{"n2", "n3"},
		},
		{
			name:  "replacement below the bump",
			setup: func(f *fixture) { f.fund(1, 1000); hold(f, "old", tx(1, 0, 100), Added) },
			tx:    func() *chain.Tx { return tx(1, 0, 109) }, want: FeeTooLow, wantErr: ErrReplaceUnderpriced,
		},
		{
			name:  "replacement with exactly the bump",
			setup: func(f *fixture) { f.fund(1, 1000); hold(f, "old", tx(1, 0, 100), Added) },
			tx:    func() *chain.Tx { return tx(1, 0, 110) }, want: Replaced, executable: true, evicted: []string{"old"},
		},
		{
			name:  "replacement of a minimum fee needs one more unit",
			setup: func(f *fixture) { f.fund(1, 1000); hold(f, "old", tx(1, 0, 1), Added) },
			tx:    func() *chain.Tx { return mkTx(txSpec{from: 1, fee: 1, amount: 2}) }, want: FeeTooLow, wantErr: ErrReplaceUnderpriced,
		},
		{
			name:  "replacement with a lower fee rate",
			setup: func(f *fixture) { f.fund(1, 100000); hold(f, "old", tx(1, 0, 100), Added) },
			tx: func() *chain.Tx {
				return mkTx(txSpec{from: 1, nonce: 0, fee: 200, amount: 1, payload: 400})
			}, want: FeeTooLow, wantErr: ErrReplaceUnderpriced,
		},
		{
			name: "replacement of a queued tx stays queued",
			setup: func(f *fixture) {
				f.fund(1, 1000)
				hold(f, "q", tx(1, 2, 10), Queued)
			},
			tx: func() *chain.Tx { return tx(1, 2, 11) }, want: Replaced, evicted: []string{"q"},
		},
		{
			name: "replacement that costs more drops the later nonces it overdraws",
			setup: func(f *fixture) {
				f.fund(1, 100)
				hold(f, "n0", mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 25}), Added)
				hold(f, "n1", mkTx(txSpec{from: 1, nonce: 1, fee: 5, amount: 25}), Added)
				hold(f, "n2", mkTx(txSpec{from: 1, nonce: 2, fee: 5, amount: 25}), Added)
			},
			tx:   func() *chain.Tx { return mkTx(txSpec{from: 1, nonce: 0, fee: 6, amount: 60}) },
			want: Replaced, executable: true, evicted: []string{"n0", "n2"},
		},
		{
			name: "replacement the balance cannot cover",
			setup: func(f *fixture) {
				f.fund(1, 60)
				hold(f, "n0", mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 25}), Added)
				hold(f, "n1", mkTx(txSpec{from: 1, nonce: 1, fee: 5, amount: 25}), Added)
			},
			tx:   func() *chain.Tx { return mkTx(txSpec{from: 1, nonce: 1, fee: 6, amount: 34}) },
			want: InsufficientFunds,
		},
		{
			name: "sender limit",
			setup: func(f *fixture) {
				f.fund(1, 1000)
				for n := range uint64(4) {
					f.mustAdd(tx(1, n, 5), Added)
				}
			},
			tx: func() *chain.Tx { return tx(1, 4, 50) }, want: PoolFull, wantErr: ErrSenderFull,
		},
		{
			name: "full sender trades its highest queued tx for a lower nonce",
			setup: func(f *fixture) {
				f.fund(1, 1000)
				hold(f, "n0", tx(1, 0, 5), Added)
				hold(f, "n1", tx(1, 1, 5), Added)
				hold(f, "n3", tx(1, 3, 5), Queued)
				hold(f, "n4", tx(1, 4, 5), Queued)
			},
			tx: func() *chain.Tx { return tx(1, 2, 5) }, want: Added, executable: true,
			evicted: []string{"n4"}, promoted: []string{"n3"},
		},
		{
			name: "full pool rejects a lower fee rate",
			cfg:  &Config{MaxTxs: 3, MaxQueued: 3},
			setup: func(f *fixture) {
				for i := 1; i <= 4; i++ {
					f.fund(i, 1000)
				}
				for i := 1; i <= 3; i++ {
					f.mustAdd(tx(i, 0, 10), Added)
				}
			},
			tx: func() *chain.Tx { return tx(4, 0, 9) }, want: PoolFull, wantErr: ErrPoolFull,
		},
		{
			name: "full pool rejects an equal fee rate",
			cfg:  &Config{MaxTxs: 3, MaxQueued: 3},
			setup: func(f *fixture) {
				for i := 1; i <= 4; i++ {
					f.fund(i, 1000)
				}
				for i := 1; i <= 3; i++ {
					f.mustAdd(tx(i, 0, 10), Added)
				}
			},
			tx: func() *chain.Tx { return tx(4, 0, 10) }, want: PoolFull, wantErr: ErrPoolFull,
		},
		{
			name: "full pool: a higher rate evicts the cheapest tx and its later nonces",
			cfg:  &Config{MaxTxs: 3, MaxQueued: 3},
			setup: func(f *fixture) {
				for i := 1; i <= 3; i++ {
					f.fund(i, 1000)
				}
				hold(f, "s1n0", tx(1, 0, 5), Added)
				hold(f, "s1n1", tx(1, 1, 50), Added)
				hold(f, "s2n0", tx(2, 0, 10), Added)
			},
			tx: func() *chain.Tx { return tx(3, 0, 20) }, want: Added, executable: true, evicted: []string{"s1n0", "s1n1"},
		},
		{
			name: "full pool: a tx cannot evict its own ancestor",
			cfg:  &Config{MaxTxs: 2, MaxPerSender: 2, MaxQueued: 2},
			setup: func(f *fixture) {
				f.fund(1, 1000)
				f.fund(2, 1000)
				hold(f, "s1n0", tx(1, 0, 5), Added)
				hold(f, "s2n0", tx(2, 0, 10), Added)
			},
			tx: func() *chain.Tx { return tx(1, 1, 100) }, want: PoolFull, wantErr: ErrPoolFull,
		},
		{
			name: "full pool: queued txs are evicted first, whatever they pay",
			cfg:  &Config{MaxTxs: 3, MaxQueued: 3},
			setup: func(f *fixture) {
				for i := 1; i <= 4; i++ {
					f.fund(i, 100000)
				}
				hold(f, "s1", tx(1, 0, 5), Added)
				hold(f, "s2", tx(2, 0, 5), Added)
				hold(f, "q3", tx(3, 1, 10000), Queued)
			},
			tx: func() *chain.Tx { return tx(4, 0, 6) }, want: Added, executable: true, evicted: []string{"q3"},
		},
		{
			name: "full pool: a queued tx never evicts an executable one",
			cfg:  &Config{MaxTxs: 2, MaxQueued: 2},
			setup: func(f *fixture) {
				for i := 1; i <= 3; i++ {
					f.fund(i, 100000)
				}
				f.mustAdd(tx(1, 0, 5), Added)
				f.mustAdd(tx(2, 0, 5), Added)
			},
			tx: func() *chain.Tx { return tx(3, 1, 10000) }, want: PoolFull, wantErr: ErrPoolFull,
		},
		{
			name: "queue full rejects a queued tx paying no more",
			setup: func(f *fixture) {
				for i := 1; i <= 4; i++ {
					f.fund(i, 1000)
					if i < 4 {
						f.mustAdd(tx(i, 1, 10), Queued)
					}
				}
			},
			tx: func() *chain.Tx { return tx(4, 1, 10) }, want: PoolFull, wantErr: ErrQueueFull,
		},
		{
			name: "queue full: a richer queued tx evicts the cheapest queued one",
			setup: func(f *fixture) {
				for i := 1; i <= 4; i++ {
					f.fund(i, 1000)
				}
				hold(f, "q1", tx(1, 1, 10), Queued)
				hold(f, "q2", tx(2, 1, 9), Queued)
				hold(f, "q3", tx(3, 1, 11), Queued)
			},
			tx: func() *chain.Tx { return tx(4, 1, 12) }, want: Queued, evicted: []string{"q2"},
		},
		{
			name: "byte limit: a higher rate evicts enough bytes",
			cfg:  &Config{MaxTxs: 10, MaxBytes: 1000},
			setup: func(f *fixture) {
				for i := 1; i <= 3; i++ {
					f.fund(i, 100000)
				}
				hold(f, "big1", mkTx(txSpec{from: 1, fee: 100, payload: 300}), Added)
				hold(f, "big2", mkTx(txSpec{from: 2, fee: 200, payload: 300}), Added)
			},
			tx: func() *chain.Tx { return mkTx(txSpec{from: 3, fee: 1000, payload: 300}) }, want: Added, executable: true, evicted: []string{"big1"},
		},
		{
			name: "a tx larger than the whole pool evicts nothing",
			cfg:  &Config{MaxTxs: 10, MaxBytes: 1000},
			setup: func(f *fixture) {
				for i := 1; i <= 2; i++ {
					f.fund(i, 100000)
				}
				f.mustAdd(tx(1, 0, 1), Added)
			},
			tx: func() *chain.Tx { return mkTx(txSpec{from: 2, fee: 100000 - 1, payload: 1000}) }, want: PoolFull, wantErr: ErrPoolFull,
		},
		{
			name: "recently included is already known",
			setup: func(f *fixture) {
				f.fund(1, 1000)
				x := tx(1, 0, 5)
				f.st.set(addr(1), chain.Account{Balance: 994, Nonce: 1})
				f.p.BlockConnected(block(1, addr(99), x), t0)
			},
			tx: func() *chain.Tx { return tx(1, 0, 5) }, want: AlreadyKnown, wantErr: ErrIncluded,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			held = make(map[string]*chain.Tx)
			cfg := policyConfig
			if c.cfg != nil {
				cfg = *c.cfg
			}
			f := newFixture(t, cfg)
			if c.gmod != nil {
				c.gmod(f.g)
			}
			c.setup(f)
			before := f.p.snapshot()
			x := c.tx()
			r := f.add(x, t0)
			if r.Code != c.want {
				t.Fatalf("got %v (%v), want %v", r.Code, r.Err, c.want)
			}
			if r.ID != x.ID() {
				t.Errorf("result id %s, want %s", r.ID.Short(), x.ID().Short())
			}
			if c.wantErr != nil && !errors.Is(r.Err, c.wantErr) {
				t.Errorf("err %v, want %v", r.Err, c.wantErr)
			}
			if c.wantReason != chain.ReasonNone {
				if got, _ := chain.ReasonOf(r.Err); got != c.wantReason {
					t.Errorf("reason %v (%v), want %v", got, r.Err, c.wantReason)
				}
			}
			if r.Code.Penalize() != (c.want == Invalid) {
				t.Errorf("Penalize %v for %v", r.Code.Penalize(), r.Code)
			}
			if r.Code != AlreadyKnown && r.Code.Held() != f.p.Has(x.ID()) {
				t.Errorf("Held %v but Has %v", r.Code.Held(), f.p.Has(x.ID()))
			}
			if !r.Code.Held() && r.Err == nil {
				t.Errorf("rejection without an error")
			}
			if r.Executable != c.executable {
				t.Errorf("Executable %v, want %v", r.Executable, c.executable)
			}
			labels := func(ls []string) []chain.Hash {
				var out []chain.Hash
				for _, l := range ls {
					out = append(out, held[l].ID())
				}
				return out
			}
			if !sameIDs(r.Evicted, labels(c.evicted)) {
				t.Errorf("evicted %d txs, want %v", len(r.Evicted), c.evicted)
			}
			if !sameIDs(r.Promoted, labels(c.promoted)) {
				t.Errorf("promoted %d txs, want %v", len(r.Promoted), c.promoted)
			}
			// Evicted is exactly what left the pool.
			after := f.p.snapshot()
			var left []chain.Hash
			for id := range before {
				if _, ok := after[id]; !ok {
					left = append(left, id)
				}
			}
			if !sameIDs(left, r.Evicted) {
				t.Errorf("%d txs left the pool, Evicted lists %d", len(left), len(r.Evicted))
			}
			if !r.Code.Held() && len(r.Evicted) > 0 {
				t.Errorf("rejected tx evicted %d txs", len(r.Evicted))
			}
		})
	}
}
