package node

import (
	"errors"
	"math/rand/v2"
	"sync"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// WithMessageLoss makes the node lose that fraction (0..1) of the
// GossipSub messages it receives, each drawn on its own from a generator
// seeded with seed: published messages and each IHAVE, IWANT, GRAFT,
// PRUNE and IDONTWANT entry, as a lossy link would lose them. It is for
// simulated testnets (fault injection): a real link's losses are hidden by
// its transport's retransmissions, so what is lost there is whole gossip,
// which is what this drops. Requests and responses are not touched.
func WithMessageLoss(fraction float64, seed uint64) Option {
	return func(o *options) {
		o.loss = &messageLoss{fraction: fraction, rng: rand.New(rand.NewPCG(seed, 0x6c6f7373))}
	}
}

// messageLoss drops incoming gossip at random. GossipSub calls its
// inspector on its one event loop goroutine, but the mutex keeps the
// generator safe whatever the router does.
type messageLoss struct {
	fraction float64
	mu       sync.Mutex
	rng      *rand.Rand
}

var errAllLost = errors.New("every part of the RPC was lost")

// option returns the GossipSub option that installs the loss.
func (l *messageLoss) option() pubsub.Option {
	return pubsub.WithAppSpecificRpcInspector(l.inspect)
}

// inspect drops parts of rpc in place; it rejects an RPC that had parts
// and lost them all (an empty RPC would be processed for nothing).
func (l *messageLoss) inspect(_ peer.ID, rpc *pubsub.RPC) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	parts, kept := 0, 0
	keep := func() bool {
		parts++
		if l.rng.Float64() < l.fraction {
			return false
		}
		kept++
		return true
	}
	rpc.Publish = filter(rpc.Publish, keep)
	if c := rpc.Control; c != nil {
		c.Ihave = filter(c.Ihave, keep)
		c.Iwant = filter(c.Iwant, keep)
		c.Graft = filter(c.Graft, keep)
		c.Prune = filter(c.Prune, keep)
		c.Idontwant = filter(c.Idontwant, keep)
	}
	if parts > 0 && kept == 0 && len(rpc.Subscriptions) == 0 {
		return errAllLost
	}
	return nil
}

// filter keeps the elements keep says to, in place.
func filter[T any](s []T, keep func() bool) []T {
	out := s[:0]
	for _, x := range s {
		if keep() {
			out = append(out, x)
		}
	}
	return out
}
