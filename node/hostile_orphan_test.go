package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/wire"
)

// orphanFloodAnnouncements is how many made-up orphan blocks the attacker
// of TestHostileOrphanFlood announces, as the adversarial peer of issue 12
// did (30, each served with ~29 made-up ancestors).
const orphanFloodAnnouncements = 30

// TestHostileOrphanFlood: a peer announces made-up compact blocks whose
// parents are unknown and serves made-up ancestors for each, every block
// signed by a key that is not an authority's. The node authenticates each
// announced header (proposer's turn and signature) before fetching
// anything for it, so it asks the attacker for no block at all, bans it
// for invalid blocks, and still takes an honest block from its honest
// peer. Without the check it walked back up to MaxOrphanDepth made-up
// ancestors per announcement.
func TestHostileOrphanFlood(t *testing.T) {
	g := testGenesis(time.Hour)
	a, b := honestPair(t, g, nil)
	tip, _ := a.Store().Tip()

	// Made-up chains: each starts from a made-up parent just above the
	// node's tip, within the ancestor walk's reach (MaxOrphanDepth), and is
	// signed by the attacker's own key.
	_, fakeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	made := make(map[relay.ID][]byte)
	var heads []*chain.Block
	for i := range orphanFloodAnnouncements {
		parent := &chain.Header{Height: tip.Height + 1, Time: tip.Time + 1}
		_, _ = rand.Read(parent.Parent[:])
		var blk *chain.Block
		for range 1 + i%(relay.MaxOrphanDepth-1) {
			blk = g.BuildBlock(parent, time.Now(), fakeKey, nil)
			made[relay.ID(blk.ID())] = blk.Encode()
			parent = &blk.Header
		}
		heads = append(heads, blk)
	}

	m := newAttacker(t, g.ChainID, nil)
	var blockRequests atomic.Int64
	m.h.SetStreamHandler(m.proto, func(s network.Stream) {
		defer s.Close()
		data, _, err := wire.ReadFrame(s, wire.MaxRequestFrame)
		if err != nil {
			s.Reset()
			return
		}
		var resp wire.Response = &wire.Error{Code: wire.ErrCodeBadRequest}
		switch q := mustDecodeRequest(data).(type) {
		case *wire.GetBlock:
			blockRequests.Add(1)
			resp = &wire.Block{Block: made[q.ID]}
		case *wire.GetBlocks:
			blockRequests.Add(1)
		}
		if out, err := resp.Encode(); err == nil {
			_, _ = wire.WriteFrame(s, out)
		}
	})
	if err := m.connect(a); err != nil {
		t.Fatal(err)
	}
	m.joinGossip(a)
	for _, h := range heads {
		ann := &wire.CompactBlock{Header: h.Header.Encode()}
		if err := m.publish(m.blockTopic, encode(t, ann)); err != nil {
			break // cut off: the rest go nowhere, as a real attacker's would
		}
	}
	checkDroppedBelowGraylist(t, a, m.id(), "invalid_block")
	if n := blockRequests.Load(); n != 0 {
		t.Fatalf("the node asked the attacker for %d blocks; want none before a header authenticates", n)
	}
	for id := range made {
		if a.Store().HasBlock(chain.Hash(id)) {
			t.Fatalf("made-up block %s stored", id.Short())
		}
	}

	// Honest relay still works.
	parent, _ := b.Store().Tip()
	blk := g.BuildBlock(parent, time.Now(), authorityKey(), nil)
	if _, err := b.Store().AddBlock(blk, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Relay().PublishBlock(blk.Encode()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the honest block at the attacked node", func() bool {
		return a.Store().HasBlock(blk.ID())
	})
}
