package relay

import (
	"github.com/rumor-relay/rumor/relay/transport"
	"github.com/rumor-relay/rumor/relay/wire"
)

// observer receives the transport's events (transport.Observer). The
// transport calls it synchronously from its own goroutines, so every method
// is quick and non-blocking: atomic counters, metrics, non-blocking sends of
// alternative sources to the fetch loop, and the syncer's coalescing peer
// events.
//
// Its jobs: peers for sync; alternative announcers from duplicate
// deliveries (the peer that sent a copy had validated the message, so it
// holds the bodies it names); gossip message and byte counts; mesh sizes.
type observer struct{ r *Relay }

var _ transport.Observer = observer{}

func (o observer) topicLabel(topic string) (string, bool) {
	switch topic {
	case o.r.txTopicName:
		return "tx", true
	case o.r.blockTopicName:
		return "block", true
	}
	return "", false
}

// PeerConnected hands the peer to sync (which dedupes repeats).
func (o observer) PeerConnected(p transport.PeerID) {
	if o.r.sync != nil {
		o.r.sync.AddPeer(p)
	}
}

// PeerDisconnected tells sync and the link table the peer is gone.
func (o observer) PeerDisconnected(p transport.PeerID) {
	o.r.dropLinkPeer(p)
	if o.r.sync != nil {
		o.r.sync.RemovePeer(p)
	}
}

// Duplicate records the sender of a copy as another source of the items
// the message announces.
func (o observer) Duplicate(topic string, from transport.PeerID, data []byte) {
	r := o.r
	label, ok := o.topicLabel(topic)
	if !ok {
		return
	}
	r.stats.dupAnn.Add(1)
	r.metrics.duplicate(label)
	if from == "" || from == r.self {
		return
	}
	if topic == r.txTopicName {
		ann, err := wire.DecodeTxAnnounce(data)
		if err != nil {
			return
		}
		r.fetch.addSources(from, kindTx, ann.IDs)
		r.noteTxHeld(from, ann.IDs)
		return
	}
	ann, err := wire.DecodeBlockAnnounce(data)
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

// GossipTraffic counts gossip bytes (all of them, envelopes and control
// included) and the payloads of our topics' messages by class.
func (o observer) GossipTraffic(in bool, wireBytes int, msgs []transport.Published) {
	r := o.r
	r.noteGossipTotal(in, wireBytes)
	dir := "out"
	if in {
		dir = "in"
	}
	payload := 0
	for _, m := range msgs {
		label, ok := o.topicLabel(m.Topic)
		if !ok {
			continue
		}
		payload += len(m.Data)
		class := classAnnounce
		pushed := len(m.Data) > 0 && (m.Topic == r.blockTopicName && m.Data[0] == wire.TagBlockPush ||
			m.Topic == r.txTopicName && m.Data[0] == wire.TagTxPush)
		if pushed {
			class = classBody
		}
		r.noteGossipClass(in, class, len(m.Data))
		if in {
			switch {
			case m.Topic == r.blockTopicName:
				r.stats.blockIn.Add(uint64(len(m.Data)))
			case m.Topic == r.txTopicName && pushed:
				r.stats.txBodyIn.Add(uint64(len(m.Data)))
			case m.Topic == r.txTopicName:
				r.stats.txAnnIn.Add(uint64(len(m.Data)))
				r.stats.txAnnWire.Add(uint64(max(m.Wire, len(m.Data))))
			}
		}
		if in {
			r.stats.annIn.Add(1)
		} else {
			r.stats.annOut.Add(1)
		}
		r.metrics.announcement(dir, label)
	}
	r.metrics.addBytes(dir, protoGossip, classOverhead, wireBytes-payload)
}

// MeshChanged records a topic's mesh size.
func (o observer) MeshChanged(topic string, size int) {
	if label, ok := o.topicLabel(topic); ok {
		o.r.metrics.setMesh(label, size)
	}
}
