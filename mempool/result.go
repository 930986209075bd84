package mempool

import (
	"errors"
	"strconv"

	"github.com/rumor-relay/rumor/chain"
)

// Code says what Add did with a transaction. Only Invalid blames the peer
// that sent it; every other rejection can happen to an honest peer whose
// view of the chain or of the pool differs from ours.
type Code int

// Add outcomes. The zero Code is not a valid outcome, so a zero Result is
// never mistaken for success.
const (
	// Added: the transaction is executable and now held. Announce it.
	Added Code = iota + 1
	// Queued: the nonce is ahead of a gap; held until the gap fills (then
	// it appears in a later Result's Promoted) but not announced.
	Queued
	// Replaced: it replaced the sender's transaction with the same nonce,
	// paying at least ReplaceBumpPercent more. Result.Executable says
	// whether it is announceable.
	Replaced
	// AlreadyKnown: the pool holds it, or a block recently included it.
	AlreadyKnown
	// NonceTooLow: the sender's confirmed nonce is already past it.
	NonceTooLow
	// NonceTooHigh: the nonce is more than MaxNonceGap past the sender's
	// pending nonce.
	NonceTooHigh
	// FeeTooLow: below the chain's minimum fee, or a replacement without
	// the required bump (Err is then ErrReplaceUnderpriced).
	FeeTooLow
	// InsufficientFunds: the sender's confirmed balance minus the cost of
	// its pending transactions before this one cannot pay for it.
	InsufficientFunds
	// PoolFull: no room, and it does not pay more than what it would have
	// to evict (Err says which limit: ErrPoolFull, ErrSenderFull,
	// ErrQueueFull).
	PoolFull
	// Invalid: it breaks a stateless rule (encoding, size, overflow,
	// signature). The peer that sent it deserves a penalty.
	Invalid
)

var codeNames = [...]string{
	Added:             "added",
	Queued:            "queued",
	Replaced:          "replaced",
	AlreadyKnown:      "already-known",
	NonceTooLow:       "nonce-too-low",
	NonceTooHigh:      "nonce-too-high",
	FeeTooLow:         "fee-too-low",
	InsufficientFunds: "insufficient-funds",
	PoolFull:          "pool-full",
	Invalid:           "invalid",
}

// String returns the code's stable kebab-case name (logs, metrics labels).
func (c Code) String() string {
	if c > 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Penalize reports whether the peer that sent the transaction is at fault.
func (c Code) Penalize() bool { return c == Invalid }

// Held reports whether the pool now holds the transaction.
func (c Code) Held() bool { return c == Added || c == Queued || c == Replaced }

// Pool-policy errors carried in Result.Err. Rejections by chain rules carry
// a *chain.RuleError instead (chain.ReasonOf gives its reason).
var (
	// ErrKnown: the pool already holds the transaction.
	ErrKnown = errors.New("mempool: already in pool")
	// ErrIncluded: a block recently included the transaction.
	ErrIncluded = errors.New("mempool: recently included in a block")
	// ErrReplaceUnderpriced: a transaction with the same sender and nonce
	// is held and this one does not pay the required bump.
	ErrReplaceUnderpriced = errors.New("mempool: replacement fee bump too small")
	// ErrPoolFull: the pool is at MaxTxs or MaxBytes and the transaction
	// does not pay a higher fee rate than the cheapest executable one.
	ErrPoolFull = errors.New("mempool: pool full")
	// ErrSenderFull: the sender already has MaxPerSender transactions.
	ErrSenderFull = errors.New("mempool: sender limit reached")
	// ErrQueueFull: MaxQueued queued transactions are held and this
	// future-nonce one pays no more than the cheapest of them.
	ErrQueueFull = errors.New("mempool: queue full")
)

// Result is the outcome of Add.
type Result struct {
	// Code classifies the outcome.
	Code Code
	// ID is the transaction's id (zero if tx was nil).
	ID chain.Hash
	// Err says why, for anything but Added, Queued and Replaced: a
	// *chain.RuleError for rule violations, or one of the Err* values.
	Err error
	// Executable is true when the transaction is held and could be mined
	// in the next block (Added, or Replaced of an executable one): the
	// relay announces exactly these.
	Executable bool
	// Evicted lists every transaction that left the pool during this call:
	// the one replaced, those evicted for room and their higher-nonce
	// dependents, any the sender's new confirmed state made stale, and
	// any trimmed to restore the limits after a reorg re-admitted
	// transactions beyond them.
	Evicted []chain.Hash
	// Promoted lists queued transactions that became executable because
	// this one filled their gap; the relay announces them too.
	Promoted []chain.Hash
}
