package p2p

import (
	"errors"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxSubscriptionsPerRPC bounds the subscription changes one GossipSub RPC
// may carry; an RPC over it is dropped whole and its sender reported
// (Config.OnSubscriptionFlood). A relay node subscribes to two topics and
// announces them once per connection; 64 leaves room for an embedder's own
// topics on the same host. (Prysm caps the same list at 200 for Ethereum's
// hundreds of subnet topics.) Without a cap, one peer sent 50,000 junk
// subscriptions in 0.3 s and grew a node's memory by 100 MiB.
const MaxSubscriptionsPerRPC = 64

// errTooManySubscriptions drops an RPC over MaxSubscriptionsPerRPC.
var errTooManySubscriptions = errors.New("p2p: too many subscriptions in one RPC")

// subscriptionFilter keeps GossipSub's table of who subscribes to what to
// the topics this node may join: subscriptions to any other topic are
// dropped before GossipSub records them, so junk topics cost no memory
// whoever sends them (GossipSub reads subscriptions before it checks the
// sender's score, so a graylisted peer's would otherwise still land).
// Topics outside the list are not an offense: a newer version's topics,
// or another application's on a shared host, look the same.
type subscriptionFilter struct {
	allowed map[string]bool
	onFlood func(peer.ID) // may be nil
}

var _ pubsub.SubscriptionFilter = (*subscriptionFilter)(nil)

func newSubscriptionFilter(topics []string, onFlood func(peer.ID)) *subscriptionFilter {
	f := &subscriptionFilter{allowed: make(map[string]bool, len(topics)), onFlood: onFlood}
	for _, t := range topics {
		f.allowed[t] = true
	}
	return f
}

// CanSubscribe implements pubsub.SubscriptionFilter.
func (f *subscriptionFilter) CanSubscribe(topic string) bool { return f.allowed[topic] }

// FilterIncomingSubscriptions implements pubsub.SubscriptionFilter.
func (f *subscriptionFilter) FilterIncomingSubscriptions(from peer.ID, subs []*pb.RPC_SubOpts) ([]*pb.RPC_SubOpts, error) {
	if len(subs) > MaxSubscriptionsPerRPC {
		if f.onFlood != nil {
			f.onFlood(from)
		}
		return nil, errTooManySubscriptions
	}
	return pubsub.FilterSubscriptions(subs, f.CanSubscribe), nil
}
