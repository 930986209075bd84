// Package recon is the set-reconciliation codec for mempool anti-entropy
// (issue 11): two peers learn which transaction ids one holds and the other
// lacks at a cost proportional to the difference, not to the pools. It is
// pure computation: no I/O, no goroutines, no clocks.
//
// # The code
//
// It is a rateless invertible Bloom lookup table, after Yang, Gilad and
// Alizadeh, "Practical Rateless Set Reconciliation" (SIGCOMM 2024). A set
// of 32-byte ids is encoded as an endless stream of coded symbols; symbol i
// holds the XOR of the ids mapped to it, the XOR of their keyed checksums,
// and their count. Each id maps to index 0 and then to later indexes with
// probability 1/(1+i/2) (the paper's density, alpha = 1/2; see nextIndex).
// The receiver subtracts its own symbols at the same indices, which
// cancels every id both hold and leaves the symbols of the difference,
// ids the peer alone holds counted +1 and ids we alone hold -1. Peeling
// then finds a pure symbol (one id: count +-1, checksum equal to the keyed
// hash of the sum, and the id's sequence includes the index), takes that id
// out of every symbol it maps to, and repeats. Because the stream has no
// fixed length, nobody has to guess the difference first: the peer sends
// symbols until we say stop. The first symbol counts the whole difference
// (|theirs| - |ours| after subtraction, a lower bound on its size, useful
// for sizing the next batch) and is empty exactly when it is decoded.
//
// Parameters. Ids are hashed with SipHash-2-4-128 under a 16-byte session
// Key: one word is the 64-bit checksum, the other seeds the id's index
// sequence (SplitMix64). Both peers must use the same key and this
// package's exact sequence (TestMappingGolden pins it).
//
// # Costs
//
//   - Wire: SymbolSize (44) bytes per symbol, plus a 2-4 byte batch header.
//   - Symbols per differing id, measured here (TestOverhead, means over
//     many trials; the paper reports ~1.35 for large differences): 1.0 for
//     one id, ~1.5-1.8 for 2 to 20 ids, ~1.5 for 50, ~1.45 for 100, ~1.38
//     for 1000, ~1.37 for 5000. A
//     difference of 50 ids takes ~76 symbols, 3.3 KB, where listing a
//     5,000-id pool takes 160 KB.
//   - CPU: producing m symbols of an n-id set costs about n*(1 + 2 ln(1+m/2))
//     bucket operations; peeling an id costs ~2 ln(m/2) symbol updates.
//     For a 5,000-id pool and a 50-id difference (BenchmarkEncode,
//     BenchmarkDecode) a session with a fresh key costs each side a few
//     milliseconds, almost all of it hashing and bucketing its own pool;
//     with an encoder kept across sessions, decoding takes ~0.1 ms and each
//     Add or Remove as the pool changes costs a kept encoder ~0.3 us.
//
// # Bounds
//
// MaxSymbols (8192 symbols, 360 KB) per session, sized so that a
// difference of TargetDifference (5000) ids decodes; MaxDecodedIDs peeled
// ids per decoder; MaxSymbolsPerBatch (2048) symbols per wire batch. The
// decoder's memory is O(MaxSymbols) whatever it is fed, and each batch is
// checked against the caps and the bytes present before it is allocated.
// See the Decoder for what it guarantees about a lying peer's symbols, and
// the errors for which mean the peer should be penalized.
//
// # How the relay uses it
//
// One peer serves, the other decodes (relay/reconcile.go; the protocol is
// stated in package relay's documentation):
//
//  1. The requester picks a fresh random key per attempt (a third party
//     never sees it before the ids it keys were announced, so it cannot
//     grind colliding ids) and builds an Encoder over its pending-tx ids,
//     fed to NewDecoder; it must not change during the attempt (Add fails
//     with ErrLocalChanged).
//  2. It asks for symbols [0, n) under that key; the server builds an
//     Encoder over its own pending ids and answers with
//     AppendSymbols(buf, 0, enc.Symbols(0, n)) in one batch, one snapshot
//     of its pool. n starts at about 1.5 times the last difference seen
//     with that peer; an attempt that does not decode is retried with a
//     new key and four times as many symbols, a few times at most.
//  3. The requester calls DecodeSymbols and Decoder.Add, and once Decoded
//     pulls Remote (ids the peer has and we lack) with ordinary tx
//     requests; Local (ids we have and the peer lacks) is left for the
//     peer's own sessions. A peer that cannot serve an id its symbols
//     claimed is penalized like any peer that fails to serve what it
//     announced; inconsistent or malformed symbols cost it a malformed
//     offense.
//  4. Keeping an Encoder across sessions (one key per connection, updated
//     with Add and Remove as the pool changes) would make a session ~50x
//     cheaper for large pools; the relay does not yet, because its pools
//     are small between blocks.
//
// # Concurrency contract
//
// No goroutines and no locks. An Encoder and a Decoder each have one
// owner; a Decoder reads and extends the Encoder it was given, so both
// belong to the same owner. SessionKey, AppendSymbols, DecodeSymbols and
// BatchSize are stateless and safe for concurrent use.
package recon
