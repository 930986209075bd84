package store

import (
	"math/rand/v2"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	golog "github.com/ipfs/go-log/v2"

	"github.com/rumor-relay/rumor/chain"
)

// log is the store's own logger; badgerLog receives Badger's messages.
var (
	log       = golog.Logger("rumor/store")
	badgerLog = golog.Logger("rumor/badger")
)

// badgerLogger routes Badger's logger into go-log. Badger logs at INFO on
// every open, flush and compaction; those go to debug, so a node (or a
// simulation with 100 stores) prints nothing from Badger unless asked to
// (GOLOG_LOG_LEVEL="rumor/badger=debug").
type badgerLogger struct{}

var _ badger.Logger = badgerLogger{}

func trimNL(f string) string { return strings.TrimRight(f, "\n") }

func (badgerLogger) Errorf(f string, a ...any)   { badgerLog.Errorf(trimNL(f), a...) }
func (badgerLogger) Warningf(f string, a ...any) { badgerLog.Warnf(trimNL(f), a...) }
func (badgerLogger) Infof(f string, a ...any)    { badgerLog.Debugf(trimNL(f), a...) }
func (badgerLogger) Debugf(f string, a ...any)   { badgerLog.Debugf(trimNL(f), a...) }

// Badger sizing. Badger's defaults (64 MiB memtables × 5, a 256 MiB block
// cache, 4 compactors, 1 GiB value-log files) suit one database per machine;
// rumor runs one store per node and simulations run 100 nodes per process.
const (
	// memMemTableSize is the least memtable of an in-memory store; see
	// memTableSizeFor for how it grows with the genesis block limit. Badger
	// allocates a memtable arena of 1.3× the size up front and caps one
	// transaction at 15% of it. With the default 1 MiB blocks the size is
	// 8 MiB (a 10.4 MiB arena): room for a 1 MiB block body, the largest
	// single value; a full block with its index entries takes the chunked
	// path (commitLarge, atomic for readers; memory has no crash to
	// survive). A 1000-node simulation with small blocks (its genesis
	// sized to its load) gets 1-1.5 MiB memtables (see memFlushSpread):
	// a 1.3-1.9 MiB arena per node.
	memMemTableSize = 1 << 20
	// memFlushSpread: an in-memory store's memtable gets a random extra of
	// up to this fraction of memMemTableSize (not of its own size: a store
	// of 1 MiB blocks would pay megabytes for it), so that the stores of a
	// simulation, which all write the same blocks, do not flush at the
	// same height. A flush holds 4 MiB of table-builder buffers (2x
	// Badger's base table size, pooled for 2-4 s after the flush) plus the
	// new table; 100 sim
	// nodes flushing together took the live heap from 4 to 9 MB per node
	// and ran the garbage collector back to back for 10 s of virtual time
	// (measured: that 10 s window took 2x the wall time of its
	// neighbours). Spread over half a memtable's worth of blocks, about a
	// fifth of the nodes are flushing at any time.
	memFlushSpread = 0.5
	// memTableStep rounds memtable sizes (Badger wants no alignment; this
	// keeps the sizes readable in profiles).
	memTableStep = 64 << 10
	// diskMinMemTableSize is the least memtable of an on-disk store; see
	// diskMemTableSize for how it grows with the genesis block limits.
	diskMinMemTableSize = 16 << 20
	// memNumMemtables: one being filled and one being flushed. More only
	// absorbs write bursts far larger than a block.
	memNumMemtables = 2
	// diskNumMemtables adds a spare, so that a slow flush to disk (it
	// competes with the fsyncs of commits) does not block the next commit.
	diskNumMemtables = 3
	// numCompactors is Badger's minimum (it refuses 1): compaction is rare
	// here, a block every few seconds.
	numCompactors = 2
	// numLevelZeroTables: see badgerOptions.
	numLevelZeroTables = 10
	// diskBlockCacheSize caches decoded SST blocks of an on-disk store.
	// Hot reads (tip metadata, accounts) are a few MiB; the OS page cache
	// does the rest. In-memory stores need no cache: their tables are
	// already in memory and uncompressed.
	diskBlockCacheSize = 8 << 20
	// diskValueThreshold: values of at least this many bytes (block bodies,
	// undo records, journal parts) go to the value log, so a commit's
	// transaction counts them as a 12-byte pointer and the LSM tree stays
	// small; metadata (187 B), accounts and index entries stay inline.
	diskValueThreshold = 1 << 10
	// diskValueLogFileSize keeps value-log files small (Badger's default
	// is 1 GiB) yet well above the largest value, a MaxBlockSize block.
	diskValueLogFileSize = 64 << 20
	// writeEntriesPerTx is the most badger entries one block transaction
	// writes per tx: its index entry and, at worst, two fresh accounts
	// (sender and recipient).
	writeEntriesPerTx = 3
	// skiplistNodeSize is badger's skl.MaxNodeSize (96 bytes on 64-bit):
	// badger caps a transaction's entry count at 15% of the memtable
	// divided by it.
	skiplistNodeSize = 96
)

// maxBlockTxs is the most transactions a block of g can hold.
func maxBlockTxs(g *chain.Genesis) int {
	n := g.MaxBlockTxs
	// A tx takes at least a length prefix and its fixed fields.
	const minTx = 1 + 2*chain.AddressSize + 3*8 + 1 + chain.SignatureSize
	if byBytes := g.MaxBlockBytes / minTx; n <= 0 || byBytes < n {
		n = byBytes
	}
	return n
}

// diskMemTableSize sizes an on-disk store's memtable so that connecting
// any block the genesis allows fits in one badger transaction (the crash
// guarantee needs nothing more than that, but one transaction per block is
// also the fastest commit): entries ≤ writeEntriesPerTx per tx, each costing
// skiplistNodeSize of the 15% batch budget. The default 1 MiB block (6,808
// txs at most) needs 13 MiB, so the 16 MiB floor holds.
func diskMemTableSize(g *chain.Genesis) int64 {
	need := int64(maxBlockTxs(g)+64) * writeEntriesPerTx * skiplistNodeSize * 100 / 15
	need = (need + 1<<20 - 1) &^ (1<<20 - 1)
	return max(need, diskMinMemTableSize)
}

// memTableSizeFor sizes an in-memory store's memtable: memMemTableSize,
// unless a single value (a block body or its undo record) could not fit in
// one transaction, which would make the block impossible to store.
func memTableSizeFor(g *chain.Genesis) int64 {
	largest := max(g.MaxBlockBytes, undoSize(2*maxBlockTxs(g)+1)) + 64<<10
	need := int64(largest) * 100 / 15
	need = (need + 1<<20 - 1) &^ (1<<20 - 1)
	return max(need, memMemTableSize)
}

func badgerOptions(g *chain.Genesis, o Options) badger.Options {
	var bo badger.Options
	if o.Dir == "" {
		bo = badger.DefaultOptions("").WithInMemory(true)
		bo.MemTableSize = memTableSizeFor(g)
		bo.MemTableSize += rand.Int64N(int64(memMemTableSize*memFlushSpread)+1) &^ (memTableStep - 1)
		bo.NumMemtables = memNumMemtables
		bo.BlockCacheSize = 0
		// Badger refuses a value threshold above its batch cap (15% of the
		// memtable), which small memtables fall under; every value still
		// stays inline, since memTableSizeFor leaves the cap above the
		// largest value (an in-memory store has no value log).
		bo.ValueThreshold = min(bo.ValueThreshold, bo.MemTableSize*15/100)
	} else {
		bo = badger.DefaultOptions(o.Dir)
		bo.MemTableSize = diskMemTableSize(g)
		bo.NumMemtables = diskNumMemtables
		bo.BlockCacheSize = diskBlockCacheSize
		bo.ValueThreshold = diskValueThreshold
		bo.ValueLogFileSize = diskValueLogFileSize
		bo.SyncWrites = o.SyncWrites
	}
	bo.Logger = badgerLogger{}
	// Block bodies are signatures and keys: incompressible. No compression
	// also lets in-memory stores run without a block cache.
	bo.Compression = options.None
	bo.IndexCacheSize = 0 // 0 = table indexes stay in memory (small tables)
	bo.NumCompactors = numCompactors
	bo.BaseTableSize = 2 << 20
	// Compact L0 after 10 tables, not Badger's 5: every block rewrites its
	// ~1,000 senders' accounts, so a larger L0->L1 compaction drops more
	// stale versions per key written, and compactions (which compete with
	// commits for CPU and disk) run half as often. Measured with 1 MB
	// blocks over 600 blocks: synced p99 97 -> 57 ms, CPU per block -18%.
	bo.NumLevelZeroTables = numLevelZeroTables
	bo.NumLevelZeroTablesStall = 2 * numLevelZeroTables
	bo.NumGoroutines = 2
	// Writers are serialized by Store.mu, so conflict detection is wasted
	// work and memory.
	bo.DetectConflicts = false
	// Badger's metrics are process-global expvars, shared by all stores.
	bo.MetricsEnabled = false
	return bo
}
