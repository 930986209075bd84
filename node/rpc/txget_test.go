package rpc

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// TestTxGetDelivery: tx_get reports own, seen_by and confirmed from the
// backend's OwnTx: an own pending tx with its peer count and delivery
// state, an included tx as confirmed whether own or not, a peer's pending
// tx as not own and unconfirmed without seen_by; without OwnTx no tx is
// own.
func TestTxGetDelivery(t *testing.T) {
	var mu sync.Mutex
	states := map[chain.Hash]OwnTxStatus{}
	f := newFixture(t, func(_ *Config, b *Backend) {
		b.OwnTx = func(id chain.Hash) (OwnTxStatus, bool) {
			mu.Lock()
			defer mu.Unlock()
			st, ok := states[id]
			return st, ok
		}
	})
	mined := signed(f.g, 0, 0)
	ownPending, delivered, peers := signed(f.g, 1, 0), signed(f.g, 2, 0), signed(f.g, 3, 0)
	for _, tx := range []*chain.Tx{mined, ownPending, delivered, peers} {
		if res := f.pool.Add(tx, time.Now()); !res.Code.Held() {
			t.Fatal(res.Err)
		}
	}
	genesis, _ := f.st.Tip()
	blk := f.g.BuildBlock(genesis, time.Now(), chain.TestnetAuthorityKey(seed, 0), []*chain.Tx{mined})
	if _, err := f.st.AddBlock(blk, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.pool.BlockConnected(blk, time.Now())
	mu.Lock()
	states[mined.ID()] = OwnTxStatus{SeenBy: 1}
	states[ownPending.ID()] = OwnTxStatus{SeenBy: 1}
	states[delivered.ID()] = OwnTxStatus{SeenBy: 2, Confirmed: true}
	mu.Unlock()

	one, two := 1, 2
	for _, c := range []struct {
		name      string
		tx        *chain.Tx
		status    string
		own       bool
		seenBy    *int
		confirmed bool
	}{
		{"own, included", mined, "included", true, &one, true},
		{"own, one peer", ownPending, "pending", true, &one, false},
		{"own, delivered", delivered, "pending", true, &two, true},
		{"a peer's", peers, "pending", false, nil, false},
	} {
		got := decode[txGetResult](t, f.call(t, "tx_get", c.tx.ID()))
		if got.Status != c.status || got.Own != c.own || got.Confirmed != c.confirmed ||
			(got.SeenBy == nil) != (c.seenBy == nil) || got.SeenBy != nil && *got.SeenBy != *c.seenBy {
			t.Errorf("%s: tx_get %+v", c.name, got)
		}
	}
	// seen_by is left out, own and confirmed are always there.
	raw := string(f.call(t, "tx_get", peers.ID()).Result)
	if strings.Contains(raw, "seen_by") || !strings.Contains(raw, `"own":false`) || !strings.Contains(raw, `"confirmed":false`) {
		t.Errorf("a peer's tx: %s", raw)
	}

	plain := newFixture(t, nil)
	if res := plain.pool.Add(ownPending, time.Now()); !res.Code.Held() {
		t.Fatal(res.Err)
	}
	if got := decode[txGetResult](t, plain.call(t, "tx_get", ownPending.ID())); got.Own || got.Confirmed || got.SeenBy != nil {
		t.Errorf("without OwnTx: %+v", got)
	}
}
