package store

import (
	"slices"
	"testing"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// benchSenders accounts are funded for the benchmark blocks.
const benchSenders = 1024

// blockShape is what fills a benchmark block: perSender txs from each of
// benchSenders accounts, with payload-byte payloads.
type blockShape struct {
	name      string
	perSender int
	payload   int
}

// The two 1 MB shapes: 4096 small transfers of 255 bytes (Ethereum's median
// tx is ~200 bytes; 1,044,658 bytes in all, just under the default 1 MiB
// limit) and 1024 txs of 1016 bytes (1,040,384 bytes). The store's cost is
// mostly per tx (an index entry, two accounts), so the first is the hard
// case.
var benchShapes = []blockShape{
	{"txs=4096", 4, 100},
	{"txs=1024", 1, 860},
}

// benchChain makes consecutive full blocks on one store. Transactions are
// not signed: the blocks are added with AddBlockVerified and a "verified"
// set that covers every tx, as a relay does with txs its mempool already
// checked, so the benchmark measures the store (state, encoding, commit),
// not ed25519.
type benchChain struct {
	f      *fixture
	shape  blockShape
	parent *chain.Header
	nonce  uint64
	to     chain.Address
	pay    []byte
}

func newBenchChain(f *fixture, s *Store, shape blockShape) *benchChain {
	tip, _ := s.Tip()
	return &benchChain{f: f, shape: shape, parent: tip, to: chain.Address{0xbe}, pay: make([]byte, shape.payload)}
}

func (c *benchChain) next() *chain.Block {
	txs := make([]*chain.Tx, 0, benchSenders*c.shape.perSender)
	for k := range c.shape.perSender {
		for i := range benchSenders {
			c.pay[0] = byte(k)
			txs = append(txs, &chain.Tx{From: c.f.addr(i), To: c.to, Amount: 1, Fee: 1,
				Nonce: c.nonce + uint64(k), Payload: append([]byte(nil), c.pay...)})
		}
	}
	c.nonce += uint64(c.shape.perSender)
	blk := c.f.block(c.parent, 0, txs...)
	c.parent = &blk.Header
	return blk
}

func allVerified(chain.Hash) bool { return true }

// BenchmarkCommitBlock1MB adds full 1 MB blocks extending the tip of an
// on-disk store, with and without synced writes (and in memory, for
// reference), and reports the 99th percentile of the per-block time
// (p99-ms) besides the mean. The time is the whole AddBlockVerified:
// CheckBlock without tx signatures, state application, the commit;
// commit-p50-ms and commit-p99-ms time the Badger commit alone; cpu-ms/op
// is the process CPU time (all goroutines, Badger's background work
// included) spent while a block was being added, a figure that does not
// depend on how busy the machine is. Run with -benchtime=200x or so for a
// meaningful p99.
func BenchmarkCommitBlock1MB(b *testing.B) {
	for _, shape := range benchShapes {
		for _, tc := range []struct {
			name string
			opts func(b *testing.B) Options
		}{
			{"sync", func(b *testing.B) Options { return Options{Dir: b.TempDir(), SyncWrites: true} }},
			{"nosync", func(b *testing.B) Options { return Options{Dir: b.TempDir()} }},
			{"memory", func(b *testing.B) Options { return Options{} }},
		} {
			b.Run(shape.name+"/"+tc.name, func(b *testing.B) { benchCommit(b, shape, tc.opts(b)) })
		}
	}
}

func benchCommit(b *testing.B, shape blockShape, opts Options) {
	f := newFixture(b, benchSenders, 4)
	s := f.open(opts)
	c := newBenchChain(f, s, shape)
	durs := make([]time.Duration, 0, b.N)
	commits := make([]time.Duration, 0, b.N)
	size := 0
	var cpu time.Duration
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		blk := c.next()
		size = blk.Size()
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		res, err := s.AddBlockVerified(blk, f.now, allVerified)
		d := time.Since(start)
		cpu += processCPU() - cpu0
		b.StopTimer()
		if err != nil || res.Status != Connected {
			b.Fatalf("AddBlock: %v %v", res.Status, err)
		}
		durs = append(durs, d)
		commits = append(commits, s.lastCommit)
	}
	p50 := percentile(durs, 50)
	p99 := percentile(durs, 99)
	var sum time.Duration
	for _, d := range durs {
		sum += d
	}
	b.SetBytes(int64(size))
	b.ReportMetric(float64(sum.Microseconds())/float64(len(durs))/1000, "ms/op")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(durs))/1000, "cpu-ms/op")
	b.ReportMetric(float64(percentile(commits, 50).Microseconds())/1000, "commit-p50-ms")
	b.ReportMetric(float64(percentile(commits, 99).Microseconds())/1000, "commit-p99-ms")
}

// percentile returns the p-th percentile of ds (sorting ds).
func percentile(ds []time.Duration, p int) time.Duration {
	slices.Sort(ds)
	return ds[min(len(ds)-1, len(ds)*p/100)]
}
