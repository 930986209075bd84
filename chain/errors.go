package chain

import (
	"errors"
	"fmt"
	"strconv"
)

// Reason says why a transaction or block was rejected. Callers switch on it
// (the mempool maps it to a Code, the relay to a GossipSub verdict, the RPC
// server to the "reason" field of an error) instead of matching messages.
// The numeric values are part of the RPC interface ("code" in tx_send
// errors): append new reasons, never renumber.
type Reason uint16

// Rejection reasons. Transaction reasons come first, then block reasons.
const (
	// ReasonNone is the zero value; no RuleError carries it.
	ReasonNone Reason = iota
	// ReasonMalformed: the bytes do not decode, or a value is structurally
	// unusable (nil block, nil header).
	ReasonMalformed
	// ReasonTxTooLarge: the encoded tx exceeds the wire cap MaxTxSize.
	ReasonTxTooLarge
	// ReasonPayloadTooLarge: the payload exceeds the genesis MaxPayloadBytes.
	ReasonPayloadTooLarge
	// ReasonBadSignature: the tx signature does not verify under From for
	// this chain id.
	ReasonBadSignature
	// ReasonAmountOverflow: amount + fee, or a credited balance, overflows
	// uint64.
	ReasonAmountOverflow
	// ReasonNonceTooLow: the sender already used this nonce (replay, or
	// already included). Not the sender's fault in a race; no penalty.
	ReasonNonceTooLow
	// ReasonNonceTooHigh: the nonce is ahead of the sender's next nonce. A
	// mempool may queue it; a block may not contain it.
	ReasonNonceTooHigh
	// ReasonInsufficientBalance: the sender cannot pay amount + fee.
	ReasonInsufficientBalance
	// ReasonFeeTooLow: the fee is below the minimum.
	ReasonFeeTooLow

	// ReasonBadHeight: the block height is not its parent's plus one.
	ReasonBadHeight
	// ReasonBadParent: the header's parent id is not the given parent's id.
	ReasonBadParent
	// ReasonWrongProposer: the proposer is not the authority whose turn it
	// is at this height.
	ReasonWrongProposer
	// ReasonBadBlockSignature: the header signature does not verify under
	// the proposer for this chain id.
	ReasonBadBlockSignature
	// ReasonBadTxRoot: the header's TxRoot is not the Merkle root of the
	// block's transaction ids.
	ReasonBadTxRoot
	// ReasonTimeTooFarInFuture: the timestamp is more than
	// MaxFutureBlockTime ahead of the local clock. The block may become
	// valid later, so it is not a penalty (clock skew is not malice).
	ReasonTimeTooFarInFuture
	// ReasonTimeNotAfterParent: the timestamp is not after the parent's.
	ReasonTimeNotAfterParent
	// ReasonBlockTooLarge: the encoded block exceeds the genesis
	// MaxBlockBytes.
	ReasonBlockTooLarge
	// ReasonTooManyTxs: the block has more transactions than the genesis
	// MaxBlockTxs.
	ReasonTooManyTxs
	// ReasonInvalidTx: a transaction in the block is invalid, statelessly
	// or against the state at the parent; RuleError.TxIndex says which and
	// RuleError.Err (via errors.As/Unwrap) carries the tx's own RuleError.
	ReasonInvalidTx
	// ReasonDuplicateTx: the same transaction id appears twice in a block.
	ReasonDuplicateTx
	// ReasonUnknownParent: the block's parent is not known (an orphan). Not
	// a penalty: the sender may simply be ahead of us.
	ReasonUnknownParent
	// ReasonReorgTooDeep: adopting the block would disconnect more than the
	// store's reorg depth limit. Not a penalty: the block may be valid.
	ReasonReorgTooDeep
	// ReasonBadGenesis: a block claims height 0 but is not our genesis, or
	// a stored genesis differs from the configured one.
	ReasonBadGenesis

	numReasons // keep last
)

var reasonNames = [numReasons]string{
	ReasonNone:                "none",
	ReasonMalformed:           "malformed",
	ReasonTxTooLarge:          "tx-too-large",
	ReasonPayloadTooLarge:     "payload-too-large",
	ReasonBadSignature:        "bad-signature",
	ReasonAmountOverflow:      "amount-overflow",
	ReasonNonceTooLow:         "nonce-too-low",
	ReasonNonceTooHigh:        "nonce-too-high",
	ReasonInsufficientBalance: "insufficient-balance",
	ReasonFeeTooLow:           "fee-too-low",
	ReasonBadHeight:           "bad-height",
	ReasonBadParent:           "bad-parent",
	ReasonWrongProposer:       "wrong-proposer",
	ReasonBadBlockSignature:   "bad-block-signature",
	ReasonBadTxRoot:           "bad-tx-root",
	ReasonTimeTooFarInFuture:  "time-too-far-in-future",
	ReasonTimeNotAfterParent:  "time-not-after-parent",
	ReasonBlockTooLarge:       "block-too-large",
	ReasonTooManyTxs:          "too-many-txs",
	ReasonInvalidTx:           "invalid-tx",
	ReasonDuplicateTx:         "duplicate-tx",
	ReasonUnknownParent:       "unknown-parent",
	ReasonReorgTooDeep:        "reorg-too-deep",
	ReasonBadGenesis:          "bad-genesis",
}

// String returns the reason's stable kebab-case name (used in RPC errors,
// logs and metrics labels).
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Penalize reports whether an object rejected for this reason is provably
// invalid, whoever looks at it, so the peer that relayed it is at fault.
// Reasons that depend on the receiver's view (its state, its clock, its
// copy of the chain, its fee policy) return false: an honest peer can send
// such an object in a race. Inside a block every tx failure is reported as
// ReasonInvalidTx, which does penalize: a block is judged against the
// state of its own parent, which every node computes alike.
func (r Reason) Penalize() bool {
	switch r {
	case ReasonNone, ReasonNonceTooLow, ReasonNonceTooHigh, ReasonInsufficientBalance,
		ReasonFeeTooLow, ReasonTimeTooFarInFuture, ReasonUnknownParent, ReasonReorgTooDeep:
		return false
	}
	return true
}

// RuleError is a consensus or validation rule violation. Every rejection by
// CheckTx, CheckTxState, CheckBlock and ApplyBlockTxs is a *RuleError.
type RuleError struct {
	Reason  Reason
	TxIndex int    // index of the offending tx in its block; -1 if not applicable
	Detail  string // human-readable specifics, for logs only
	// Err is the underlying error, if any: the tx's own *RuleError for
	// ReasonInvalidTx, or a decoding error (wrapping ErrMalformed).
	Err error
}

// Error formats the reason, the tx index if any, and the detail.
func (e *RuleError) Error() string {
	s := e.Reason.String()
	if e.TxIndex >= 0 {
		s += " (tx " + strconv.Itoa(e.TxIndex) + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, so errors.Is(err, ErrMalformed) and
// errors.As on the inner tx error work.
func (e *RuleError) Unwrap() error { return e.Err }

// ruleErr builds a RuleError with no tx index.
func ruleErr(r Reason, format string, args ...any) *RuleError {
	return &RuleError{Reason: r, TxIndex: -1, Detail: fmt.Sprintf(format, args...)}
}

// invalidTx wraps a tx's error as the ReasonInvalidTx of a block.
func invalidTx(i int, err error) *RuleError {
	return &RuleError{Reason: ReasonInvalidTx, TxIndex: i, Err: err}
}

// ReasonOf returns the reason of the outermost *RuleError in err's chain. A
// decoding error (wrapping ErrMalformed) with no RuleError yields
// ReasonMalformed. ok is false for any other error (I/O, nil).
func ReasonOf(err error) (r Reason, ok bool) {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	if errors.Is(err, ErrMalformed) {
		return ReasonMalformed, true
	}
	return ReasonNone, false
}

// TxReasonOf returns the innermost reason in err's chain: for a block
// rejected with ReasonInvalidTx it is the offending tx's reason (for example
// ReasonInsufficientBalance), otherwise the same as ReasonOf.
func TxReasonOf(err error) (r Reason, ok bool) {
	r, ok = ReasonOf(err)
	for err != nil {
		var re *RuleError
		if !errors.As(err, &re) {
			break
		}
		r, ok = re.Reason, true
		err = re.Err
	}
	return r, ok
}
