package store

import (
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// TestTipAccountsNoStaleFill checks the rule that keeps the query cache
// true: a value read before a commit landed is not cached after it, and a
// commit's writes (sets and deletes) replace what was cached.
func TestTipAccountsNoStaleFill(t *testing.T) {
	c := newTipAccounts(8)
	a, b := chain.Address{1}, chain.Address{2}
	old := chain.Account{Balance: 10, Nonce: 1}
	_, ok, gen := c.get(a)
	if ok {
		t.Fatal("empty cache has a")
	}
	// A commit lands between the reader's database read and its fill.
	c.committed([]keyedOp{{key: keyAccount(b), op: op{val: encodeAccount(chain.Account{Balance: 5})}}})
	c.fill(a, old, gen)
	if _, ok, _ := c.get(a); ok {
		t.Fatal("a value read before a commit was cached after it")
	}
	if got, ok, _ := c.get(b); !ok || got.Balance != 5 {
		t.Fatalf("committed value not written through: %+v %v", got, ok)
	}
	// A fill with a current generation sticks; a commit replaces it.
	_, _, gen = c.get(a)
	c.fill(a, old, gen)
	if got, ok, _ := c.get(a); !ok || got != old {
		t.Fatalf("fill not cached: %+v %v", got, ok)
	}
	c.committed([]keyedOp{{key: keyAccount(a), op: op{del: true}}, {key: key1(prefixTip), op: op{val: []byte{1}}}})
	if got, ok, _ := c.get(a); !ok || got != (chain.Account{}) {
		t.Fatalf("deleted account cached as %+v (%v), want the zero account", got, ok)
	}
	c.forget()
	if _, ok, _ := c.get(b); ok {
		t.Fatal("forget kept b")
	}
}

// TestAccountAfterClose checks that a cached account is not answered after
// Close: queries after Close report nothing found.
func TestAccountAfterClose(t *testing.T) {
	f := newFixture(t, 2, 1)
	s := f.open(Options{})
	a := f.addr(0)
	if s.Account(a) == (chain.Account{}) {
		t.Fatal("funded account reads as zero")
	}
	if _, cached, _ := s.tipAccts.get(a); !cached {
		t.Fatal("account not cached after a read")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Account(a); got != (chain.Account{}) {
		t.Fatalf("Account after Close = %+v, want the zero account", got)
	}
}
