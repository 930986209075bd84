package relay

import (
	"context"
	mrand "math/rand/v2"

	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// validateTx is the validator of the tx topic. It runs on a transport
// validation goroutine (at most TxValidateConcurrency at once) and
// parks on the fetch loop until every unknown id of the announcement is
// fetched and handed to the pool. Only then does it accept, so a node
// forwards an announcement only when it holds the bodies.
//
//	malformed announcement            -> Reject (+ OffenseMalformed)
//	some body invalid by chain rules  -> Reject (server penalized by the scheduler)
//	some body new and accepted        -> Accept
//	every id pending here by now      -> Accept (we can serve them all)
//	all known / ignored / unavailable -> Ignore
func (r *Relay) validateTx(ctx context.Context, from PeerID, data []byte) transport.Validation {
	if len(data) > 0 && data[0] == wire.TagTxPush {
		return r.validate(ctx, "tx", r.txSlots, from, data, r.checkTxPush)
	}
	return r.validate(ctx, "tx", r.txSlots, from, data, r.checkTxAnnounce)
}

// checkTxPush validates a batch of pushed bodies (TxPush, the baseline
// mode): each new body goes to the pool; the message is forwarded when the
// pool took at least one.
//
//	malformed message or body, oversize body -> Reject (+ OffenseMalformed / OffenseOversize)
//	some body invalid by chain rules         -> Reject (+ OffenseInvalidTx)
//	some body new and accepted               -> Accept
//	otherwise                                -> Ignore
func (r *Relay) checkTxPush(_ context.Context, from PeerID, data []byte) transport.Validation {
	m, err := wire.DecodeTxPush(data)
	if err != nil {
		r.penalize(from, OffenseMalformed)
		return transport.Reject
	}
	ids := make([]ID, 0, len(m.Bodies))
	accepted := 0
	for _, body := range m.Bodies {
		if len(body) > r.cfg.MaxTxBytes {
			r.penalize(from, OffenseOversize)
			return transport.Reject
		}
		id, err := r.pool.TxID(body)
		if err != nil {
			r.penalize(from, OffenseMalformed)
			return transport.Reject
		}
		ids = append(ids, id)
		if r.pool.HasTx(id) {
			r.noteBody("tx", true)
			continue
		}
		if r.recentlyRejected(id) {
			continue
		}
		switch v, _ := r.takeTxBody(id, body); v {
		case Invalid:
			r.penalize(from, OffenseInvalidTx)
			return transport.Reject
		case Accepted:
			accepted++
		}
	}
	r.noteTxHeld(from, ids)
	if accepted == 0 {
		return transport.Ignore
	}
	r.seen.markAnnounced(ids)
	return transport.Accept
}

// validate runs check on a message from a peer (ours are accepted as they
// are), under a context that also ends when the relay closes, and counts
// the result under topic. A peer already using its share of the topic's
// validation slots has the message ignored.
func (r *Relay) validate(ctx context.Context, topic string, slots *peerSlots, from PeerID, data []byte,
	check func(context.Context, PeerID, []byte) transport.Validation) transport.Validation {
	if from == r.self {
		return transport.Accept
	}
	if !slots.acquire(from) {
		r.countValidation(topic, transport.Ignore)
		return transport.Ignore
	}
	defer slots.release(from)
	ctx, done := r.validationCtx(ctx)
	defer done()
	if ctx.Err() != nil {
		return transport.Ignore
	}
	res := check(ctx, from, data)
	r.countValidation(topic, res)
	return res
}

func (r *Relay) checkTxAnnounce(ctx context.Context, from PeerID, data []byte) transport.Validation {
	ann, err := wire.DecodeTxAnnounce(data)
	if err != nil {
		r.penalize(from, OffenseMalformed)
		return transport.Reject
	}
	r.noteTxHeld(from, ann.IDs)
	want := make([]ID, 0, len(ann.IDs))
	rejected := false
	for _, id := range ann.IDs {
		if r.pool.HasTx(id) {
			continue
		}
		if r.recentlyRejected(id) {
			// Known junk: not fetched again, and the announcement goes no
			// further; the rest of its ids are still fetched (a node with
			// other rules may batch a valid tx with it). No penalty: its
			// first sender paid when the body failed.
			rejected = true
			continue
		}
		want = append(want, id)
	}
	if len(want) == 0 {
		if rejected {
			return transport.Ignore
		}
		// This is the first copy of the announcement to reach us, yet we
		// hold every id: we learned the txs another way (pool sync, our
		// own client, another batch). Forward it when we can serve them, or
		// the announcement dies here although its txs are still news
		// further on; GossipSub drops the copies peers already saw.
		return r.servable(ann.IDs)
	}
	if !rejected {
		if res, ok := r.forwardTxsEarly(from, ann.IDs, want); ok {
			return res
		}
	}
	results, err := r.fetch.fetch(ctx, from, kindTx, want, nil)
	if err != nil {
		r.log.Debugw("tx announcement: fetch failed", "from", from, "err", err)
		return transport.Ignore
	}
	if rejected {
		return transport.Ignore // the rest is fetched; the junk goes no further
	}
	accepted := 0
	for _, res := range results {
		switch res.status {
		case stInvalid:
			return transport.Reject
		case stOK:
			if res.verdict == Accepted {
				accepted++
			}
		}
	}
	if accepted > 0 {
		r.seen.markAnnounced(ann.IDs)
		return transport.Accept
	}
	// Nothing new from this fetch, but the bodies may have landed by
	// another path meanwhile (pool sync, another announcement): forward
	// if we can serve them all.
	return r.servable(ann.IDs)
}

// servable accepts an announcement whose ids we can all serve (GetTx finds
// them), were first seen here within the last validation timeout (news
// that reached us by another path), and at least one of which this node
// has not announced yet. It ignores it otherwise: some ids cannot be
// served, or are old, or everything in it went out from here already, so
// a replayed announcement (a new message naming the same ids) dies at the
// first hop instead of flooding the network.
func (r *Relay) servable(ids []ID) transport.Validation {
	fresh := r.now().Add(-r.cfg.txValidateTimeout())
	for _, id := range ids {
		if _, ok := r.pool.GetTx(id); !ok {
			return transport.Ignore
		}
		if at, ok := r.seen.get(id); !ok || at.Before(fresh) {
			return transport.Ignore
		}
	}
	if !r.seen.markAnnounced(ids) {
		return transport.Ignore
	}
	return transport.Accept
}

// validationCtx is the transport's validation context, also cancelled when
// the relay closes, so Close ends every validation promptly whatever the
// transport does with its own goroutines.
func (r *Relay) validationCtx(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// validateBlock is the validator of the block topic (at most
// BlockValidateConcurrency at once, a separate throttle from txs). It
// accepts once the block is stored, or, on a chain that authenticates
// headers, once the header verifies (cut-through, see handleBlockAnnounce).
func (r *Relay) validateBlock(ctx context.Context, from PeerID, data []byte) transport.Validation {
	return r.validate(ctx, "block", r.blockSlots, from, data, r.checkBlockAnnounce)
}

func (r *Relay) checkBlockAnnounce(ctx context.Context, from PeerID, data []byte) transport.Validation {
	ann, err := wire.DecodeBlockAnnounce(data)
	if err != nil {
		r.penalize(from, OffenseMalformed)
		return transport.Reject
	}
	switch r.handleBlockAnnounce(ctx, from, ann) {
	case Accepted:
		return transport.Accept
	case Invalid:
		return transport.Reject
	}
	return transport.Ignore
}

func (r *Relay) countValidation(topic string, res transport.Validation) {
	label := "ignore"
	switch res {
	case transport.Accept:
		r.stats.accepted.Add(1)
		label = "accept"
	case transport.Reject:
		r.stats.rejected.Add(1)
		label = "reject"
	default:
		r.stats.ignored.Add(1)
	}
	r.metrics.validated(topic, label)
}

// publishTxBatch gossips a batch of locally submitted tx ids in the
// configured TxMode. It runs on the batcher goroutine.
func (r *Relay) publishTxBatch(ids []ID) {
	switch r.cfg.TxMode {
	case TxPush:
		r.pushTxBatch(ids)
	case TxLink:
		r.sendTxSeen(ids)
	default:
		r.announceTxBatch(ids)
	}
}

// announceTxBatch publishes ids in TxAnnounce messages.
func (r *Relay) announceTxBatch(ids []ID) {
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxAnnounceIDs)
		batch := ids[:n]
		ids = ids[n:]
		data, err := (&wire.TxAnnounce{Nonce: mrand.Uint64(), IDs: batch}).Encode()
		if err != nil {
			r.log.Errorw("encode tx announcement", "err", err)
			continue
		}
		r.publishTxMessage(data, batch, "announcement")
	}
}

// publishTxMessage publishes one message of the tx topic carrying ids
// (an announcement or a push) and counts it.
func (r *Relay) publishTxMessage(data []byte, ids []ID, kind string) {
	if err := r.txTopic.Publish(r.ctx, data); err != nil {
		if r.ctx.Err() == nil {
			r.log.Warnw("publish tx "+kind, "err", err)
		}
		return
	}
	r.seen.markAnnounced(ids)
	r.stats.annPub.Add(1)
	r.metrics.announcement("published", "tx")
}

// pushTxBatch publishes the bodies of ids (those the pool still serves) in
// TxPush messages, as many per message as fit the gossip size limit; a tx
// too large for any message is announced instead, as block push mode
// falls back to compact.
func (r *Relay) pushTxBatch(ids []ID) {
	// Room for the tag, nonce, count and GossipSub's own framing.
	limit := r.cfg.MaxGossipMessageSize - 1024
	var (
		batch  []ID
		bodies [][]byte
		size   int
	)
	flush := func() {
		if len(bodies) == 0 {
			return
		}
		if data, err := (&wire.TxPush{Nonce: mrand.Uint64(), Bodies: bodies}).Encode(); err != nil {
			r.log.Errorw("encode tx push", "err", err)
		} else {
			r.publishTxMessage(data, batch, "push")
		}
		batch, bodies, size = nil, nil, 0
	}
	var tooLarge []ID
	for _, id := range ids {
		b, ok := r.pool.GetTx(id)
		if !ok {
			continue
		}
		if len(b)+4 > limit {
			tooLarge = append(tooLarge, id)
			continue
		}
		if len(bodies) == wire.MaxAnnounceIDs || (len(bodies) > 0 && size+len(b)+4 > limit) {
			flush()
		}
		batch, bodies, size = append(batch, id), append(bodies, b), size+len(b)+4
	}
	flush()
	if len(tooLarge) > 0 {
		r.announceTxBatch(tooLarge)
	}
}
