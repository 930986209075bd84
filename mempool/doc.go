// Package mempool holds validated transactions waiting to be mined, the
// input of block production (Template), compact-block reconstruction
// (LookupShortIDs) and mempool sync (IDs).
//
// # What the pool holds
//
// For each sender the pool keeps at most MaxPerSender transactions sorted by
// nonce. The longest run of consecutive nonces starting at the sender's
// confirmed nonce whose cumulative cost (amount + fee) the confirmed balance
// covers is executable: it could go into the next block in that order. Any
// other transaction is queued: its nonce is ahead of a gap, at most
// MaxNonceGap past the sender's pending nonce when it arrived, and at most
// MaxQueued are held in all. A queued transaction is promoted when the gap
// fills. No stored transaction has a nonce below its sender's confirmed
// nonce, and the pool never stores a transaction that would overdraw its
// sender at its place in the nonce order: incoming transfers that are not
// yet confirmed are not counted (no overdraft chains).
//
// # Eviction and the DETER attack
//
// When the pool is full (MaxTxs or MaxBytes), a new executable transaction
// first evicts queued transactions (whatever they pay: they cannot be mined
// yet), then the executable transaction with the lowest fee rate (fee per
// encoded byte), but only if the newcomer pays a strictly higher rate; an
// evicted transaction takes its sender's higher-nonce transactions with it,
// since they could no longer be mined. A queued transaction can only evict
// queued transactions of a strictly lower fee rate, never an executable one.
// Overdrafts are rejected on arrival. So the DETER attack on geth
// (CVE-2022-23327/23328: thousands of high-fee future-nonce or overdraft
// transactions from one account purge the pool) cannot evict a single
// executable transaction: future nonces are confined to the queue, and
// overdrafts never enter.
//
// # Concurrency contract
//
// A Pool is safe for concurrent use. One sync.RWMutex (Pool.mu) guards all
// of its state: the id index, the per-sender lists, the three eviction and
// expiry heaps, the totals and the recently-included set. Mutations (Add,
// BlockConnected, BlockDisconnected, Expire, Load) take it exclusively;
// lookups (Has, Known, Get, LookupShortIDs, Template, IDs, PendingNonce,
// Stats, Save's snapshot) share it. The pool starts no goroutines and does
// no I/O under the lock; Save and Load do their file I/O outside it.
//
// The expensive, stateless part of Add (hashing and the signature check)
// runs before the lock is taken, so several goroutines adding transactions
// verify signatures in parallel and serialize only for the map and heap
// updates, a few microseconds per transaction.
//
// The only call out of the pool made under the lock is StateView.Account,
// which must therefore be cheap, safe for concurrent use, and must never
// call back into the Pool. Callers must not hold a lock that Account needs
// while they call into the Pool: the block store calls BlockConnected and
// BlockDisconnected after it has committed a block and released its own
// locks, never from inside them.
//
// Transactions handed out (Get, LookupShortIDs, Template) are shared with
// the pool and must not be modified.
//
// A Journal (the own-tx journal, journal.go) is separate from the Pool and
// shares none of its state: one goroutine of its own owns the file, and its
// methods send that goroutine a request and wait for the answer, so it has
// no lock. Retain's predicate runs on that goroutine; the node passes
// Pool.Has, which takes the pool's read lock and calls nothing back.
//
// # Block events
//
// The pool reads the confirmed state from its StateView at call time and
// does not assume the events arrive in lockstep with the store: Add re-syncs
// a sender whose confirmed nonce or balance changed since the pool last
// looked. On a reorg the caller first updates the store to the new tip, then
// calls BlockDisconnected for each removed block (tip first), then
// BlockConnected for each added block (oldest first). Transactions of a
// disconnected block re-enter, if still valid against the new state, without
// the nonce-gap and size limits, so that a multi-block reorg (whose blocks
// come back newest first) can close the gaps it opens; the limits are
// enforced again by the next BlockConnected, Add or Expire, evicting the
// lowest fee rates (Bitcoin Core re-adds disconnected transactions and trims
// the pool the same way).
//
// Every transaction in the pool either passed CheckTx here (signature
// included) or came from a block the store validated, so Has is a sound
// "signature already verified" set for chain.Genesis.CheckBlockVerified.
package mempool
