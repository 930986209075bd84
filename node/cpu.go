package node

import (
	"fmt"
	"time"

	"github.com/rumor-relay/rumor/chain"
)

// CPUModel makes a simulated node pay, in time, for the work that costs
// CPU on a real node, so that a testnet run in virtual time (where real
// computation takes no time at all) still sees validation and commit
// delays, and each node has a CPU budget of its own as a separate machine
// would. A node given one (WithCPUModel) sleeps for the modelled cost of
// each charged operation while holding one of Cores slots: operations
// beyond Cores queue, as they would on a busy machine. The slots are a
// channel and no charge is taken under a mutex: in a synctest bubble a
// goroutine waiting on a mutex would stop virtual time.
//
// Charged: a transaction's signature check when the pool takes it
// (TxVerify, or TxVerifyBatched each when a fetched batch of at least
// chain.BatchSigMin is checked together; known transactions are free),
// an announced or fetched block header's signature check before the relay
// fetches anything for it (TxVerify, one ed25519 check as well), and a
// block's import: Base, plus a check for each of its transactions the pool
// did not already verify (batched likewise), plus CommitPerMiB for its
// size (validation hashing and the store commit). Not charged: GossipSub's
// own message signatures, encoding, and the relay's bookkeeping.
//
// The defaults (DefaultCPUModel) come from this project's benchmarks on a
// 2-core EPYC VM: ed25519 verification ~41 µs (mempool accept of signed
// 250 B txs, 24,700/s on one core), ~20 µs each in batches of 64 (43,400/s
// accepted on one core with AddEncodedBatch), a 1 MiB block's validation
// and synced Badger commit ~16 ms (BenchmarkCommitBlock1MB p50).
type CPUModel struct {
	// Cores is how many charged operations run at once (>= 1).
	Cores int `json:"cores"`
	// TxVerify is one transaction signature check.
	TxVerify time.Duration `json:"tx_verify_ns"`
	// TxVerifyBatched is one signature's share of a batch check.
	TxVerifyBatched time.Duration `json:"tx_verify_batched_ns"`
	// BlockBase is the fixed cost of importing a block.
	BlockBase time.Duration `json:"block_base_ns"`
	// CommitPerMiB is validation and commit per MiB of block.
	CommitPerMiB time.Duration `json:"commit_per_mib_ns"`
}

// DefaultCPUModel returns the measured defaults (see CPUModel).
func DefaultCPUModel() CPUModel {
	return CPUModel{Cores: 4, TxVerify: 41 * time.Microsecond, TxVerifyBatched: 20 * time.Microsecond,
		BlockBase: 200 * time.Microsecond, CommitPerMiB: 16 * time.Millisecond}
}

// String describes the model for reports.
func (m CPUModel) String() string {
	return fmt.Sprintf("%d cores, tx verify %v (%v batched), block %v + %v/MiB", m.Cores, m.TxVerify, m.TxVerifyBatched, m.BlockBase, m.CommitPerMiB)
}

// cpu is one node's budget under a CPUModel; nil charges nothing.
type cpu struct {
	model CPUModel
	slots chan struct{}
}

func newCPU(m *CPUModel) *cpu {
	if m == nil {
		return nil
	}
	return &cpu{model: *m, slots: make(chan struct{}, max(m.Cores, 1))}
}

// spend holds a slot for d.
func (c *cpu) spend(d time.Duration) {
	if c == nil || d <= 0 {
		return
	}
	c.slots <- struct{}{}
	time.Sleep(d)
	<-c.slots
}

// txVerify charges one signature check.
func (c *cpu) txVerify() {
	if c != nil {
		c.spend(c.model.TxVerify)
	}
}

// sigChecks is the cost of n signature checks made together: batched
// from chain.BatchSigMin on, as the chain checks them.
func (m *CPUModel) sigChecks(n int) time.Duration {
	if n >= chain.BatchSigMin {
		return time.Duration(n) * m.TxVerifyBatched
	}
	return time.Duration(n) * m.TxVerify
}

// txVerifyBatch charges n signature checks made together.
func (c *cpu) txVerifyBatch(n int) {
	if c != nil {
		c.spend(c.model.sigChecks(n))
	}
}

// block charges a block import of size bytes with unverified transactions
// whose signatures were not checked before.
func (c *cpu) block(size, unverified int) {
	if c == nil {
		return
	}
	d := c.model.BlockBase + c.model.sigChecks(unverified) +
		time.Duration(float64(c.model.CommitPerMiB)*float64(size)/float64(1<<20))
	c.spend(d)
}

// WithCPUModel makes the node pay modelled CPU time (see CPUModel) for
// transaction and block validation: for simulated testnets in virtual time.
// Each node gets its own budget of m.Cores slots.
func WithCPUModel(m CPUModel) Option {
	return func(o *options) { o.cpu = &m }
}
