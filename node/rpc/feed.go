package rpc

import (
	"sync"
	"sync/atomic"
)

// Subscription topics, the parameter of the WebSocket "subscribe" method.
const (
	// TopicNewHeads delivers the header of every block that joins the best
	// chain, oldest first on a reorg.
	TopicNewHeads = "newHeads"
	// TopicNewPendingTxs delivers the id of every transaction that enters
	// the pool as executable (announceable).
	TopicNewPendingTxs = "newPendingTxs"
)

// feedBuffer is each subscription's event buffer. geth buffers 20,000
// events per subscription; at rumor's measured rates (thousands of txs per
// second) 4096 is over a second of pending-tx events, and a client that falls
// a second behind is cut off rather than holding memory.
const feedBuffer = 4096

// Feed fans events out to subscriptions. Publish never blocks: a subscriber
// whose buffer is full is dropped (its channel is closed and Dropped reports
// true), so a slow WebSocket client cannot stall block processing. Safe for
// concurrent use.
type Feed struct {
	n    atomic.Int32 // subscriptions, read without mu on the hot path
	mu   sync.Mutex
	subs map[*feedSub]struct{}
}

// NewFeed returns an empty feed.
func NewFeed() *Feed { return &Feed{subs: make(map[*feedSub]struct{})} }

type feedSub struct {
	topic   string
	ch      chan any
	dropped atomic.Bool
}

// Publish delivers v to every subscription of topic.
func (f *Feed) Publish(topic string, v any) {
	if f == nil || f.n.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if s.topic != topic {
			continue
		}
		select {
		case s.ch <- v:
		default:
			s.dropped.Store(true)
			f.removeLocked(s)
		}
	}
}

func (f *Feed) subscribe(topic string) *feedSub {
	s := &feedSub{topic: topic, ch: make(chan any, feedBuffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[s] = struct{}{}
	f.n.Add(1)
	return s
}

func (f *Feed) unsubscribe(s *feedSub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removeLocked(s)
}

func (f *Feed) removeLocked(s *feedSub) {
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		f.n.Add(-1)
		close(s.ch)
	}
}

// Subscribe returns a channel of topic's events and a function that ends the
// subscription. The channel is closed when the subscription ends, including
// when the subscriber falls feedBuffer events behind.
func (f *Feed) Subscribe(topic string) (<-chan any, func()) {
	s := f.subscribe(topic)
	return s.ch, func() { f.unsubscribe(s) }
}
