package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/rumor-relay/rumor/relay/wire"
)

// Link mode (Config.TxMode TxLink): tx inventory goes per link instead of
// through GossipSub, as Bitcoin's INV and Celestia CAT's SeenTx do. A node
// that comes to hold a tx (submitted here, fetched, reconciled) tells
// each peer of its tx topic mesh, in the next batch (TxLinkWindow), the
// first 8 bytes of the tx's id (wire.TxSeen, one long-lived stream per
// peer: transport.Messenger), unless that peer told it first or was told
// already. A peer that lacks it asks the announcer by that prefix
// (wire.GetTxsByPrefix), checks that the body's id starts with it, and
// announces it onwards once its pool took it.
//
// Why: in announce mode GossipSub carries each announcement to a node
// from most of its mesh peers, each copy wrapped in its own envelope
// (topic name, framing: 26 bytes around 42 of payload for one id), so
// announcements cost more than the 250-byte bodies they name. Per link,
// a node re-batches what it learned from all its peers into one message
// per peer and window, 8 bytes per id and one byte of framing, and no
// link carries an id both ways unless the two ends learn it at once.
//
// What it costs: each hop waits for a batch window (TxLinkWindow), where
// GossipSub forwards at once. On long links a prefix new here goes on
// while its body is fetched (cut-through, under announce mode's gates:
// txCutThroughAllowed), so a hop costs a latency and the body trails by a
// round trip at the far end; elsewhere a hop also waits for the body. Only
// the pool serves, so a bad body goes one hop; a junk prefix forwarded
// early goes on until its fetch fails, and its announcer is then an
// offender (fetch-first) for OffenderCooldown. The tx topic is still joined: its GossipSub mesh is the set
// of peers a node announces to (scored, degree-bounded, refreshed), and
// announcements from announce-mode peers are still validated and
// forwarded, so every node understands every mode.
//
// Hostile input: a message that breaks the framing or the format costs
// its sender OffenseOversize or OffenseMalformed; prefixes it does not
// then serve cost it OffenseNotFound per request, as announcements do;
// its fetches take at most MaxTxValidationsPerPeer slots (past that its
// announcements are dropped until fetches finish) and its unfetched
// prefixes at most MaxTrackedPerPeer scheduler items (past them prefixes
// are dropped without an offense, as an honest peer's are whenever this
// node falls behind; see wantLinked for what that leaves unpunished).

// txLinks is the link table behind its mutex, never held across a call
// out of the relay.
type txLinks struct {
	mu sync.Mutex
	t  *linkTable
}

// prefixKey names a prefix in the fetch scheduler, whose items are keyed
// by ID: the prefix's bytes, then zeros.
func prefixKey(x uint64) ID {
	var id ID
	binary.BigEndian.PutUint64(id[:wire.TxPrefixSize], x) // as wire.TxPrefix reads it
	return id
}

func prefixKeys(xs []uint64) []ID {
	out := make([]ID, len(xs))
	for i, x := range xs {
		out[i] = prefixKey(x)
	}
	return out
}

// sendTxSeen announces ids, which the pool holds, to each tx mesh peer
// that does not know them yet. It runs on the batcher goroutine.
func (r *Relay) sendTxSeen(ids []ID) {
	mesh := r.txTopic.Mesh()
	r.links.mu.Lock()
	if r.links.t.slotsFull() {
		// Ask the transport without the lock held.
		r.links.mu.Unlock()
		connected := r.tr.Peers()
		r.links.mu.Lock()
		r.links.t.retain(connected)
	}
	per := r.links.t.outgoing(ids, mesh)
	r.links.mu.Unlock()
	r.seen.markAnnounced(ids)
	r.stats.annPub.Add(1)
	r.metrics.announcement("published", "tx")
	for p, xs := range per {
		for len(xs) > 0 {
			n := min(len(xs), wire.MaxSeenPrefixes)
			msg, err := (&wire.TxSeen{Prefixes: xs[:n]}).Encode()
			xs = xs[n:]
			if err != nil {
				r.log.Errorw("encode tx seen", "err", err)
				continue
			}
			if err := r.messenger.Send(p, r.linkProto, msg); err != nil {
				// Lost: reconciliation brings the peer what this named.
				r.stats.linkDropped.Add(1)
				r.log.Debugw("tx seen not sent", "peer", p, "err", err)
				continue
			}
			r.noteLinkBytes(false, len(msg))
		}
	}
}

// onTxSeen handles an inbound TxSeen (transport.MessageHandler): it fetches
// from the sender the txs it names that are new here, behind the call.
func (r *Relay) onTxSeen(from PeerID, msg []byte, err error) {
	if err != nil {
		if errors.Is(err, wire.ErrFrameTooLarge) {
			r.penalize(from, OffenseOversize)
		} else {
			r.penalize(from, OffenseMalformed)
		}
		return
	}
	r.noteLinkBytes(true, len(msg))
	m, err := wire.DecodeTxSeen(msg)
	if err != nil {
		r.penalize(from, OffenseMalformed)
		return
	}
	// A peer whose fetch slots are all busy is still heard for what we
	// know, but what is new from it is dropped (reconciliation repairs
	// it), so it makes no entries either.
	canFetch := r.linkFetches.acquire(from)
	r.links.mu.Lock()
	fetch, sources, held := r.links.t.heard(from, m.Prefixes, canFetch)
	r.links.mu.Unlock()
	r.noteTxHeld(from, held)
	if len(sources) > 0 {
		r.fetch.addSources(from, kindTxShort, prefixKeys(sources))
	}
	if !canFetch {
		r.stats.linkDropped.Add(1)
		return
	}
	if len(fetch) == 0 {
		r.linkFetches.release(from)
		return
	}
	// Only once the fetch is sure to run: what goes on early is owed. Only
	// in link mode: a node of another mode announces whole ids, which it
	// learns once the body is here.
	var early []uint64
	if r.cfg.TxMode == TxLink && r.txCutThroughAllowed(from) {
		r.links.mu.Lock()
		early = r.links.t.forwardEarly(fetch)
		r.links.mu.Unlock()
		queued := 0
		for _, x := range early {
			if !r.batch.tryAdd(prefixKey(x)) {
				break // the batcher is backed up: announced once fetched
			}
			queued++
		}
		r.stats.earlyTxForward.Add(uint64(queued))
	}
	started := r.spawn(func() {
		defer r.linkFetches.release(from)
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.txValidateTimeout())
		defer cancel()
		res, err := r.fetch.fetchLinked(ctx, from, kindTxShort, prefixKeys(fetch))
		if err != nil {
			res = nil
		}
		if got := r.settlePrefixes(fetch, res); got == 0 && len(early) > 0 && !allDropped(res) {
			// Nothing of what went on early came, whatever the answer
			// (busy or a reset is no offense): its next prefixes are
			// fetched before they go further, as in announce mode. Not
			// when we dropped them all untried (past its cap): that says
			// nothing of the peer.
			r.offenders.note(from, r.now())
		}
	})
	if !started {
		r.linkFetches.release(from)
		r.settlePrefixes(fetch, nil)
	}
}

// allDropped reports whether every result is stDropped: the scheduler
// never asked anyone for them.
func allDropped(res []itemResult) bool {
	for _, it := range res {
		if it.status != stDropped {
			return false
		}
	}
	return len(res) > 0
}

// settlePrefixes records what fetching xs came to (res[i] answers xs[i];
// missing results failed) and returns how many the pool now holds. A body
// the pool did not take (Ignored: fee too low, pool full) is not held: we
// could not serve it.
func (r *Relay) settlePrefixes(xs []uint64, res []itemResult) (got int) {
	r.links.mu.Lock()
	defer r.links.mu.Unlock()
	for i, x := range xs {
		if i >= len(res) {
			r.links.t.fetched(x, ID{}, false, false)
			continue
		}
		it := res[i]
		ok := it.status == stOK && (it.verdict == Accepted || it.verdict == Known)
		if ok {
			got++
		}
		r.links.t.fetched(x, it.id, ok, it.status == stInvalid)
	}
	return got
}

// resolvePrefixes maps the prefixes a peer asks for to the ids of the txs
// this node announced under them (zero ids for those it holds none of).
// owed[i] marks a prefix announced early whose body has not landed: the
// answer must not call it not found (the asker would charge us). When
// wait, it first waits up to pendingServeWait for such fetches to end.
func (r *Relay) resolvePrefixes(xs []uint64, wait bool) (ids []ID, owed []bool) {
	ids, owed = make([]ID, len(xs)), make([]bool, len(xs))
	var waits []<-chan struct{}
	r.links.mu.Lock()
	for i, x := range xs {
		var ch <-chan struct{}
		ids[i], _, owed[i], ch = r.links.t.lookup(x)
		if ch != nil {
			waits = append(waits, ch)
		}
	}
	r.links.mu.Unlock()
	if !wait || len(waits) == 0 {
		return ids, owed
	}
	t := time.NewTimer(r.cfg.pendingServeWait())
	defer t.Stop()
wait:
	for _, ch := range waits {
		select {
		case <-ch:
		case <-t.C:
			break wait
		case <-r.ctx.Done():
			break wait
		}
	}
	return r.resolvePrefixes(xs, false)
}

// dropLinkPeer forgets what a departed peer knew.
func (r *Relay) dropLinkPeer(p PeerID) {
	r.links.mu.Lock()
	defer r.links.mu.Unlock()
	if r.links.t != nil {
		r.links.t.drop(p)
	}
}

// noteLinkBytes counts a TxSeen message of n bytes sent or received; on
// the wire it is one frame (its uvarint length prefix, then the message).
func (r *Relay) noteLinkBytes(in bool, n int) {
	framed := wire.FrameSize(n)
	dir := "out"
	if in {
		dir = "in"
		r.stats.linkTotal.in.Add(uint64(framed))
		r.stats.linkPayload.in.Add(uint64(n))
		r.stats.txAnnIn.Add(uint64(n))
		r.stats.txAnnWire.Add(uint64(framed))
		r.stats.annIn.Add(1)
	} else {
		r.stats.linkTotal.out.Add(uint64(framed))
		r.stats.linkPayload.out.Add(uint64(n))
		r.stats.annOut.Add(1)
	}
	r.metrics.announcement(dir, "tx")
	r.metrics.addBytes(dir, protoLink, classAnnounce, n)
	r.metrics.addBytes(dir, protoLink, classOverhead, framed-n)
}
