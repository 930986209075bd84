package chain

import (
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Account is the state of one address: its balance and the nonce its next
// transaction must carry. The zero Account is an address never funded.
type Account struct {
	Balance uint64 `json:"balance"`
	Nonce   uint64 `json:"nonce"` // next expected nonce = number of txs sent
}

// CheckTx runs the stateless transaction checks, cheapest first: encoded
// size within the wire cap (ReasonTxTooLarge), payload within the genesis
// limit (ReasonPayloadTooLarge), amount + fee without overflow
// (ReasonAmountOverflow), and the signature under From for this chain id
// (ReasonBadSignature). It returns nil or a *RuleError with TxIndex -1.
func (g *Genesis) CheckTx(tx *Tx) error {
	if err := g.checkTxCheap(tx); err != nil {
		return err
	}
	if !tx.VerifySig(g.ChainID) {
		return badSigErr(tx)
	}
	return nil
}

func badSigErr(tx *Tx) *RuleError {
	return ruleErr(ReasonBadSignature, "signature does not verify under sender %s", tx.From)
}

// CheckTxUnsigned is CheckTx without the signature check, for a caller
// that knows these exact bytes verified before (a verification cache
// keyed by tx id, which hashes the signed encoding).
func (g *Genesis) CheckTxUnsigned(tx *Tx) error {
	if err := g.checkTxCheap(tx); err != nil {
		return err
	}
	return nil
}

// CheckTxSigChecked is CheckTx for a caller that already checked the
// signature (VerifyTxSigs) and found it sigOK: the same checks in the same
// order, with the same errors, and no second signature check.
func (g *Genesis) CheckTxSigChecked(tx *Tx, sigOK bool) error {
	if err := g.checkTxCheap(tx); err != nil {
		return err
	}
	if !sigOK {
		return badSigErr(tx)
	}
	return nil
}

// checkTxCheap is CheckTx without the signature check.
func (g *Genesis) checkTxCheap(tx *Tx) *RuleError {
	if tx == nil {
		return ruleErr(ReasonMalformed, "nil tx")
	}
	if n := len(tx.Payload); n > MaxPayloadSize {
		return ruleErr(ReasonTxTooLarge, "payload of %d bytes exceeds wire cap %d", n, MaxPayloadSize)
	}
	if n := len(tx.Payload); n > g.MaxPayloadBytes {
		return ruleErr(ReasonPayloadTooLarge, "payload of %d bytes exceeds limit %d", n, g.MaxPayloadBytes)
	}
	if _, ok := tx.Cost(); !ok {
		return ruleErr(ReasonAmountOverflow, "amount %d + fee %d overflows", tx.Amount, tx.Fee)
	}
	return nil
}

// ParseTx decodes a transaction from untrusted bytes and runs CheckTx. A
// decoding failure is a *RuleError with ReasonTxTooLarge (over MaxTxSize,
// rejected before decoding) or ReasonMalformed (wrapping ErrMalformed).
func (g *Genesis) ParseTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxSize {
		return nil, ruleErr(ReasonTxTooLarge, "%d bytes exceeds wire cap %d", len(b), MaxTxSize)
	}
	tx, err := DecodeTx(b)
	if err != nil {
		return nil, &RuleError{Reason: ReasonMalformed, TxIndex: -1, Err: err}
	}
	if err := g.CheckTx(tx); err != nil {
		return nil, err
	}
	return tx, nil
}

// CheckTxState checks a transaction against its sender's account: the nonce
// must be acct.Nonce exactly (ReasonNonceTooLow / ReasonNonceTooHigh), the
// fee at least minFee (ReasonFeeTooLow), and the balance must cover amount
// plus fee (ReasonInsufficientBalance; ReasonAmountOverflow if the sum
// overflows). A mempool that queues future nonces calls it with the
// sender's pending account. It does not check the signature (CheckTx).
func CheckTxState(tx *Tx, acct Account, minFee uint64) error {
	switch {
	case tx.Nonce < acct.Nonce:
		return ruleErr(ReasonNonceTooLow, "nonce %d, account expects %d", tx.Nonce, acct.Nonce)
	case tx.Nonce > acct.Nonce:
		return ruleErr(ReasonNonceTooHigh, "nonce %d, account expects %d", tx.Nonce, acct.Nonce)
	case tx.Nonce == math.MaxUint64:
		// The account's next nonce would wrap to 0 and reopen replays.
		return ruleErr(ReasonNonceTooHigh, "nonce %d is the last one", tx.Nonce)
	}
	if tx.Fee < minFee {
		return ruleErr(ReasonFeeTooLow, "fee %d below minimum %d", tx.Fee, minFee)
	}
	cost, ok := tx.Cost()
	if !ok {
		return ruleErr(ReasonAmountOverflow, "amount %d + fee %d overflows", tx.Amount, tx.Fee)
	}
	if cost > acct.Balance {
		return ruleErr(ReasonInsufficientBalance, "cost %d exceeds balance %d", cost, acct.Balance)
	}
	return nil
}

// CheckBlock checks a block against its parent header and the local clock
// now: header rules first (height = parent + 1, parent id, proposer's turn,
// header signature, timestamp after the parent's and at most
// MaxFutureBlockTime ahead of now), then the body (encoded size and tx count
// within the genesis limits, no duplicate tx id, TxRoot = Merkle root of
// the tx ids, CheckTx of every tx, reported as ReasonInvalidTx with the
// tx's index). State checks of the txs (nonces, balances, fees) are
// ApplyBlockTxs's, run against the parent's state when the block connects.
// It returns nil or a *RuleError.
func (g *Genesis) CheckBlock(b *Block, parent *Header, now time.Time) error {
	return g.CheckBlockVerified(b, parent, now, nil)
}

// CheckBlockVerified is CheckBlock that skips the signature check of every
// tx whose id verified reports true. A tx id hashes the whole encoding,
// signature included, so a mempool's Has is a sound verified set: any tx
// with that id is byte-identical to one whose signature the pool checked
// under this chain id. This is Bitcoin's signature cache: a compact block
// rebuilt from the mempool then costs hashing, not 4000 signature checks.
// verified nil checks every signature. The signatures left are checked in
// batches (VerifyTxSigs), several at once on a large block.
func (g *Genesis) CheckBlockVerified(b *Block, parent *Header, now time.Time, verified func(Hash) bool) error {
	_, err := g.CheckBlockIDs(b, parent, now, verified)
	return err
}

// CheckBlockIDs is CheckBlockVerified that also returns b's tx ids (as
// b.TxIDs would) when b passes: the check hashes every tx anyway, and a
// node's store, pool and served-tx cache need the same ids for the same
// block, so hashing them once spares a full block several passes.
func (g *Genesis) CheckBlockIDs(b *Block, parent *Header, now time.Time, verified func(Hash) bool) ([]Hash, error) {
	if b == nil || parent == nil {
		return nil, ruleErr(ReasonMalformed, "nil block or parent")
	}
	h := &b.Header
	if parent.Height == math.MaxUint64 || h.Height != parent.Height+1 {
		return nil, ruleErr(ReasonBadHeight, "height %d, parent height %d", h.Height, parent.Height)
	}
	if pid := parent.ID(); h.Parent != pid {
		return nil, ruleErr(ReasonBadParent, "parent %s, expected %s", h.Parent.Short(), pid.Short())
	}
	if err := g.CheckHeaderAuth(h); err != nil {
		return nil, err
	}
	if h.Time <= parent.Time {
		return nil, ruleErr(ReasonTimeNotAfterParent, "time %d not after parent time %d", h.Time, parent.Time)
	}
	// Checked after the signature, so a skewed clock is reported only for
	// a block its authority really signed.
	if limit := now.UnixMilli() + MaxFutureBlockTime.Milliseconds(); h.Time > limit {
		return nil, ruleErr(ReasonTimeTooFarInFuture, "time %d is %d ms ahead of local clock %d",
			h.Time, h.Time-now.UnixMilli(), now.UnixMilli())
	}
	return g.checkBody(b, verified)
}

// CheckHeaderAuth checks what a header proves on its own, without its
// parent or any state: that its proposer is the authority whose turn it is
// at its height, and that the proposer signed it. Only an authority can make
// a header that passes, so a relay runs it before fetching anything for an
// announced block or walking back to its ancestors. It returns nil or a
// *RuleError.
func (g *Genesis) CheckHeaderAuth(h *Header) error {
	if want := g.ProposerAt(h.Height); h.Proposer != want {
		return ruleErr(ReasonWrongProposer, "proposer %s at height %d, expected %s", h.Proposer, h.Height, want)
	}
	if !h.VerifySig(g.ChainID) {
		return ruleErr(ReasonBadBlockSignature, "header signature does not verify under %s", h.Proposer)
	}
	return nil
}

// CheckBody runs CheckBlock's body rules only (sizes, duplicates, tx root,
// CheckTx of each tx) for a block whose header was checked already, for
// example by a relay that validated the header before fetching the body.
func (g *Genesis) CheckBody(b *Block, verified func(Hash) bool) error {
	if b == nil {
		return ruleErr(ReasonMalformed, "nil block")
	}
	_, err := g.checkBody(b, verified)
	return err
}

// checkBody runs the body rules and returns the tx ids it hashed.
func (g *Genesis) checkBody(b *Block, verified func(Hash) bool) ([]Hash, error) {
	if n := len(b.Txs); n > g.MaxBlockTxs {
		return nil, ruleErr(ReasonTooManyTxs, "%d txs exceeds limit %d", n, g.MaxBlockTxs)
	}
	// Per-tx cheap checks first: they also rule out nil txs before Size.
	for i, tx := range b.Txs {
		if err := g.checkTxCheap(tx); err != nil {
			return nil, invalidTx(i, err)
		}
	}
	if n := b.Size(); n > g.MaxBlockBytes {
		return nil, ruleErr(ReasonBlockTooLarge, "%d bytes exceeds limit %d", n, g.MaxBlockBytes)
	}
	ids := b.TxIDs()
	seen := make(map[Hash]int, len(ids))
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			return nil, &RuleError{Reason: ReasonDuplicateTx, TxIndex: i, Detail: "same id as tx " + strconv.Itoa(j)}
		}
		seen[id] = i
	}
	if root := MerkleRoot(ids); root != b.Header.TxRoot {
		return nil, ruleErr(ReasonBadTxRoot, "tx root %s, computed %s", b.Header.TxRoot.Short(), root.Short())
	}
	if i := g.firstBadSig(b.Txs, ids, verified); i >= 0 {
		return nil, invalidTx(i, badSigErr(b.Txs[i]))
	}
	return ids, nil
}

// sigBatch is how many signatures one batch check takes: the batch
// equation's saving per signature levels off around 64 (measured here:
// about 0.55x a single check at 64, 0.5x at 128).
const sigBatch = 64

// firstBadSig returns the lowest index whose signature does not verify
// (skipping ids in verified), or -1. The unverified signatures are checked
// in batches of sigBatch, on up to GOMAXPROCS goroutines when there are
// several batches; the verdicts are those of checking each alone.
func (g *Genesis) firstBadSig(txs []*Tx, ids []Hash, verified func(Hash) bool) int {
	var todo []*Tx
	var at []int // todo[k] is txs[at[k]]
	for i, tx := range txs {
		if verified == nil || !verified(ids[i]) {
			todo = append(todo, tx)
			at = append(at, i)
		}
	}
	ok := make([]bool, len(todo))
	batches := (len(todo) + sigBatch - 1) / sigBatch
	check := func(b int) {
		lo, hi := b*sigBatch, min((b+1)*sigBatch, len(todo))
		copy(ok[lo:hi], VerifyTxSigs(g.ChainID, todo[lo:hi]))
	}
	if workers := min(runtime.GOMAXPROCS(0), batches); workers <= 1 {
		for b := range batches {
			check(b)
		}
	} else {
		var next atomic.Int64 // next batch to hand out
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for b := int(next.Add(1)) - 1; b < batches; b = int(next.Add(1)) - 1 {
					check(b)
				}
			})
		}
		wg.Wait()
	}
	for k, good := range ok {
		if !good {
			return at[k]
		}
	}
	return -1
}

// ApplyBlockTxs executes a block's transactions in order against the state
// at its parent and returns the resulting accounts of every address the
// block touches (senders, recipients, and the proposer if the block has
// txs); other accounts are unchanged. get returns an account at the parent
// state (the zero Account if never funded); it is not called twice for
// one address. Per tx: CheckTxState against the sender's running account
// (so several txs of one sender must carry consecutive nonces and the
// balance must cover each in turn); the sender pays amount + fee and its
// nonce advances; the recipient gains amount; the proposer
// (b.Header.Proposer) gains the fee immediately, so a later tx in the same
// block may spend it. No units are created or destroyed. The first failing
// tx fails the whole block with ReasonInvalidTx, its TxIndex, and the tx's
// own *RuleError as Err. b must have passed CheckBlock; ApplyBlockTxs does
// no stateless checks. The returned map is the caller's.
func ApplyBlockTxs(b *Block, get func(Address) Account, minFee uint64) (map[Address]Account, error) {
	changes := make(map[Address]Account, 2*len(b.Txs)+1)
	load := func(a Address) Account {
		if v, ok := changes[a]; ok {
			return v
		}
		return get(a)
	}
	proposer := b.Header.Proposer
	for i, tx := range b.Txs {
		from := load(tx.From)
		if err := CheckTxState(tx, from, minFee); err != nil {
			return nil, invalidTx(i, err)
		}
		from.Balance -= tx.Amount + tx.Fee // cannot underflow: CheckTxState
		from.Nonce++
		changes[tx.From] = from
		to := load(tx.To)
		if to.Balance > math.MaxUint64-tx.Amount {
			// Unreachable with a valid genesis (supply fits a uint64),
			// checked so a bad genesis cannot wrap balances.
			return nil, invalidTx(i, ruleErr(ReasonAmountOverflow, "recipient balance overflows"))
		}
		to.Balance += tx.Amount
		changes[tx.To] = to
		p := load(proposer)
		if p.Balance > math.MaxUint64-tx.Fee {
			return nil, invalidTx(i, ruleErr(ReasonAmountOverflow, "proposer balance overflows"))
		}
		p.Balance += tx.Fee
		changes[proposer] = p
	}
	return changes, nil
}
