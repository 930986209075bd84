package mempool

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero means defaults", Config{}, true},
		{"defaults", DefaultConfig(), true},
		{"small pool caps the per-sender and queue defaults", Config{MaxTxs: 3}, true},
		{"negative MaxTxs", Config{MaxTxs: -1}, false},
		{"negative MaxBytes", Config{MaxBytes: -1}, false},
		{"negative MaxPerSender", Config{MaxPerSender: -1}, false},
		{"negative MaxNonceGap", Config{MaxNonceGap: -1}, false},
		{"negative MaxQueued", Config{MaxQueued: -1}, false},
		{"negative TTL", Config{TTL: -time.Second}, false},
		{"negative bump", Config{ReplaceBumpPercent: -1}, false},
		{"bump over 1000%", Config{ReplaceBumpPercent: 1001}, false},
		{"negative MaxRecent", Config{MaxRecent: -1}, false},
		{"queue larger than pool", Config{MaxTxs: 10, MaxQueued: 11}, false},
		{"sender larger than pool", Config{MaxTxs: 10, MaxPerSender: 11}, false},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		if (err == nil) != c.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: error %v does not wrap ErrInvalidConfig", c.name, err)
		}
	}
	if _, err := New(Config{MaxTxs: -1}, testGenesis(t), newFakeState()); err == nil {
		t.Error("New accepted an invalid config")
	}
	if _, err := New(Config{}, nil, newFakeState()); err == nil {
		t.Error("New accepted a nil genesis")
	}
}

func TestCodeStrings(t *testing.T) {
	for c := Added; c <= Invalid; c++ {
		if s := c.String(); s == "" || s[0] == 'c' {
			t.Errorf("code %d has no name: %q", c, s)
		}
	}
	if Code(0).String() != "code(0)" || Code(0).Held() {
		t.Error("zero code must not look like an outcome")
	}
}

func TestAddNil(t *testing.T) {
	f := newFixture(t, Config{})
	if r := f.p.Add(nil, t0); r.Code != Invalid || !r.Code.Penalize() {
		t.Fatalf("nil tx: %v", r.Code)
	}
}

func TestExpire(t *testing.T) {
	f := newFixture(t, Config{TTL: time.Hour})
	f.fund(1, 1000)
	f.fund(2, 1000)
	a0, a1, a2 := tx(1, 0, 5), tx(1, 1, 5), tx(1, 2, 5)
	b0 := tx(2, 0, 5)
	// a1 arrives first; a0 later. Expiring a1 must take a2 (its
	// dependent) but leave a0, which is still executable.
	if r := f.p.Add(a1, t0); r.Code != Queued {
		t.Fatal(r.Code)
	}
	if r := f.p.Add(a0, t0.Add(10*time.Minute)); r.Code != Added {
		t.Fatal(r.Code)
	}
	if r := f.p.Add(a2, t0.Add(20*time.Minute)); r.Code != Added {
		t.Fatal(r.Code)
	}
	f.p.Add(b0, t0.Add(30*time.Minute))

	if got := f.p.Expire(t0.Add(time.Hour - time.Millisecond)); len(got) != 0 {
		t.Fatalf("expired %d before the TTL", len(got))
	}
	got := f.p.Expire(t0.Add(time.Hour))
	if !sameIDs(got, idsOf(a1, a2)) {
		t.Fatalf("expired %d txs, want a1 and its dependent a2", len(got))
	}
	if !f.p.Has(a0.ID()) || !f.p.Has(b0.ID()) || f.p.Has(a2.ID()) {
		t.Fatal("wrong txs left")
	}
	if err := f.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
	if n := f.p.PendingNonce(addr(1)); n != 1 {
		t.Fatalf("pending nonce %d, want 1", n)
	}
	if got := f.p.Expire(t0.Add(2 * time.Hour)); !sameIDs(got, idsOf(a0, b0)) {
		t.Fatalf("second expiry removed %d", len(got))
	}
	if s := f.p.Stats(); s != (Stats{}) {
		t.Fatalf("stats after expiring all: %+v", s)
	}
}

func TestBlockConnectedRevalidates(t *testing.T) {
	f := newFixture(t, Config{})
	f.fund(1, 100)
	f.fund(2, 1000)
	f.fund(3, 1000)
	a0 := mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 20})
	a1 := mkTx(txSpec{from: 1, nonce: 1, fee: 5, amount: 20})
	a2 := mkTx(txSpec{from: 1, nonce: 2, fee: 5, amount: 20})
	b0, b1 := tx(2, 0, 5), tx(2, 1, 5)
	c1, c2 := tx(3, 1, 5), tx(3, 2, 5) // queued behind c0, which only the block has
	for _, x := range []*chain.Tx{a0, a1, a2, b0, b1} {
		f.mustAdd(x, Added)
	}
	f.mustAdd(c1, Queued)
	f.mustAdd(c2, Queued)

	// The block: b0 (held), a conflicting a0' that spends most of 1's
	// balance, and c0 (never seen) which fills 3's gap.
	a0x := mkTx(txSpec{from: 1, nonce: 0, fee: 5, amount: 60})
	c0 := tx(3, 0, 5)
	blk := block(1, addr(50), b0, a0x, c0)
	state := map[chain.Address]chain.Account{}
	for i := 1; i <= 3; i++ {
		state[addr(i)] = f.st.Account(addr(i))
	}
	f.st.replace(applyBlock(t, state, blk, f.g.MinFee))
	left, promoted := f.p.BlockConnected(blk, t0)
	if err := f.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
	// 1 has 35 left: a0 is stale (same nonce mined), a1 (25) fits,
	// a2 (25 more) does not.
	if !sameIDs(left, idsOf(b0, a0, a2)) {
		t.Fatalf("%d txs left, want b0, a0, a2", len(left))
	}
	// c1 and c2 waited behind c0: the block made them executable, and
	// nothing else would tell the relay to announce them.
	if !sameIDs(promoted, idsOf(c1, c2)) {
		t.Fatalf("%d txs promoted, want c1, c2", len(promoted))
	}
	snap := f.p.snapshot()
	for _, x := range []*chain.Tx{a1, b1, c1, c2} {
		if exec, ok := snap[x.ID()]; !ok || !exec {
			t.Fatalf("tx %d of %x: held %v executable %v, want executable", x.Nonce, x.From[:2], ok, exec)
		}
	}
	for _, x := range []*chain.Tx{b0, a0x, c0} {
		if !f.p.Known(x.ID()) || f.p.Has(x.ID()) {
			t.Fatal("included tx must be known but not held")
		}
		if r := f.p.Add(x, t0); r.Code != AlreadyKnown || !errors.Is(r.Err, ErrIncluded) {
			t.Fatalf("re-adding an included tx: %v %v", r.Code, r.Err)
		}
	}
}

func TestRecentSetBounded(t *testing.T) {
	r := newRecentSet(3)
	ids := idsOf(tx(1, 0, 1), tx(1, 1, 1), tx(1, 2, 1), tx(1, 3, 1))
	for _, id := range ids[:3] {
		r.add(id)
	}
	r.add(ids[0]) // re-added: now the newest
	r.add(ids[3]) // overwrites the slot of ids[1]
	if r.has(ids[1]) || !r.has(ids[0]) || !r.has(ids[2]) || !r.has(ids[3]) {
		t.Fatal("ring eviction wrong")
	}
	if len(r.m) > 3 {
		t.Fatalf("map holds %d > 3", len(r.m))
	}
	r.remove(ids[2])
	if r.has(ids[2]) {
		t.Fatal("remove failed")
	}
	empty := newRecentSet(0)
	empty.add(ids[0])
	if empty.has(ids[0]) {
		t.Fatal("zero-size set remembered")
	}
}

func TestTemplateOrder(t *testing.T) {
	f := newFixture(t, Config{})
	for i := 1; i <= 3; i++ {
		f.fund(i, 10000)
	}
	// Sender 1: a cheap head blocks a rich child. Sender 2: steady.
	// Sender 3: one rich tx.
	s1 := []*chain.Tx{tx(1, 0, 2), tx(1, 1, 100)}
	s2 := []*chain.Tx{tx(2, 0, 10), tx(2, 1, 9), tx(2, 2, 1)}
	s3 := []*chain.Tx{tx(3, 0, 50)}
	for _, txs := range [][]*chain.Tx{s1, s2, s3} {
		for _, x := range txs {
			f.mustAdd(x, Added)
		}
	}
	f.mustAdd(tx(3, 2, 1000), Queued) // never in a template
	got := f.p.Template(math.MaxInt, 100)
	want := []*chain.Tx{s3[0], s2[0], s2[1], s1[0], s1[1], s2[2]}
	if len(got) != len(want) {
		t.Fatalf("template has %d txs, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("position %d: nonce %d fee %d, want nonce %d fee %d", i, got[i].Nonce, got[i].Fee, want[i].Nonce, want[i].Fee)
		}
	}
	if err := checkTemplate(f.p, got, math.MaxInt, 100); err != nil {
		t.Fatal(err)
	}
	if ids := f.p.IDs(3); !sameIDs(ids, idsOf(want[:3]...)) {
		t.Fatal("IDs does not follow mining order")
	}
	if got := f.p.Template(math.MaxInt, 2); len(got) != 2 || got[0] != s3[0] {
		t.Fatal("maxTxs not respected")
	}
	if f.p.Template(0, 10) != nil || f.p.Template(1000, 0) != nil || f.p.IDs(0) != nil {
		t.Fatal("empty limits must give nothing")
	}
}

func TestTemplateByteLimit(t *testing.T) {
	f := newFixture(t, Config{})
	f.fund(1, 100000)
	f.fund(2, 100000)
	big := mkTx(txSpec{from: 1, fee: 10000, payload: 1000}) // best rate, too big
	big1 := mkTx(txSpec{from: 1, nonce: 1, fee: 10000})     // behind big: skipped with it
	small := []*chain.Tx{tx(2, 0, 5), tx(2, 1, 5)}
	f.mustAdd(big, Added)
	f.mustAdd(big1, Added)
	f.mustAdd(small[0], Added)
	f.mustAdd(small[1], Added)
	budget := inBlockSize(small[0].Size()) * 2
	got := f.p.Template(budget, 100)
	if len(got) != 2 || got[0] != small[0] || got[1] != small[1] {
		t.Fatalf("template %d txs, want the two small ones", len(got))
	}
	if err := checkTemplate(f.p, got, budget, 100); err != nil {
		t.Fatal(err)
	}
	if got := f.p.Template(budget-1, 100); len(got) != 1 {
		t.Fatalf("one byte less: %d txs, want 1", len(got))
	}
	if b := TxBudget(chain.DefaultMaxBlockBytes); b != chain.DefaultMaxBlockBytes-chain.HeaderSize-3 {
		t.Fatalf("TxBudget %d", b)
	}
}

func TestLookupShortIDs(t *testing.T) {
	f := newFixture(t, Config{})
	var txs []*chain.Tx
	for i := 1; i <= 20; i++ {
		f.fund(i, 1000)
		x := tx(i, uint64(i%2), 5) // odd senders queued: lookups cover them too
		f.p.Add(x, t0)
		txs = append(txs, x)
	}
	key := sipShortID(7)
	short := []uint64{key(txs[3].ID()), 12345, key(txs[0].ID())}
	got := f.p.LookupShortIDs(key, short)
	if len(got) != 3 || got[0] != txs[3] || got[1] != nil || got[2] != txs[0] {
		t.Fatal("lookup wrong")
	}
	if got := f.p.LookupShortIDs(key, nil); len(got) != 0 {
		t.Fatal("empty lookup")
	}
	// Collisions: a short id that two held txs share resolves to nil.
	byte0 := func(id chain.Hash) uint64 { return uint64(id[0] % 4) }
	var want [4][]*chain.Tx
	for _, x := range txs {
		id := x.ID()
		want[id[0]%4] = append(want[id[0]%4], x)
	}
	res := f.p.LookupShortIDs(byte0, []uint64{0, 1, 2, 3, 9})
	for s := range 4 {
		switch {
		case len(want[s]) == 1 && res[s] != want[s][0]:
			t.Fatalf("short %d: unique match not returned", s)
		case len(want[s]) != 1 && res[s] != nil:
			t.Fatalf("short %d: %d matches, got a tx", s, len(want[s]))
		}
	}
	if res[4] != nil {
		t.Fatal("miss returned a tx")
	}
}

func TestPendingNonce(t *testing.T) {
	f := newFixture(t, Config{})
	f.st.set(addr(1), chain.Account{Balance: 1000, Nonce: 5})
	if n := f.p.PendingNonce(addr(1)); n != 5 {
		t.Fatalf("no txs: %d", n)
	}
	f.mustAdd(tx(1, 5, 5), Added)
	f.mustAdd(tx(1, 6, 5), Added)
	f.mustAdd(tx(1, 8, 5), Queued)
	if n := f.p.PendingNonce(addr(1)); n != 7 {
		t.Fatalf("with txs: %d, want 7", n)
	}
	// The store moved on before telling the pool.
	f.st.set(addr(1), chain.Account{Balance: 990, Nonce: 6})
	if n := f.p.PendingNonce(addr(1)); n != 7 {
		t.Fatalf("store ahead by one: %d, want 7", n)
	}
	f.st.set(addr(1), chain.Account{Balance: 900, Nonce: 9})
	if n := f.p.PendingNonce(addr(1)); n != 9 {
		t.Fatalf("store ahead of the pool: %d, want 9", n)
	}
	f.st.set(addr(1), chain.Account{Balance: 1000, Nonce: 3})
	if n := f.p.PendingNonce(addr(1)); n != 3 {
		t.Fatalf("store rolled back: %d, want 3", n)
	}
}

// TestAddResyncsStaleSender: the store connected a block the pool has not
// heard of yet; the next Add for that sender drops the spent nonces first.
func TestAddResyncsStaleSender(t *testing.T) {
	f := newFixture(t, Config{})
	f.fund(1, 1000)
	a0, a1, a2 := tx(1, 0, 5), tx(1, 1, 5), tx(1, 2, 5)
	f.mustAdd(a0, Added)
	f.mustAdd(a1, Added)
	f.st.set(addr(1), chain.Account{Balance: 994, Nonce: 1})
	r := f.p.Add(a2, t0)
	if r.Code != Added || !sameIDs(r.Evicted, idsOf(a0)) {
		t.Fatalf("got %v evicted %d", r.Code, len(r.Evicted))
	}
	if err := f.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentUse runs adds, lookups, templates and block events from
// several goroutines; -race checks the locking, the invariants the rest.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, Config{MaxTxs: 400, MaxQueued: 30})
	const senders, perSender = 8, 40
	for i := range senders {
		f.fund(i, 1<<30)
	}
	txs := make([][]*chain.Tx, senders)
	for i := range senders {
		for n := range perSender {
			txs[i] = append(txs[i], tx(i, uint64(n), uint64(1+n%7)))
		}
	}
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for _, x := range txs[i] {
				f.p.Add(x, t0)
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		key := sipShortID(1)
		for {
			select {
			case <-stop:
				return
			default:
			}
			tpl := f.p.Template(1<<20, 1000)
			f.p.LookupShortIDs(key, []uint64{1, 2, 3})
			f.p.IDs(10)
			f.p.Stats()
			for _, x := range tpl {
				f.p.Get(x.ID())
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	if err := f.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
	if s := f.p.Stats(); s.Count != senders*perSender {
		t.Fatalf("held %d, want %d", s.Count, senders*perSender)
	}
}

func TestAddEncoded(t *testing.T) {
	f := newFixture(t, Config{})
	f.fund(1, 1000)
	x := tx(1, 0, 5)
	body := x.Encode()
	if r := f.p.AddEncoded(body, t0); r.Code != Added || r.ID != x.ID() {
		t.Fatalf("AddEncoded: %v id ok %v", r.Code, r.ID == x.ID())
	}
	if got, ok := f.p.GetEncoded(x.ID()); !ok || string(got) != string(body) {
		t.Fatal("GetEncoded does not return the body")
	}
	if _, ok := f.p.GetEncoded(chain.Hash{1}); ok {
		t.Fatal("GetEncoded of an unknown id")
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": body[:len(body)-1],
		"trailing":  append(append([]byte(nil), body...), 0),
		"oversize":  make([]byte, chain.MaxTxSize+1),
	} {
		r := f.p.AddEncoded(b, t0)
		reason, _ := chain.ReasonOf(r.Err)
		if r.Code != Invalid || !r.Code.Penalize() || (reason != chain.ReasonMalformed && reason != chain.ReasonTxTooLarge) {
			t.Errorf("%s: %v %v", name, r.Code, r.Err)
		}
	}
}

// TestAddEncodedBatchMatchesOneByOne checks that adding a batch gives what
// AddEncoded gives for the same bodies one after the other: every result,
// and the pool they leave behind. The batch mixes what a peer's answer can
// hold: valid txs, one sender's run of nonces (the later ones fit only
// after the earlier ones are in), a bad signature, a copy of a tx earlier
// in the batch, a fee below the minimum, a nonce gap too far, and bytes
// that do not decode.
func TestAddEncodedBatchMatchesOneByOne(t *testing.T) {
	badSig := tx(3, 0, 5)
	badSig.Sig[7] ^= 1
	var bodies [][]byte
	for n := range uint64(6) {
		bodies = append(bodies, tx(1, n, 5).Encode()) // a run of one sender
	}
	bodies = append(bodies,
		tx(2, 0, 5).Encode(),
		badSig.Encode(),
		tx(1, 2, 5).Encode(), // a copy
		tx(4, 0, 0).Encode(), // fee below the minimum
		tx(5, 200, 5).Encode(),
		[]byte{1, 2, 3},
		make([]byte, chain.MaxTxSize+1),
	)
	for i := range 8 {
		bodies = append(bodies, tx(10+i, 0, 5).Encode())
	}
	setup := func() *fixture {
		f := newFixture(t, Config{})
		for i := range 20 {
			f.fund(i, 1000)
		}
		return f
	}
	seq, bat := setup(), setup()
	want := make([]Result, len(bodies))
	for i, b := range bodies {
		want[i] = seq.p.AddEncoded(b, t0)
	}
	got := bat.p.AddEncodedBatch(bodies, t0)
	if err := bat.p.checkInvariants(false); err != nil {
		t.Fatal(err)
	}
	for i := range bodies {
		w, g := want[i], got[i]
		if w.Code != g.Code || w.ID != g.ID || w.Executable != g.Executable || fmt.Sprint(w.Err) != fmt.Sprint(g.Err) {
			t.Errorf("body %d: batch %v %v (exec %v), one by one %v %v (exec %v)", i, g.Code, g.Err, g.Executable, w.Code, w.Err, w.Executable)
		}
	}
	if s, b := seq.p.Stats(), bat.p.Stats(); s != b {
		t.Errorf("pools differ: batch %+v, one by one %+v", b, s)
	}
	if got[7].Code != Invalid || got[0].Code != Added || got[5].Code != Added {
		t.Errorf("batch verdicts: bad sig %v, first %v, run's last %v", got[7].Code, got[0].Code, got[5].Code)
	}
}

// TestAddEncodedBatchSharedSigCache checks the batch path with pools that
// share a signature cache (a simulated network): the first pool's batch
// fills the cache, the second pool takes the same bodies without a batch
// check yet with the same results, and a bad signature is refused by both
// and never cached.
func TestAddEncodedBatchSharedSigCache(t *testing.T) {
	cache := NewSigCache(1024)
	g := testGenesis(t)
	mk := func() *Pool {
		st := newFakeState()
		for i := range 12 {
			st.set(addr(i), chain.Account{Balance: 1000})
		}
		p, err := New(Config{}, g, st, WithSigCache(cache))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := tx(11, 0, 5)
	bad.Sig[3] ^= 1
	var bodies [][]byte
	for i := range 10 {
		bodies = append(bodies, tx(i, 0, 5).Encode())
	}
	bodies = append(bodies, bad.Encode())
	first := mk().AddEncodedBatch(bodies, t0)
	if cache.Len() != 10 {
		t.Fatalf("cache holds %d ids after the first batch, want the 10 valid ones", cache.Len())
	}
	second := mk().AddEncodedBatch(bodies, t0)
	for i := range bodies {
		if first[i].Code != second[i].Code || fmt.Sprint(first[i].Err) != fmt.Sprint(second[i].Err) {
			t.Errorf("body %d: first pool %v %v, second %v %v", i, first[i].Code, first[i].Err, second[i].Code, second[i].Err)
		}
	}
	if r := second[len(bodies)-1]; r.Code != Invalid || cache.Has(r.ID) {
		t.Fatalf("bad signature: %v, cached %v", r.Code, cache.Has(r.ID))
	}
}
