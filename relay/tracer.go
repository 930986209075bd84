package relay

import (
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/rumor-relay/rumor/relay/wire"
)

// tracer is the relay's GossipSub RawTracer. GossipSub calls it
// synchronously from its event loop and validation workers, so every method
// is quick and non-blocking: atomic counters, a tightly scoped mutex for the
// mesh table, and non-blocking sends of alternative sources to the fetch
// loop.
//
// It does three jobs: it learns alternative announcers from duplicate
// deliveries (DuplicateMessage carries the message and the peer that sent
// the copy, which had validated, and so holds, its bodies); it counts gossip
// messages and bytes (pubsub exports no metrics); and it tracks each topic's
// mesh for MeshPeers.
type tracer struct {
	r *Relay

	mu   sync.Mutex
	mesh map[string]map[peer.ID]struct{}
}

var _ pubsub.RawTracer = (*tracer)(nil)

func newTracer(r *Relay) *tracer {
	return &tracer{r: r, mesh: make(map[string]map[peer.ID]struct{})}
}

func (t *tracer) ours(topic string) bool {
	return topic == t.r.txTopicName || topic == t.r.blockTopicName
}

func (t *tracer) topicLabel(topic string) string {
	if topic == t.r.txTopicName {
		return "tx"
	}
	return "block"
}

// DuplicateMessage records the sender of a duplicate as another source of
// the items the message announces.
func (t *tracer) DuplicateMessage(msg *pubsub.Message) {
	topic := msg.GetTopic()
	if !t.ours(topic) {
		return
	}
	r := t.r
	r.stats.dupAnn.Add(1)
	r.metrics.duplicate(t.topicLabel(topic))
	from := msg.ReceivedFrom
	if from == "" || from == r.host.ID() {
		return
	}
	if topic == r.txTopicName {
		ann, err := wire.DecodeTxAnnounce(msg.Data)
		if err != nil {
			return
		}
		r.fetch.addSources(from, kindTx, ann.IDs)
		return
	}
	ann, err := wire.DecodeBlockAnnounce(msg.Data)
	if err != nil {
		return
	}
	var hdr []byte
	switch a := ann.(type) {
	case *wire.CompactBlock:
		hdr = a.Header
	case *wire.BlockPull:
		hdr = a.Header
	case *wire.BlockPush:
		// The whole block came again: nothing to fetch, but it is a
		// duplicate body, the cost push mode pays.
		r.noteBody("block", true)
		return
	}
	info, err := r.chain.ParseHeader(hdr)
	if err != nil {
		return
	}
	ids := []ID{info.ID}
	r.fetch.addSources(from, kindBlockTxn, ids)
	r.fetch.addSources(from, kindBlock, ids)
}

// RecvRPC counts received gossip bytes and messages.
func (t *tracer) RecvRPC(rpc *pubsub.RPC) {
	t.countRPC(rpc, true)
}

// SendRPCCompleted counts sent gossip bytes and messages once they are
// handed to the stream (SendRPC would count RPCs later dropped).
func (t *tracer) SendRPCCompleted(rpc *pubsub.RPC, _ peer.ID, _ time.Duration) {
	t.countRPC(rpc, false)
}

func (t *tracer) countRPC(rpc *pubsub.RPC, in bool) {
	r := t.r
	total := proto.Size(&rpc.RPC)
	r.noteGossipTotal(in, total)
	dir := "out"
	if in {
		dir = "in"
	}
	payload := 0
	defer func() { r.metrics.addBytes(dir, protoGossip, classOverhead, total-payload) }()
	for _, m := range rpc.GetPublish() {
		topic := m.GetTopic()
		if !t.ours(topic) {
			continue
		}
		data := m.GetData()
		payload += len(data)
		class := classAnnounce
		if topic == r.blockTopicName && len(data) > 0 && data[0] == wire.TagBlockPush {
			class = classBody
		}
		r.noteGossipClass(in, class, len(data))
		if in {
			r.stats.annIn.Add(1)
		} else {
			r.stats.annOut.Add(1)
		}
		r.metrics.announcement(dir, t.topicLabel(topic))
	}
}

// Graft tracks mesh membership.
func (t *tracer) Graft(p peer.ID, topic string) {
	if !t.ours(topic) {
		return
	}
	t.mu.Lock()
	m := t.mesh[topic]
	if m == nil {
		m = make(map[peer.ID]struct{})
		t.mesh[topic] = m
	}
	m[p] = struct{}{}
	n := len(m)
	t.mu.Unlock()
	t.r.metrics.setMesh(t.topicLabel(topic), n)
}

// Prune tracks mesh membership.
func (t *tracer) Prune(p peer.ID, topic string) {
	if !t.ours(topic) {
		return
	}
	t.mu.Lock()
	m := t.mesh[topic]
	delete(m, p)
	n := len(m)
	t.mu.Unlock()
	t.r.metrics.setMesh(t.topicLabel(topic), n)
}

// OnClosedOutboundStream is GossipSub's "peer down": it drops the peer from
// every mesh without calling Prune, so neither do we.
func (t *tracer) OnClosedOutboundStream(p peer.ID) {
	t.mu.Lock()
	for topic, m := range t.mesh {
		if _, ok := m[p]; ok {
			delete(m, p)
			t.r.metrics.setMesh(t.topicLabel(topic), len(m))
		}
	}
	t.mu.Unlock()
}

func (t *tracer) meshPeers(topic string) []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]peer.ID, 0, len(t.mesh[topic]))
	for p := range t.mesh[topic] {
		out = append(out, p)
	}
	return out
}

// Leave forgets a topic's mesh.
func (t *tracer) Leave(topic string) {
	t.mu.Lock()
	delete(t.mesh, topic)
	t.mu.Unlock()
}

// The remaining events carry nothing the relay needs.

// OnNewOutboundStream implements pubsub.RawTracer.
func (t *tracer) OnNewOutboundStream(peer.ID, protocol.ID) {}

// Join implements pubsub.RawTracer.
func (t *tracer) Join(string) {}

// ValidateMessage implements pubsub.RawTracer.
func (t *tracer) ValidateMessage(*pubsub.Message) {}

// DeliverMessage implements pubsub.RawTracer.
func (t *tracer) DeliverMessage(*pubsub.Message) {}

// RejectMessage implements pubsub.RawTracer.
func (t *tracer) RejectMessage(*pubsub.Message, string) {}

// ThrottlePeer implements pubsub.RawTracer.
func (t *tracer) ThrottlePeer(peer.ID) {}

// SendRPC implements pubsub.RawTracer.
func (t *tracer) SendRPC(*pubsub.RPC, peer.ID) {}

// DropRPC implements pubsub.RawTracer.
func (t *tracer) DropRPC(*pubsub.RPC, peer.ID) {}

// UndeliverableMessage implements pubsub.RawTracer.
func (t *tracer) UndeliverableMessage(*pubsub.Message) {}
