package mempool

import (
	"crypto/ed25519"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// Benchmark fixture sizes.
const (
	benchSenders  = 2000 // distinct keys in BenchmarkAccept
	benchTxSize   = 250  // encoded bytes per tx, a typical transfer with a memo
	benchPoolTxs  = DefaultMaxTxs
	benchPayload  = benchTxSize - 153 // 152 fixed + 1 length byte
	benchBlockMax = chain.DefaultMaxBlockBytes
)

var benchKeys struct {
	once sync.Once
	keys []ed25519.PrivateKey
	st   *fakeState
}

func benchSetup() ([]ed25519.PrivateKey, *fakeState) {
	benchKeys.once.Do(func() {
		benchKeys.st = newFakeState()
		for i := range benchSenders {
			k := chain.TestnetAccountKey("bench", i)
			benchKeys.keys = append(benchKeys.keys, k)
			benchKeys.st.set(chain.AddressOf(k), chain.Account{Balance: 1 << 50})
		}
	})
	return benchKeys.keys, benchKeys.st
}

// benchSigned caches signed 250-byte txs, round-robin over the senders so
// that every prefix is all executable (nonce i/benchSenders).
var benchSigned []*chain.Tx

func signedBenchTxs(n int) []*chain.Tx {
	keys, _ := benchSetup()
	for i := len(benchSigned); i < n; i++ {
		k := keys[i%benchSenders]
		x := &chain.Tx{From: chain.AddressOf(k), Amount: 1, Fee: uint64(1 + i%97), Nonce: uint64(i / benchSenders), Payload: make([]byte, benchPayload)}
		x.To[0] = byte(i)
		x.Sign(testChainID, k)
		benchSigned = append(benchSigned, x)
	}
	return benchSigned[:n]
}

// BenchmarkAccept adds new signed 250-byte txs from many senders: hashing,
// the signature check and the pool's bookkeeping ("tx": Add of a decoded
// tx; "encoded": AddEncoded of wire bytes, decoding included, the relay's
// path). Run with -cpu 1 for the one-core figure.
func BenchmarkAccept(b *testing.B) {
	for _, mode := range []string{"tx", "encoded", "batch64"} {
		encoded := mode != "tx"
		b.Run(mode, func(b *testing.B) {
			_, st := benchSetup()
			g := testGenesis(b)
			cfg := Config{MaxTxs: 1 << 20, MaxBytes: 1 << 30, MaxQueued: 1000}
			txs := signedBenchTxs(min(b.N, benchSenders*DefaultMaxPerSender))
			if b.N > len(txs) {
				b.Fatalf("b.N %d exceeds the %d distinct executable txs; lower -benchtime", b.N, len(txs))
			}
			if txs[0].Size() != benchTxSize {
				b.Fatalf("tx size %d", txs[0].Size())
			}
			var bodies [][]byte
			if encoded {
				for _, x := range txs {
					bodies = append(bodies, x.Encode())
				}
			}
			p, _ := New(cfg, g, st)
			b.ReportAllocs()
			b.ResetTimer()
			// batch64 adds a fetched answer's worth of bodies at a time:
			// one batch signature check each.
			const batch = 64
			for lo := 0; lo < b.N; lo += batch {
				var rs []Result
				switch mode {
				case "batch64":
					rs = p.AddEncodedBatch(bodies[lo:min(lo+batch, b.N)], t0)
				case "encoded":
					for i := lo; i < min(lo+batch, b.N); i++ {
						rs = append(rs, p.AddEncoded(bodies[i], t0))
					}
				default:
					for i := lo; i < min(lo+batch, b.N); i++ {
						rs = append(rs, p.Add(txs[i], t0))
					}
				}
				for i, r := range rs {
					if r.Code != Added {
						b.Fatalf("tx %d: %v (%v)", lo+i, r.Code, r.Err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}

// BenchmarkAcceptNoSig is BenchmarkAccept minus hashing and the signature
// check: the pool's own cost per tx, under its lock. The txs are unsigned
// (the internal path does not look), 50 per sender; a fresh pool is made
// every 100,000 txs, off the clock.
func BenchmarkAcceptNoSig(b *testing.B) {
	g := testGenesis(b)
	const chunk, perSender = 100_000, 50
	st := newFakeState()
	txs := make([]*chain.Tx, chunk)
	ids := make([]chain.Hash, chunk)
	for i := range txs {
		var from chain.Address
		s := i % (chunk / perSender)
		from[0], from[1], from[2] = byte(s), byte(s>>8), byte(s>>16)
		st.set(from, chain.Account{Balance: 1 << 50})
		txs[i] = &chain.Tx{From: from, Amount: 1, Fee: uint64(1 + i%97), Nonce: uint64(i / (chunk / perSender)), Payload: make([]byte, benchPayload)}
		ids[i] = txs[i].ID()
	}
	var p *Pool
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%chunk == 0 {
			b.StopTimer()
			p, _ = New(Config{MaxTxs: chunk, MaxBytes: 1 << 30, MaxQueued: 1000}, g, st)
			b.StartTimer()
		}
		p.mu.Lock()
		r := p.addLocked(txs[i%chunk], ids[i%chunk], t0, false)
		p.mu.Unlock()
		if r.Code != Added {
			b.Fatalf("tx %d: %v", i, r.Code)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

// fullPool returns a pool holding benchPoolTxs unsigned 250-byte txs (the
// pool's internal path skips the signature), 10 per sender, random fees.
func fullPool(b *testing.B) *Pool {
	b.Helper()
	g := testGenesis(b)
	st := newFakeState()
	p, _ := New(Config{}, g, st)
	rng := rand.New(rand.NewPCG(1, 2))
	const perSender = 10
	for s := range benchPoolTxs / perSender {
		var from chain.Address
		from[0], from[1], from[2] = byte(s), byte(s>>8), byte(s>>16)
		st.set(from, chain.Account{Balance: 1 << 50})
		for n := range perSender {
			x := &chain.Tx{From: from, Amount: 1, Fee: 1 + rng.Uint64N(1000), Nonce: uint64(n), Payload: make([]byte, benchPayload)}
			p.mu.Lock()
			r := p.addLocked(x, x.ID(), t0, false)
			p.mu.Unlock()
			if r.Code != Added {
				b.Fatalf("fill: %v (%v)", r.Code, r.Err)
			}
		}
	}
	if s := p.Stats(); s.Count != benchPoolTxs {
		b.Fatalf("fill: %+v", s)
	}
	return p
}

// BenchmarkTemplate selects a 1 MB block from a full pool (50,000 txs).
func BenchmarkTemplate(b *testing.B) {
	p := fullPool(b)
	budget := TxBudget(benchBlockMax)
	var n int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n = len(p.Template(budget, chain.DefaultMaxBlockTxs))
	}
	b.ReportMetric(float64(n), "txs/block")
}

// BenchmarkLookupShortIDs resolves a 1 MB compact block's short ids (4,000
// txs, all in the pool) against a full pool.
func BenchmarkLookupShortIDs(b *testing.B) {
	p := fullPool(b)
	txs := p.Template(TxBudget(benchBlockMax), chain.DefaultMaxBlockTxs)
	key := sipShortID(42)
	short := make([]uint64, len(txs))
	for i, x := range txs {
		short[i] = key(x.ID())
	}
	b.ReportAllocs()
	b.ResetTimer()
	var hits int
	for b.Loop() {
		hits = 0
		for _, x := range p.LookupShortIDs(key, short) {
			if x != nil {
				hits++
			}
		}
	}
	b.ReportMetric(float64(hits), "hits")
}

// BenchmarkBlockConnected removes a 1 MB block's txs from a full pool and
// re-syncs their senders.
func BenchmarkBlockConnected(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		p := fullPool(b)
		txs := p.Template(TxBudget(benchBlockMax), chain.DefaultMaxBlockTxs)
		blk := block(1, chain.Address{0xff}, txs...)
		st := p.state.(*fakeState)
		for _, x := range txs {
			a := st.Account(x.From)
			c, _ := x.Cost()
			st.set(x.From, chain.Account{Balance: a.Balance - c, Nonce: a.Nonce + 1})
		}
		b.StartTimer()
		p.BlockConnected(blk, t0)
	}
}

// BenchmarkVerifySig is the floor under BenchmarkAccept: one ed25519
// verification of a 250-byte tx, nothing else. Accept's tx/s over this
// one's is the share of time the pool adds.
func BenchmarkVerifySig(b *testing.B) {
	txs := signedBenchTxs(1000)
	i := 0
	for b.Loop() {
		if !txs[i%len(txs)].VerifySig(testChainID) {
			b.Fatal("bad signature")
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verify/s")
}
