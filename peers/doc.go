// Package peers keeps track of how well each remote peer behaves and makes
// misbehaviour cost the peer that commits it.
//
// It holds four small, independent parts:
//
//   - Book, the score book: per-peer penalties (Offense) and rewards that decay
//     over time. Its score feeds GossipSub v1.1 peer scoring as the
//     application-specific score (GossipScoring), and a peer whose score falls
//     below the ban threshold is handed to the ban list.
//   - BanList and Gater: time-limited bans kept in a file so that they survive
//     a restart, enforced by a libp2p connection gater on every dial and
//     accept. A corrupt ban file is moved aside and the list starts empty:
//     it never stops a node from starting.
//   - Limiter: per-peer token buckets for requests served and bytes served, so
//     a peer cannot make this node do unbounded work for it.
//   - Liveness: periodic libp2p pings; a peer that stops answering is
//     disconnected so that discovery can replace it.
//
// # Concurrency
//
// Book, BanList and Limiter are safe for concurrent use: each guards its own
// state with a mutex that is never held while calling out (the ban callback
// of Book runs after the lock is released). They read no clock: every method
// that depends on time takes `now`, so tests drive them with explicit times.
//
// BanList's mutex is an RWMutex: IsBanned (the gater, on every dial and
// accept) and List take the read lock, Ban and Unban the write lock for a
// map update only (at MaxBans, plus a scan for the ban to drop). No file I/O
// happens under it. A BanList with a path owns
// one goroutine, the persister, started by OpenBanList and stopped by Close:
// Ban and Unban signal it through a one-slot channel without blocking, and
// it writes the whole list once per wake-up, so any number of bans made
// during a write cost one more write. Writes (the persister's, Flush's and
// Close's final one) are serialized by a second mutex; a writer holds the
// read lock only while copying the map. Each write goes to a synced temp file
// renamed over the old one, so a crash leaves the old list or the new one.
//
// Liveness owns one goroutine, started by Run and stopped by its context.
//
// Every map a peer can grow is bounded: MaxTrackedPeers for the book and the
// limiter, MaxBans for the ban list.
package peers
