package peers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	// MaxBans bounds the ban list. Bitcoin Core's banlist has no cap; ours
	// does, because a Sybil attacker can mint peer ids for free: past the cap
	// the ban that expires first is dropped.
	MaxBans = 10_000

	// maxBanFileSize bounds what OpenBanList reads: MaxBans entries of about
	// 100 bytes of JSON each, with room to spare.
	maxBanFileSize = 4 << 20
)

// Ban is one banned peer.
type Ban struct {
	Peer   peer.ID   `json:"peer"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// BanList is the set of banned peers, kept in a JSON file when it has a path
// so that bans survive a restart. Safe for concurrent use.
type BanList struct {
	path string

	mu   sync.Mutex
	bans map[peer.ID]Ban
}

// OpenBanList loads the ban list at path, or starts an empty one if the file
// does not exist. An empty path keeps the list in memory only.
func OpenBanList(path string) (*BanList, error) {
	l := &BanList{path: path, bans: make(map[peer.ID]Ban)}
	if path == "" {
		return l, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("peers: open ban list: %w", err)
	}
	defer f.Close()
	var list []Ban
	dec := json.NewDecoder(&limitedReader{f: f, left: maxBanFileSize})
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("peers: ban list %s: %w", path, err)
	}
	for _, b := range list {
		if b.Peer.Validate() == nil {
			l.bans[b.Peer] = b
		}
	}
	l.trimLocked()
	return l, nil
}

type limitedReader struct {
	f    *os.File
	left int64
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.f.Read(p)
	r.left -= int64(n)
	return n, err
}

// Ban bans p until the given time and persists the list.
func (l *BanList) Ban(p peer.ID, until time.Time, reason string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.bans[p]; ok && old.Until.After(until) {
		until = old.Until
	}
	l.bans[p] = Ban{Peer: p, Until: until, Reason: reason}
	l.trimLocked()
	return l.saveLocked()
}

// Unban lifts p's ban and persists the list.
func (l *BanList) Unban(p peer.ID) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.bans, p)
	return l.saveLocked()
}

// IsBanned reports whether p is banned at now.
func (l *BanList) IsBanned(p peer.ID, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.bans[p]
	return ok && now.Before(b.Until)
}

// List returns the bans in force at now, soonest expiry first.
func (l *BanList) List(now time.Time) []Ban {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Ban, 0, len(l.bans))
	for _, b := range l.bans {
		if now.Before(b.Until) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Until.Before(out[j].Until) })
	return out
}

// trimLocked drops the bans that expire first while over MaxBans.
func (l *BanList) trimLocked() {
	for len(l.bans) > MaxBans {
		var victim peer.ID
		var first time.Time
		for id, b := range l.bans {
			if first.IsZero() || b.Until.Before(first) {
				victim, first = id, b.Until
			}
		}
		delete(l.bans, victim)
	}
}

// saveLocked writes the list atomically (temp file, then rename), so a crash
// leaves either the old list or the new one.
func (l *BanList) saveLocked() error {
	if l.path == "" {
		return nil
	}
	list := make([]Ban, 0, len(l.bans))
	for _, b := range l.bans {
		list = append(list, b)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Peer < list[j].Peer })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.path), ".bans-*")
	if err != nil {
		return fmt.Errorf("peers: save ban list: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("peers: save ban list: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("peers: save ban list: %w", err)
	}
	if err := os.Rename(tmp.Name(), l.path); err != nil {
		return fmt.Errorf("peers: save ban list: %w", err)
	}
	return nil
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
