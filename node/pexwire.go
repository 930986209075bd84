package node

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Peer-exchange wire format. A request is one uvarint: how many peers the
// asker wants (1..pexMaxPeers). A response is
//
//	uvarint(n) n × { uvarint(len) peerID  uvarint(k) k × { uvarint(len) multiaddr } }
//
// with every count and length checked against its cap before anything sized
// by it is allocated, and the whole response read through a pexMaxMsgSize
// limit.
const (
	// pexMaxPeers caps the peers in one response: twice DefaultTargetPeers,
	// so one answer can fill an empty node even when half its dials fail.
	// (Bitcoin's ADDR carries up to 1000, but it feeds a long-lived address
	// manager; we dial straight from the answer.)
	pexMaxPeers = 16
	// pexMaxAddrsPerPeer caps a peer's addresses: TCP and QUIC on IPv4 and
	// IPv6 on a couple of interfaces.
	pexMaxAddrsPerPeer = 8
	// pexMaxAddrLen caps one binary multiaddr; DNS names are at most 255
	// bytes and a transport suffix adds a few.
	pexMaxAddrLen = 300
	// pexMaxIDLen caps a peer id: an identity-hashed Ed25519 key is 38 bytes,
	// a SHA-256 multihash 34; 128 admits other inlined key types.
	pexMaxIDLen = 128
	// pexMaxMsgSize caps a response: the caps above multiplied out (~40 KiB)
	// rounded up.
	pexMaxMsgSize = 64 << 10
)

var errPexMalformed = errors.New("pex: malformed message")

func pexMalformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errPexMalformed, fmt.Sprintf(format, args...))
}

// encodePexRequest encodes a request for want peers.
func encodePexRequest(want int) []byte { return binary.AppendUvarint(nil, uint64(want)) }

// decodePexRequest decodes a request and clamps it to pexMaxPeers.
func decodePexRequest(b []byte) (int, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) {
		return 0, pexMalformed("request: bad varint")
	}
	if v == 0 {
		return 0, pexMalformed("request: wants no peers")
	}
	return int(min(v, pexMaxPeers)), nil
}

// encodePexResponse encodes peers, truncating to the caps the decoder
// enforces (so an honest node never sends what a peer would refuse).
func encodePexResponse(peers []peer.AddrInfo) []byte {
	var b []byte
	if len(peers) > pexMaxPeers {
		peers = peers[:pexMaxPeers]
	}
	b = binary.AppendUvarint(b, uint64(len(peers)))
	for _, p := range peers {
		id := []byte(p.ID)
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		addrs := make([][]byte, 0, min(len(p.Addrs), pexMaxAddrsPerPeer))
		for _, a := range p.Addrs {
			if len(addrs) == pexMaxAddrsPerPeer {
				break
			}
			if ab := a.Bytes(); len(ab) <= pexMaxAddrLen {
				addrs = append(addrs, ab)
			}
		}
		b = binary.AppendUvarint(b, uint64(len(addrs)))
		for _, ab := range addrs {
			b = binary.AppendUvarint(b, uint64(len(ab)))
			b = append(b, ab...)
		}
	}
	return b
}

// pexReader consumes a message; the first error sticks.
type pexReader struct {
	b   []byte
	err error
}

func (r *pexReader) uvarint(max uint64, what string) int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = pexMalformed("%s: bad varint", what)
		return 0
	}
	if v > max {
		r.err = pexMalformed("%s: %d exceeds cap %d", what, v, max)
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *pexReader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = pexMalformed("%s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// decodePexResponse decodes a response. Any malformed entry fails the whole
// message: a peer that sends one is not worth trusting for the rest.
func decodePexResponse(b []byte) ([]peer.AddrInfo, error) {
	if len(b) > pexMaxMsgSize {
		return nil, pexMalformed("response: %d bytes exceeds cap %d", len(b), pexMaxMsgSize)
	}
	r := pexReader{b: b}
	n := r.uvarint(pexMaxPeers, "peer count")
	if r.err != nil {
		return nil, r.err
	}
	out := make([]peer.AddrInfo, 0, n)
	for i := 0; i < n; i++ {
		idb := r.bytes(r.uvarint(pexMaxIDLen, "peer id length"), "peer id")
		k := r.uvarint(pexMaxAddrsPerPeer, "address count")
		if r.err != nil {
			return nil, r.err
		}
		id, err := peer.IDFromBytes(idb)
		if err != nil {
			return nil, pexMalformed("peer id: %v", err)
		}
		ai := peer.AddrInfo{ID: id, Addrs: make([]ma.Multiaddr, 0, k)}
		for j := 0; j < k; j++ {
			ab := r.bytes(r.uvarint(pexMaxAddrLen, "address length"), "address")
			if r.err != nil {
				return nil, r.err
			}
			a, err := ma.NewMultiaddrBytes(ab)
			if err != nil {
				return nil, pexMalformed("address: %v", err)
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		out = append(out, ai)
	}
	if len(r.b) != 0 {
		return nil, pexMalformed("response: %d trailing bytes", len(r.b))
	}
	return out, nil
}
