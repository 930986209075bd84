// Package store keeps a node's blocks, best chain and account state in
// Badger v4, on disk or in memory.
//
// # What it guarantees
//
// Every change to the best chain is one atomic commit: connecting a block
// writes the block, its metadata, the height index, the tip, the tx index,
// the changed accounts and the block's undo record in one badger
// transaction, so a crash (kill -9, or power loss with Options.SyncWrites)
// never leaves a tip without its block or its state. A reorg (disconnect to
// the fork point with the undo records, connect the new branch) is planned
// in memory first, so an invalid branch block changes nothing but its own
// status, and is then committed the same way. When a commit is too big for
// one badger transaction (badger caps one at 15% of a memtable: a deep
// reorg of full blocks, or a full block in a small in-memory store) it is
// written in several, with readers held off; on disk it is first written as
// a journal that Open replays after a crash. Fork choice: greatest height;
// on a tie the block seen first stays; at most MaxReorgDepth blocks are
// ever disconnected.
//
// # Key layout
//
// One-byte prefix, then a fixed-width id; integers are big-endian, so the
// height index iterates in height order.
//
//	'v'                 -> format version (u64), checked by Open
//	'g'                 -> genesis block id; Open refuses a different genesis
//	'T'                 -> tip: id of the best block
//	'q'                 -> next first-seen sequence number (u64)
//	'b' block id        -> canonical block encoding (any branch; dropped when invalid)
//	'm' block id        -> metadata: status (side|connected|invalid), invalid
//	                       reason (u16), first-seen seq (u64), header (176 B).
//	                       Headers live here, so walks and Header never read
//	                       a body; the parent and height come from the header.
//	'h' height          -> id of the best chain's block at that height
//	'x' tx id           -> best-chain location: block id, height (u64), index (u32)
//	'a' address         -> account: balance (u64), nonce (u64); an absent key
//	                       is the zero account, and a zero account is deleted
//	                       so that state comparisons are exact
//	'u' block id        -> undo record of a connected block: the previous
//	                       value of every account it changed, sorted by address
//	'J'                 -> live journal header: number of parts (u32)
//	'j' part (u32)      -> journal part: the ops of an interrupted large commit
//
// Only connected blocks have 'h', 'x' and 'u' entries; the index entries of
// a disconnected block are deleted in the same commit that disconnects it.
// Blocks that fail CheckBlock or whose parent is unknown are never stored
// (an unauthenticated peer must not be able to fill the disk); a block
// whose transactions fail against the state keeps only its metadata, so a
// second copy, or a child, is refused without work.
//
// # Concurrency contract
//
// A Store is safe for concurrent use. It starts no long-lived goroutines
// of its own (Badger runs its flushers and compactors until Close); while
// connecting a block one short-lived goroutine hashes its tx ids alongside
// the state checks.
//
//   - Writers (AddBlock, AddBlockVerified, Close) are serialized by one
//     mutex, Store.mu. AddBlock runs CheckBlock (signatures) before taking
//     it, so validation of different blocks proceeds in parallel; state
//     checks and the commit hold it.
//   - Queries (HasBlock, Block, BlockBytes, Header, BlockIDAt, TxLocation,
//     Account, BlockStatus, ForEachAccount) read through badger read
//     transactions, each a consistent snapshot, without Store.mu. They take
//     a read lock (Store.view) that a commit spanning several badger
//     transactions, and Close, take exclusively.
//   - Tip reads a cached value (an atomic pointer) set after each commit;
//     it never blocks. Between a commit and the cache update a query may
//     already see the new state while Tip still returns the old tip.
//   - After Close, queries report nothing found and AddBlock returns
//     ErrClosed.
//
// Values returned (blocks, headers, byte slices) are copies owned by the
// caller.
package store
