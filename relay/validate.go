package relay

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-relay/rumor/relay/wire"
)

// validateTx is the GossipSub validator of the tx topic. It runs on a
// GossipSub validation goroutine (at most TxValidateConcurrency at once) and
// parks on the fetch loop until every unknown id of the announcement is
// fetched and handed to the pool. Only then does it accept, so a node
// forwards an announcement only when it holds the bodies.
//
//	malformed announcement            -> Reject (+ OffenseMalformed)
//	some body invalid by chain rules  -> Reject (server penalized by the scheduler)
//	some body new and accepted        -> Accept
//	all known / ignored / unavailable -> Ignore
func (r *Relay) validateTx(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == r.host.ID() {
		return pubsub.ValidationAccept
	}
	res := r.checkTxAnnounce(ctx, from, msg.Data)
	r.countValidation("tx", res)
	return res
}

func (r *Relay) checkTxAnnounce(ctx context.Context, from peer.ID, data []byte) pubsub.ValidationResult {
	ann, err := wire.DecodeTxAnnounce(data)
	if err != nil {
		r.penalize(from, OffenseMalformed)
		return pubsub.ValidationReject
	}
	want := make([]ID, 0, len(ann.IDs))
	for _, id := range ann.IDs {
		if !r.pool.HasTx(id) {
			want = append(want, id)
		}
	}
	if len(want) == 0 {
		return pubsub.ValidationIgnore
	}
	results, err := r.fetch.fetch(ctx, from, kindTx, want, nil)
	if err != nil {
		return pubsub.ValidationIgnore
	}
	accepted := 0
	for _, res := range results {
		switch res.status {
		case stInvalid:
			return pubsub.ValidationReject
		case stOK:
			if res.verdict == Accepted {
				accepted++
			}
		}
	}
	if accepted > 0 {
		return pubsub.ValidationAccept
	}
	return pubsub.ValidationIgnore
}

// validateBlock is the GossipSub validator of the block topic (at most
// BlockValidateConcurrency at once, a separate throttle from txs). It
// accepts only once the block is stored.
func (r *Relay) validateBlock(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if from == r.host.ID() {
		return pubsub.ValidationAccept
	}
	ann, err := wire.DecodeBlockAnnounce(msg.Data)
	if err != nil {
		r.penalize(from, OffenseMalformed)
		r.countValidation("block", pubsub.ValidationReject)
		return pubsub.ValidationReject
	}
	v := r.handleBlockAnnounce(ctx, from, ann)
	res := pubsub.ValidationIgnore
	switch v {
	case Accepted:
		res = pubsub.ValidationAccept
	case Invalid:
		res = pubsub.ValidationReject
	}
	r.countValidation("block", res)
	return res
}

func (r *Relay) countValidation(topic string, res pubsub.ValidationResult) {
	label := "ignore"
	switch res {
	case pubsub.ValidationAccept:
		r.stats.accepted.Add(1)
		label = "accept"
	case pubsub.ValidationReject:
		r.stats.rejected.Add(1)
		label = "reject"
	default:
		r.stats.ignored.Add(1)
	}
	r.metrics.validated(topic, label)
}

// publishTxBatch announces a batch of locally submitted tx ids. It runs on
// the batcher goroutine.
func (r *Relay) publishTxBatch(ids []ID) {
	for len(ids) > 0 {
		n := min(len(ids), wire.MaxAnnounceIDs)
		data, err := (&wire.TxAnnounce{IDs: ids[:n]}).Encode()
		ids = ids[n:]
		if err != nil {
			r.log.Errorw("encode tx announcement", "err", err)
			continue
		}
		if err := r.txTopic.Publish(r.ctx, data); err != nil {
			if r.ctx.Err() == nil {
				r.log.Warnw("publish tx announcement", "err", err)
			}
			continue
		}
		r.stats.annPub.Add(1)
		r.metrics.announcement("published", "tx")
	}
}
