package peers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/rumor-relay/rumor/chain/durable"
)

const (
	// MaxBans bounds the ban list. Bitcoin Core's banlist has no cap; ours
	// does, because a Sybil attacker can mint peer ids for free: past the cap
	// the ban that expires first is dropped.
	MaxBans = 10_000

	// maxBanFileSize bounds what OpenBanList reads: MaxBans entries of about
	// 130 bytes of indented JSON each, with room to spare. A bigger file was
	// not written by us and is treated as corrupt.
	maxBanFileSize = 4 << 20

	// corruptSuffix names where OpenBanList moves a ban file it cannot
	// decode, so an operator can look at it; only the latest one is kept.
	corruptSuffix = ".corrupt"
)

// Ban is one banned peer.
type Ban struct {
	Peer   peer.ID   `json:"peer"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// BanList is the set of banned peers, kept in a JSON file when it has a path
// so that bans survive a restart. Safe for concurrent use.
//
// Ban and Unban change the list in memory and only signal the persister, a
// goroutine of the list's own that writes the file; they never do I/O, so
// they are safe to call from a relay's owner loop. IsBanned, called by the
// gater on every dial and accept, takes a read lock that no file I/O is
// ever done under.
type BanList struct {
	path string
	// write stores data at path crash-safely; writeBanFile except in
	// tests, which block or count writes through it.
	write func(path string, data []byte) error

	mu   sync.RWMutex
	bans map[peer.ID]Ban
	gen  uint64 // bumped by every change, so a writer knows what it saved

	// saveMu serializes writes of the file (the persister, Flush, Close).
	// It is never taken while mu is held, and mu is only read-locked, for
	// the length of a copy, while saveMu is held.
	saveMu sync.Mutex
	saved  uint64 // gen last written to the file; guarded by saveMu

	dirty     chan struct{} // 1 slot: "the list changed"; a full slot coalesces
	stop      chan struct{} // closed by Close to end the persister
	done      chan struct{} // closed when the persister has returned
	closeOnce sync.Once
	closeErr  error
}

// OpenBanList loads the ban list at path, or starts an empty one if the file
// does not exist, and starts the goroutine that persists it (stopped by
// Close). An empty path keeps the list in memory only and starts nothing.
//
// A file that is corrupt, truncated or larger than any list we write is
// never a reason not to start: it is logged, moved aside to path+".corrupt"
// (replacing an older one), and the list starts empty. Only a file that
// exists but cannot be read (permissions, a directory in its place) is an
// error.
func OpenBanList(path string) (*BanList, error) {
	return openBanList(path, writeBanFile)
}

// openBanList is OpenBanList with the file writer injected.
func openBanList(path string, write func(string, []byte) error) (*BanList, error) {
	l := &BanList{path: path, write: write, bans: make(map[peer.ID]Ban)}
	if path == "" {
		return l, nil
	}
	list, err := loadBans(path)
	if err != nil {
		return nil, err
	}
	for _, b := range list {
		if b.Peer.Validate() == nil {
			l.bans[b.Peer] = b
		}
	}
	l.trimLocked()
	l.dirty = make(chan struct{}, 1)
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.persist()
	return l, nil
}

// loadBans reads the ban file at path. A missing file is an empty list; an
// undecodable or oversized one is moved aside and also an empty list.
func loadBans(path string) ([]Ban, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("peers: open ban list: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBanFileSize+1))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("peers: read ban list: %w", err)
	}
	list, err := decodeBans(data)
	if err == nil {
		return list, nil
	}
	aside := path + corruptSuffix
	if rerr := os.Rename(path, aside); rerr != nil {
		// The next save replaces the bad file anyway; starting matters more.
		log.Warnw("ban list unreadable, starting empty; could not move it aside",
			"path", path, "err", err, "rename_err", rerr)
		return nil, nil
	}
	log.Warnw("ban list unreadable, starting empty; moved aside",
		"path", path, "moved_to", aside, "err", err)
	return nil, nil
}

// decodeBans decodes a ban file's contents. It rejects anything larger than
// maxBanFileSize and anything but one JSON array of bans (trailing bytes
// included, so a file cut short or written twice is caught).
func decodeBans(data []byte) ([]Ban, error) {
	if len(data) > maxBanFileSize {
		return nil, fmt.Errorf("ban file larger than %d bytes", maxBanFileSize)
	}
	var list []Ban
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// Ban bans p until the given time (or keeps a longer ban in force). The
// file is written later by the persister; see Flush to wait for it.
func (l *BanList) Ban(p peer.ID, until time.Time, reason string) {
	l.mu.Lock()
	if old, ok := l.bans[p]; ok && old.Until.After(until) {
		until = old.Until
	}
	l.bans[p] = Ban{Peer: p, Until: until, Reason: reason}
	l.trimLocked()
	l.gen++
	l.mu.Unlock()
	l.markDirty()
}

// Unban lifts p's ban. The file is written later by the persister; see
// Flush to wait for it.
func (l *BanList) Unban(p peer.ID) {
	l.mu.Lock()
	if _, ok := l.bans[p]; !ok {
		l.mu.Unlock()
		return
	}
	delete(l.bans, p)
	l.gen++
	l.mu.Unlock()
	l.markDirty()
}

// markDirty wakes the persister without ever blocking: if a signal is
// already pending, the write it triggers will include this change too.
func (l *BanList) markDirty() {
	if l.dirty == nil {
		return
	}
	select {
	case l.dirty <- struct{}{}:
	default:
	}
}

// IsBanned reports whether p is banned at now. It waits only for Ban or
// Unban's map update, never for the file.
func (l *BanList) IsBanned(p peer.ID, now time.Time) bool {
	l.mu.RLock()
	b, ok := l.bans[p]
	l.mu.RUnlock()
	return ok && now.Before(b.Until)
}

// List returns the bans in force at now, soonest expiry first.
func (l *BanList) List(now time.Time) []Ban {
	l.mu.RLock()
	out := make([]Ban, 0, len(l.bans))
	for _, b := range l.bans {
		if now.Before(b.Until) {
			out = append(out, b)
		}
	}
	l.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Until.Before(out[j].Until) })
	return out
}

// Flush writes the list to its file now if it changed since the last write,
// and returns that write's error. It waits for a write already in progress.
// For callers that must know a ban is on disk (an operator's ban); it does
// file I/O, so never call it from an owner loop. A memory-only list has
// nothing to flush.
func (l *BanList) Flush() error {
	if l.path == "" {
		return nil
	}
	return l.save()
}

// Close stops the persister and writes the last state synchronously,
// returning that write's error. It is idempotent. Bans made after Close
// stay in memory and reach the file only through a later Flush.
func (l *BanList) Close() error {
	if l.path == "" {
		return nil
	}
	l.closeOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.closeErr = l.save()
	})
	return l.closeErr
}

// persist is the persister goroutine: one write per wake-up, however many
// changes arrived since the last one, so a ban storm costs a handful of
// writes rather than one per ban. A failed write is logged and retried on
// the next change or at Close.
func (l *BanList) persist() {
	defer close(l.done)
	for {
		select {
		case <-l.stop:
			return
		case <-l.dirty:
			if err := l.save(); err != nil {
				log.Errorw("ban list not saved; retrying on the next change", "path", l.path, "err", err)
			}
		}
	}
}

// save writes the current list to the file unless it is already there. The
// list is copied under the read lock; sorting, encoding and I/O happen
// after it is released.
func (l *BanList) save() error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.RLock()
	gen := l.gen
	if gen == l.saved {
		l.mu.RUnlock()
		return nil
	}
	list := make([]Ban, 0, len(l.bans))
	for _, b := range l.bans {
		list = append(list, b)
	}
	l.mu.RUnlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Peer < list[j].Peer })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("peers: save ban list: %w", err)
	}
	if err := l.write(l.path, data); err != nil {
		return err
	}
	l.saved = gen
	return nil
}

// writeBanFile stores the ban list's encoding at path crash-safely
// (durable.WriteFile).
func writeBanFile(path string, data []byte) error {
	if err := durable.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("peers: save ban list: %w", err)
	}
	return nil
}

// trimLocked drops the bans that expire first while over MaxBans. One
// over (a Ban at the cap) costs a scan; more (a loaded file larger than the
// cap) a sort, so a hostile file cannot make startup quadratic.
func (l *BanList) trimLocked() {
	switch over := len(l.bans) - MaxBans; {
	case over <= 0:
	case over == 1:
		var victim peer.ID
		var first time.Time
		for id, b := range l.bans {
			if first.IsZero() || b.Until.Before(first) {
				victim, first = id, b.Until
			}
		}
		delete(l.bans, victim)
	default:
		all := make([]Ban, 0, len(l.bans))
		for _, b := range l.bans {
			all = append(all, b)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Until.Before(all[j].Until) })
		for _, b := range all[:over] {
			delete(l.bans, b.Peer)
		}
	}
}

// Gater is a libp2p connection gater that refuses banned peers on every
// dial and accept. Now is the clock; nil means time.Now.
type Gater struct {
	Bans *BanList
	Now  func() time.Time
}

var _ connmgr.ConnectionGater = (*Gater)(nil)

func (g *Gater) allowed(p peer.ID) bool {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	return !g.Bans.IsBanned(p, now())
}

// InterceptPeerDial refuses to dial a banned peer.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.allowed(p) }

// InterceptAddrDial refuses to dial a banned peer at any address.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.allowed(p) }

// InterceptAccept allows every inbound connection: the peer id is not known
// until the security handshake, where InterceptSecured decides.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses a banned peer once its identity is proven.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}

// InterceptUpgraded allows every connection that passed InterceptSecured.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
