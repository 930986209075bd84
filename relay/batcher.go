package relay

import (
	"context"
	"time"
)

// batcher collects the ids of locally submitted txs into announcements. Its
// goroutine (run) owns the pending batch and the window timer; SubmitTx
// hands it ids over addCh and PublishBlock asks it to flush at once.
//
// A batch goes out when it holds max ids or when window has passed since
// its first id, whichever comes first; a flush sends every id added before
// it. TestBatcherWindowAndMax checks the timing exactly in virtual time.
type batcher struct {
	window  time.Duration
	max     int
	publish func([]ID)

	addCh   chan ID
	flushCh chan chan []ID
}

func newBatcher(window time.Duration, max int, publish func([]ID)) *batcher {
	return &batcher{
		window:  window,
		max:     max,
		publish: publish,
		addCh:   make(chan ID, MaxPendingBatch),
		flushCh: make(chan chan []ID),
	}
}

// add queues id for announcement; it blocks only when MaxPendingBatch ids
// are already waiting for the batcher goroutine, until ctx ends.
func (b *batcher) add(ctx context.Context, id ID) {
	select {
	case b.addCh <- id:
	case <-ctx.Done():
	}
}

// tryAdd queues id unless MaxPendingBatch ids are already waiting; it
// never blocks (for callers on transport goroutines).
func (b *batcher) tryAdd(id ID) bool {
	select {
	case b.addCh <- id:
		return true
	default:
		return false
	}
}

// flush publishes the pending batch now and returns its ids.
func (b *batcher) flush(ctx context.Context) []ID {
	reply := make(chan []ID, 1)
	select {
	case b.flushCh <- reply:
	case <-ctx.Done():
		return nil
	}
	select {
	case ids := <-reply:
		return ids
	case <-ctx.Done():
		return nil
	}
}

func (b *batcher) run(ctx context.Context) {
	var pending []ID
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	send := func() []ID {
		out := pending
		pending = nil
		if armed {
			timer.Stop()
			armed = false
		}
		if len(out) > 0 {
			b.publish(out)
		}
		return out
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case id := <-b.addCh:
			pending = append(pending, id)
			full := len(pending) >= b.max
			// Drain what is already queued without waiting, so a burst
			// fills batches instead of waking the timer per id.
			for !full {
				select {
				case id = <-b.addCh:
					pending = append(pending, id)
					full = len(pending) >= b.max
					continue
				default:
				}
				break
			}
			if full {
				send()
			} else if !armed {
				timer.Reset(b.window)
				armed = true
			}
		case <-timer.C:
			armed = false
			send()
		case reply := <-b.flushCh:
			// Ids added before the flush was asked may still sit in addCh
			// (select picks among ready cases at random): take them too.
			for drained := false; !drained; {
				select {
				case id := <-b.addCh:
					pending = append(pending, id)
				default:
					drained = true
				}
			}
			reply <- send()
		}
	}
}
