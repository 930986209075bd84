package node

import (
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
)

// TestMessageLoss: the inspector drops about the configured fraction of
// gossip parts, each on its own, keeps everything at 0 and rejects an RPC
// that lost every part.
func TestMessageLoss(t *testing.T) {
	rpcOf := func(msgs, ihaves int) *pubsub.RPC {
		r := &pubsub.RPC{}
		for range msgs {
			r.Publish = append(r.Publish, &pb.Message{})
		}
		if ihaves > 0 {
			r.Control = &pb.ControlMessage{}
			for range ihaves {
				r.Control.Ihave = append(r.Control.Ihave, &pb.ControlIHave{})
			}
		}
		return r
	}
	o := &options{}
	WithMessageLoss(0, 1)(o)
	r := rpcOf(100, 100)
	if err := o.loss.inspect("", r); err != nil || len(r.Publish) != 100 || len(r.Control.Ihave) != 100 {
		t.Fatalf("no loss: %v, %d messages, %d ihaves kept", err, len(r.Publish), len(r.Control.Ihave))
	}
	WithMessageLoss(1, 1)(o)
	if err := o.loss.inspect("", rpcOf(3, 2)); err == nil {
		t.Fatal("an RPC that lost everything was let through")
	}
	WithMessageLoss(0.3, 1)(o)
	kept, total := 0, 0
	for range 100 {
		r := rpcOf(50, 50)
		_ = o.loss.inspect("", r)
		kept += len(r.Publish) + len(r.Control.Ihave)
		total += 100
	}
	if lost := 1 - float64(kept)/float64(total); lost < 0.28 || lost > 0.32 {
		t.Fatalf("lost %.3f of the parts, want 0.3", lost)
	}
}
