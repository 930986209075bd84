package p2p

import (
	"math/bits"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/rumor-relay/rumor/relay/transport"
)

// tracer is the transport's GossipSub RawTracer. GossipSub calls it
// synchronously from its event loop and validation workers, so every method
// is quick and non-blocking: it hands events of joined topics to the
// observer (which must not block either) and keeps each joined topic's mesh
// under a tightly scoped mutex, never held while calling out.
//
// Three jobs: duplicate deliveries (DuplicateMessage carries the message and
// the peer that sent the copy, which had validated it); traffic (pubsub
// exports no metrics: RecvRPC and SendRPCCompleted give each RPC); mesh
// membership (Graft, Prune, peer down).
type tracer struct {
	t *Transport

	mu   sync.Mutex
	mesh map[string]map[peer.ID]struct{} // joined topics only
}

var _ pubsub.RawTracer = (*tracer)(nil)

func newTracer(t *Transport) *tracer {
	return &tracer{t: t, mesh: make(map[string]map[peer.ID]struct{})}
}

func (tr *tracer) join(topic string) {
	tr.mu.Lock()
	if tr.mesh[topic] == nil {
		tr.mesh[topic] = make(map[peer.ID]struct{})
	}
	tr.mu.Unlock()
}

func (tr *tracer) leave(topic string) {
	tr.mu.Lock()
	delete(tr.mesh, topic)
	tr.mu.Unlock()
}

func (tr *tracer) joined(topic string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.mesh[topic] != nil
}

// DuplicateMessage reports the sender of a copy of a seen message.
func (tr *tracer) DuplicateMessage(msg *pubsub.Message) {
	topic := msg.GetTopic()
	o := tr.t.obs()
	if o == nil || !tr.joined(topic) || msg.ReceivedFrom == "" || msg.ReceivedFrom == tr.t.host.ID() {
		return
	}
	o.Duplicate(topic, tr.t.names.name(msg.ReceivedFrom), msg.Data)
}

// RecvRPC reports received gossip traffic.
func (tr *tracer) RecvRPC(rpc *pubsub.RPC) { tr.traffic(rpc, true) }

// SendRPCCompleted reports sent gossip traffic once it is handed to the
// stream (SendRPC would count RPCs later dropped).
func (tr *tracer) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	tr.traffic(rpc, false)
}

func (tr *tracer) traffic(rpc *pubsub.RPC, in bool) {
	o := tr.t.obs()
	if o == nil {
		return
	}
	var msgs []transport.Published
	for _, m := range rpc.GetPublish() {
		if topic := m.GetTopic(); tr.joined(topic) {
			// A message is field 2 of the RPC: one tag byte, its
			// length as a varint, then its encoding.
			n := proto.Size(m)
			wire := 1 + (bits.Len64(uint64(n)|1)+6)/7 + n
			msgs = append(msgs, transport.Published{Topic: topic, Data: m.GetData(), Wire: wire})
		}
	}
	o.GossipTraffic(in, proto.Size(&rpc.RPC), msgs)
}

// Graft tracks mesh membership.
func (tr *tracer) Graft(p peer.ID, topic string) { tr.meshUpdate(topic, p, true) }

// Prune tracks mesh membership.
func (tr *tracer) Prune(p peer.ID, topic string) { tr.meshUpdate(topic, p, false) }

func (tr *tracer) meshUpdate(topic string, p peer.ID, add bool) {
	tr.mu.Lock()
	m := tr.mesh[topic]
	if m == nil {
		tr.mu.Unlock()
		return
	}
	if add {
		m[p] = struct{}{}
	} else {
		delete(m, p)
	}
	n := len(m)
	tr.mu.Unlock()
	if o := tr.t.obs(); o != nil {
		o.MeshChanged(topic, n)
	}
}

// OnClosedOutboundStream is GossipSub's "peer down": it drops the peer from
// every mesh without calling Prune, so neither do we.
func (tr *tracer) OnClosedOutboundStream(p peer.ID) {
	type change struct {
		topic string
		n     int
	}
	var changes []change
	tr.mu.Lock()
	for topic, m := range tr.mesh {
		if _, ok := m[p]; ok {
			delete(m, p)
			changes = append(changes, change{topic, len(m)})
		}
	}
	tr.mu.Unlock()
	if o := tr.t.obs(); o != nil {
		for _, c := range changes {
			o.MeshChanged(c.topic, c.n)
		}
	}
}

func (tr *tracer) meshPeers(topic string) []peer.ID {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]peer.ID, 0, len(tr.mesh[topic]))
	for p := range tr.mesh[topic] {
		out = append(out, p)
	}
	return out
}

// The remaining events carry nothing the relay needs.

// OnNewOutboundStream implements pubsub.RawTracer.
func (tr *tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}

// Join implements pubsub.RawTracer.
func (tr *tracer) Join(string) {}

// Leave implements pubsub.RawTracer.
func (tr *tracer) Leave(string) {}

// ValidateMessage implements pubsub.RawTracer.
func (tr *tracer) ValidateMessage(*pubsub.Message) {}

// DeliverMessage implements pubsub.RawTracer.
func (tr *tracer) DeliverMessage(*pubsub.Message) {}

// RejectMessage implements pubsub.RawTracer.
func (tr *tracer) RejectMessage(*pubsub.Message, string) {}

// ThrottlePeer implements pubsub.RawTracer.
func (tr *tracer) ThrottlePeer(peer.ID) {}

// SendRPC implements pubsub.RawTracer.
func (tr *tracer) SendRPC(*pubsub.RPC, peer.ID) {}

// DropRPC implements pubsub.RawTracer.
func (tr *tracer) DropRPC(*pubsub.RPC, peer.ID) {}

// UndeliverableMessage implements pubsub.RawTracer.
func (tr *tracer) UndeliverableMessage(*pubsub.Message) {}
