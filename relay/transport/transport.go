// Package transport is the seam between the relay's protocol logic and the
// network it runs on. The relay (and its syncer) see peers, topics and
// requests only through the small interfaces here; package relay/p2p
// implements them over libp2p streams and GossipSub, package relay/memnet
// over in-process channels (for tests under testing/synctest and for
// simulations).
//
// The split follows hashicorp/memberlist's Transport and etcd-io/raft's
// I/O-free core: what to send, to whom and what a message means is the
// relay's; how bytes reach a peer is the transport's.
//
// # What a transport must provide
//
//   - Gossip topics with a validator per topic: a message is delivered to
//     the validator of every subscribed node it reaches, and forwarded
//     onwards only when the validator accepts it. A copy of a message a
//     node has already seen is not validated again; the transport reports
//     it to the Observer as a duplicate (the sender held it, so it is a
//     fallback source for what the message names).
//   - One request and one response per exchange (Request / Serve), each a
//     byte string with a size cap. Errors wrap wire.ErrFrameTooLarge when
//     the answer exceeds the cap and wire.ErrMalformed when its framing is
//     broken; a context that ends makes Request return promptly.
//   - Peer events: connected and disconnected (last connection closed).
//
// Transports call the Validator, RequestHandler and Observer on their own
// goroutines, possibly many at once; each must be safe for concurrent use
// and quick, except that validators and request handlers may block for as
// long as their context allows.
package transport

import (
	"context"
	"errors"
	"time"
)

// PeerID names a peer. It is the transport's own identifier in text form
// (for libp2p, the base58 peer id), so logs and RPC show it as is; the
// relay treats it as opaque.
type PeerID string

// ShortString returns the last 8 characters of the id, for logs.
func (p PeerID) ShortString() string {
	if len(p) <= 8 {
		return string(p)
	}
	return string(p[len(p)-8:])
}

// Validation is a validator's verdict on a gossip message.
type Validation int

const (
	// Accept delivers and forwards the message.
	Accept Validation = iota
	// Ignore drops the message without blaming its sender.
	Ignore
	// Reject drops the message and tells the transport's own peer scoring
	// (GossipSub's P4) that the sender forwarded something invalid.
	Reject
)

// String names the verdict for logs and metric labels.
func (v Validation) String() string {
	switch v {
	case Accept:
		return "accept"
	case Ignore:
		return "ignore"
	case Reject:
		return "reject"
	}
	return "unknown"
}

// Validator decides whether a message received on a topic is forwarded.
// from is the peer that delivered this copy (not necessarily its author).
// ctx ends after the topic's validation timeout or when the transport
// closes.
type Validator func(ctx context.Context, from PeerID, data []byte) Validation

// TopicConfig configures one joined topic.
type TopicConfig struct {
	// Validate is called for every new message; nil accepts everything.
	Validate Validator
	// Concurrency caps the validations of this topic running at once;
	// messages beyond it are dropped (ignored), so one busy topic cannot
	// starve another. Zero means the transport's default.
	Concurrency int
	// Timeout bounds one validation. Zero means the transport's default.
	Timeout time.Duration
}

// Topic is a joined gossip topic.
type Topic interface {
	// Publish sends data to the topic's peers as a message authored here.
	Publish(ctx context.Context, data []byte) error
	// Peers returns the peers known to subscribe to the topic.
	Peers() []PeerID
	// Mesh returns the peers this node forwards the topic's messages to.
	Mesh() []PeerID
	// Close unsubscribes and leaves the topic; the validator is not called
	// afterwards.
	Close() error
}

// ReadRequest reads the request of an inbound exchange, at most max bytes;
// errors wrap wire.ErrFrameTooLarge or wire.ErrMalformed when the peer sent
// an oversize or broken frame. It may be called at most once.
type ReadRequest func(max int) ([]byte, error)

// RequestHandler answers one inbound request from a peer. It decides first
// whether to serve the peer at all (and may answer without reading), then
// reads the request, and returns the response to send; nil closes the
// exchange without an answer (the requester sees a stream error). The
// transport calls sent, when not nil, exactly once after the response has
// been written or the exchange has failed: a handler that bounds the
// response bytes it holds at once releases them there, since a slow reader
// keeps a written-out response in memory as long as building it did.
type RequestHandler func(from PeerID, read ReadRequest) (response []byte, sent func())

// Published is one gossip message of a joined topic inside a unit of
// traffic.
type Published struct {
	Topic string
	Data  []byte
	// Wire is what the message took of its unit's wire bytes, its envelope
	// (topic name, field framing) included; 0 when the transport cannot
	// tell, and then taken as len(Data).
	Wire int
}

// Observer receives what the transport sees, for fallback sources, sync and
// byte accounting. Every method is called synchronously from transport
// goroutines and must not block.
type Observer interface {
	// PeerConnected reports a new connection to p; a peer with several
	// connections may be reported more than once.
	PeerConnected(p PeerID)
	// PeerDisconnected reports that a peer's last connection closed.
	PeerDisconnected(p PeerID)
	// Duplicate reports a copy of an already seen message of a joined topic
	// delivered by from.
	Duplicate(topic string, from PeerID, data []byte)
	// GossipTraffic reports one unit of gossip sent or received (one
	// GossipSub RPC): its size on the wire, envelopes and control messages
	// included, and the messages of joined topics it carried.
	GossipTraffic(in bool, wireBytes int, msgs []Published)
	// MeshChanged reports the new size of a joined topic's mesh.
	MeshChanged(topic string, size int)
}

// Transport is everything the relay needs of the network.
type Transport interface {
	// Self returns this node's peer id.
	Self() PeerID
	// Join subscribes to a topic with its validator.
	Join(topic string, cfg TopicConfig) (Topic, error)
	// Request sends req to peer `to` and returns its response, at most
	// maxResponse bytes. It never dials: the peer must be connected.
	Request(ctx context.Context, to PeerID, protocol string, req []byte, maxResponse int) ([]byte, error)
	// Serve installs the handler of inbound requests of protocol; nil
	// stops serving it.
	Serve(protocol string, h RequestHandler)
	// Peers returns the connected peers.
	Peers() []PeerID
	// Observe installs the observer; nil removes it.
	Observe(o Observer)
}

// ErrNotConnected is returned (wrapped) by Request when the peer is not
// connected.
var ErrNotConnected = errors.New("transport: peer not connected")

// MessageHandler receives one inbound one-way message of a protocol from
// peer from. When the peer broke the protocol's framing (a message over
// the cap, a broken length prefix), msg is nil and err wraps
// wire.ErrFrameTooLarge or wire.ErrMalformed; the transport has then
// dropped the peer's stream, and the handler decides what the peer pays.
// Called on transport goroutines (one per inbound stream, so one peer's
// messages arrive one at a time); it must be quick and must not block.
type MessageHandler func(from PeerID, msg []byte, err error)

// Messenger is what a transport offers besides Transport for one-way
// messages to a connected peer: small, frequent, per link (the relay's
// tx inventory, Config.TxMode "link"). A Transport that is also a
// Messenger lets the relay run that mode; relay/p2p and relay/memnet are.
//
// Messages are best effort: a full queue, a slow or departed peer or a
// broken stream loses them, and the sender is not told which (anti-entropy
// repairs what they would have carried). On one stream they arrive in the
// order sent; a new stream (after a failure) may overtake an old one.
type Messenger interface {
	// Send queues msg for peer `to` on protocol and returns at once; it
	// never dials. It fails with ErrNotConnected when the peer is not
	// connected and ErrQueueFull when the peer's queue for the protocol
	// holds its cap of messages.
	Send(to PeerID, protocol string, msg []byte) error
	// Receive installs the handler of inbound messages of protocol, each
	// at most max bytes; a nil handler stops receiving it.
	Receive(protocol string, max int, h MessageHandler)
}

// ErrQueueFull is returned (wrapped) by Send when the peer's queue of
// outgoing messages is full: it reads slower than we send.
var ErrQueueFull = errors.New("transport: send queue full")
