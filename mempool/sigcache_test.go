package mempool

import (
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// TestSigCacheSharedBetweenPools: a tx one pool verified is accepted by a
// second pool sharing the cache without verifying it again (shown with a
// forged signature whose id was put in the cache: only the cache can let it
// through), and a pool without the cache still rejects it.
func TestSigCacheSharedBetweenPools(t *testing.T) {
	cache := NewSigCache(16)
	a := newFixture(t, DefaultConfig())
	b := newFixture(t, DefaultConfig())
	b.p.sigs = cache
	a.p.sigs = cache
	for _, f := range []*fixture{a, b} {
		f.fund(0, 1_000_000)
	}
	good := mkTx(txSpec{from: 0, to: 1, nonce: 0, amount: 1, fee: 1000})
	if r := a.p.Add(good, t0); r.Code != Added {
		t.Fatalf("pool a: %+v", r)
	}
	if !cache.Has(good.ID()) {
		t.Fatal("a verified signature was not cached")
	}
	if r := b.p.Add(good, t0); r.Code != Added {
		t.Fatalf("pool b: %+v", r)
	}

	forged := *mkTx(txSpec{from: 0, to: 1, nonce: 1, amount: 1, fee: 1000})
	forged.Sig[0] ^= 1
	if r := a.p.Add(&forged, t0); r.Code != Invalid {
		t.Fatalf("forged signature accepted: %+v", r)
	}
	if cache.Has(forged.ID()) {
		t.Fatal("a failed signature was cached")
	}
	cache.Add(forged.ID()) // as if it had verified
	if r := b.p.Add(&forged, t0); r.Code != Added {
		t.Fatalf("pool b did not use the cache: %+v", r)
	}
	alone := newFixture(t, DefaultConfig())
	alone.fund(0, 1_000_000)
	if r := alone.p.Add(&forged, t0); r.Code != Invalid {
		t.Fatalf("pool without the cache accepted a forged signature: %+v", r)
	}
}

// TestSigCacheBounded: the cache holds at most its capacity, oldest out.
func TestSigCacheBounded(t *testing.T) {
	c := NewSigCache(2)
	ids := []chain.Hash{{1}, {2}, {3}}
	for _, id := range ids {
		c.Add(id)
	}
	c.Add(ids[2]) // a repeat takes no slot
	if c.Len() != 2 || c.Has(ids[0]) || !c.Has(ids[1]) || !c.Has(ids[2]) {
		t.Fatalf("len %d, has %v %v %v", c.Len(), c.Has(ids[0]), c.Has(ids[1]), c.Has(ids[2]))
	}
	if NewSigCache(0).ids.n != 1 {
		t.Fatal("capacity below 1")
	}
}
