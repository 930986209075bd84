// Package chain is rumor's reference toy chain: the data types, their
// canonical encoding, the genesis configuration and the validation rules of
// an account-model, proof-of-authority chain whose transactions and blocks
// the relay moves around. Users who embed rumor in their own chain replace
// it behind relay's interfaces; rumor's own testnets run it.
//
// # Pieces
//
//   - types.go, encoding.go: Tx, Header, Block, their ids (SHA-256 of the
//     canonical encoding) and the decoders, which accept exactly one
//     encoding per value and reject oversize lengths before allocating.
//   - genesis.go, keys.go: the JSON genesis (chain id, authorities, slot
//     length, limits, funded accounts), its deterministic genesis block, and
//     deterministic testnet keys from a seed.
//   - validate.go, errors.go: stateless checks (CheckTx, CheckBlock),
//     state checks (CheckTxState, ApplyBlockTxs), all failing with a
//     *RuleError whose Reason callers switch on. Reason.Penalize says
//     whether the peer that sent the object is at fault.
//   - build.go: BuildBlock, for the authority whose turn it is.
//   - shortid.go: BIP152-style keyed short ids for compact blocks.
//   - sig.go: the signature rule and batch checks (VerifyTxSigs).
//
// State (balances, nonces), fork choice and storage live in chain/store,
// which applies a block with ApplyBlockTxs and keeps undo records.
//
// # Rules in brief
//
// The authority of height h is Authorities[h % len]. A block's timestamp
// is after its parent's and at most MaxFutureBlockTime ahead of the local
// clock. A tx's nonce is its sender's next nonce exactly; the sender pays
// amount + fee, the recipient gains amount, the block's proposer gains the
// fee. No units are ever created: the total supply is fixed at genesis.
//
// Signatures are ed25519, valid as ZIP-215 defines (the cofactored
// equation; S canonical; any A and R that decode), checked with
// curve25519-voi. Under that rule a batch verifies exactly when each of
// its signatures does, so a node may check signatures alone or in
// batches and always agree with its peers. It accepts everything
// crypto/ed25519 accepts and a few signatures that crypto/ed25519 refuses
// (an R with a small-order component), which only a key's holder can
// make: a flag-day change, so the relay's protocol versions moved with
// it and nodes of earlier builds do not talk to later ones.
//
// # Concurrency
//
// The package has no goroutines of its own (CheckBlock fans signature
// checks of a large block out to short-lived goroutines and waits for
// them). Its one piece of mutable package state is the bounded cache of
// expanded public keys (sig.go), safe for concurrent use and invisible in
// results. Every function is pure: its result
// depends on its arguments only, and the clock is passed in as now. Values
// are immutable by convention once constructed or decoded: a *Tx, *Block
// or *Genesis handed to another goroutine or stored must not be modified
// afterwards, and then any number of goroutines may read and validate it
// concurrently. Encode and ID recompute on every call (nothing is cached
// inside a value), so callers on hot paths keep the id they computed.
package chain
