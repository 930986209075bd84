package mempool

import (
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// deterAttackTxs is the size of the attack in geth's DETER paper (5,120,
// rounded): high-fee txs from one account that can never all be mined.
const deterAttackTxs = 5000

// honestFill fills a pool of MaxTxs capacity with honest executable txs:
// senders 0..n-1, perSender consecutive nonces each, modest fees.
func honestFill(t *testing.T, f *fixture, senders, perSender int) []chain.Hash {
	t.Helper()
	var ids []chain.Hash
	for i := range senders {
		f.fund(i, 1_000_000)
		for n := range perSender {
			x := tx(i, uint64(n), uint64(5+(i+n)%10))
			if r := f.p.Add(x, t0); r.Code != Added {
				t.Fatalf("honest fill: %v (%v)", r.Code, r.Err)
			}
			ids = append(ids, x.ID())
		}
	}
	return ids
}

func checkHonestIntact(t *testing.T, f *fixture, honest []chain.Hash) {
	t.Helper()
	snap := f.p.snapshot()
	lost := 0
	for _, id := range honest {
		if exec, ok := snap[id]; !ok || !exec {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d honest executable txs evicted or demoted", lost, len(honest))
	}
	if err := f.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
}

// TestDETER replays the DETER attack (CVE-2022-23327/23328) against a full
// pool of honest executable txs: 5,000 txs paying 10,000 times the honest
// fee from one account, with future nonces or overdrafts. None may evict or
// demote a single honest tx.
func TestDETER(t *testing.T) {
	const honestSenders, perSender = 100, 5
	cfg := Config{MaxTxs: honestSenders * perSender, MaxQueued: 50}
	const attacker = 900
	const highFee = 100_000
	n := deterAttackTxs
	if testing.Short() {
		n = 1000
	}

	t.Run("future nonces", func(t *testing.T) {
		f := newFixture(t, cfg)
		honest := honestFill(t, f, honestSenders, perSender)
		f.fund(attacker, 1<<40)
		counts := map[Code]int{}
		for i := range n {
			r := f.p.Add(tx(attacker, uint64(1+i), highFee), t0)
			counts[r.Code]++
			if len(r.Evicted) > 0 {
				t.Fatalf("attack tx %d evicted %d txs", i, len(r.Evicted))
			}
		}
		t.Logf("outcomes: %v", counts)
		if counts[PoolFull] != cfg.withDefaults().MaxNonceGap || counts[NonceTooHigh] != n-counts[PoolFull] {
			t.Fatalf("outcomes %v", counts)
		}
		checkHonestIntact(t, f, honest)
	})

	t.Run("overdrafts", func(t *testing.T) {
		f := newFixture(t, cfg)
		honest := honestFill(t, f, honestSenders, perSender)
		// The attacker can afford one high-fee tx: every one of these
		// costs more than the balance (amount + fee > balance).
		f.fund(attacker, highFee)
		counts := map[Code]int{}
		for i := range n {
			x := mkTx(txSpec{from: attacker, to: 1, nonce: uint64(i % 17), fee: highFee, amount: uint64(1 + i)})
			r := f.p.Add(x, t0)
			counts[r.Code]++
			if len(r.Evicted) > 0 {
				t.Fatalf("attack tx %d evicted %d txs", i, len(r.Evicted))
			}
		}
		t.Logf("outcomes: %v", counts)
		if counts[InsufficientFunds] == 0 || counts[Added]+counts[Queued]+counts[Replaced] != 0 {
			t.Fatalf("outcomes %v", counts)
		}
		checkHonestIntact(t, f, honest)
	})

	t.Run("one paid tx then overdrafts and future nonces", func(t *testing.T) {
		// geth's variant: one valid tx spending the balance, then a chain
		// that overdraws it. The valid one is part of the honest fill
		// here (it pays, so it may take a slot like anyone who pays).
		f := newFixture(t, cfg)
		honest := honestFill(t, f, honestSenders-1, perSender)
		f.fund(honestSenders, 1_000_000)
		for n := range perSender - 1 { // leaves one slot for the paying head
			x := tx(honestSenders, uint64(n), 5)
			f.mustAdd(x, Added)
			honest = append(honest, x.ID())
		}
		f.fund(attacker, 2*highFee)
		head := mkTx(txSpec{from: attacker, to: 1, nonce: 0, fee: highFee, amount: highFee - 10})
		if r := f.p.Add(head, t0); r.Code != Added || len(r.Evicted) != 0 {
			t.Fatalf("paying head: %v evicted %d", r.Code, len(r.Evicted))
		}
		counts := map[Code]int{}
		for i := range n {
			x := mkTx(txSpec{from: attacker, to: 1, nonce: uint64(1 + i%40), fee: highFee, amount: uint64(i)})
			r := f.p.Add(x, t0)
			counts[r.Code]++
			if len(r.Evicted) > 0 {
				t.Fatalf("attack tx %d evicted %d txs", i, len(r.Evicted))
			}
		}
		t.Logf("outcomes: %v", counts)
		checkHonestIntact(t, f, honest)
	})

	t.Run("pool with room: the queue is bounded and yields to honest txs", func(t *testing.T) {
		f := newFixture(t, cfg)
		honest := honestFill(t, f, honestSenders/2, perSender) // half full
		f.fund(attacker, 1<<40)
		for i := range n {
			f.p.Add(tx(attacker, uint64(1+i), highFee), t0)
		}
		if s := f.p.Stats(); s.Queued != cfg.withDefaults().MaxNonceGap {
			t.Fatalf("attacker holds %d queued, want the nonce gap %d", s.Queued, cfg.withDefaults().MaxNonceGap)
		}
		// Honest senders fill the rest of the pool; the attacker's queued
		// txs make way, whatever they pay.
		for i := honestSenders / 2; i < honestSenders; i++ {
			f.fund(i, 1_000_000)
			for n := range perSender {
				x := tx(i, uint64(n), 1)
				if r := f.p.Add(x, t0); r.Code != Added {
					t.Fatalf("honest tx refused: %v (%v)", r.Code, r.Err)
				}
				honest = append(honest, x.ID())
			}
		}
		if s := f.p.Stats(); s.Queued != 0 || s.Count != cfg.MaxTxs {
			t.Fatalf("stats %+v", s)
		}
		checkHonestIntact(t, f, honest)
	})
}
