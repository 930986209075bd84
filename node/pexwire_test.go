package node

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func randomPeer(t testing.TB) peer.ID {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPexResponseRoundTrip(t *testing.T) {
	in := []peer.AddrInfo{
		{ID: randomPeer(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4141"), ma.StringCast("/ip4/10.0.0.1/udp/4141/quic-v1")}},
		{ID: randomPeer(t), Addrs: []ma.Multiaddr{ma.StringCast("/dns4/seed.example.com/tcp/4141")}},
	}
	out, err := decodePexResponse(encodePexResponse(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d peers, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].ID != in[i].ID || len(out[i].Addrs) != len(in[i].Addrs) {
			t.Fatalf("peer %d: got %v, want %v", i, out[i], in[i])
		}
		for j := range in[i].Addrs {
			if !out[i].Addrs[j].Equal(in[i].Addrs[j]) {
				t.Fatalf("peer %d addr %d: got %v, want %v", i, j, out[i].Addrs[j], in[i].Addrs[j])
			}
		}
	}
}

func TestPexEncodeTruncatesToCaps(t *testing.T) {
	var in []peer.AddrInfo
	for range pexMaxPeers + 3 {
		ai := peer.AddrInfo{ID: randomPeer(t)}
		for range pexMaxAddrsPerPeer + 2 {
			ai.Addrs = append(ai.Addrs, ma.StringCast("/ip4/10.0.0.1/tcp/4141"))
		}
		in = append(in, ai)
	}
	b := encodePexResponse(in)
	if len(b) > pexMaxMsgSize {
		t.Fatalf("encoded %d bytes over cap %d", len(b), pexMaxMsgSize)
	}
	out, err := decodePexResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != pexMaxPeers || len(out[0].Addrs) != pexMaxAddrsPerPeer {
		t.Fatalf("got %d peers of %d addrs, want %d of %d", len(out), len(out[0].Addrs), pexMaxPeers, pexMaxAddrsPerPeer)
	}
}

func TestPexDecodeRejects(t *testing.T) {
	good := encodePexResponse([]peer.AddrInfo{{ID: randomPeer(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/1")}}})
	cases := map[string][]byte{
		"empty":           {},
		"count over cap":  binary.AppendUvarint(nil, pexMaxPeers+1),
		"truncated":       good[:len(good)-1],
		"trailing":        append(append([]byte(nil), good...), 0),
		"bad peer id":     append(binary.AppendUvarint([]byte{1}, 3), 'a', 'b', 'c', 0),
		"id len over cap": binary.AppendUvarint([]byte{1}, pexMaxIDLen+1),
		"oversize":        make([]byte, pexMaxMsgSize+1),
	}
	for name, b := range cases {
		if _, err := decodePexResponse(b); !errors.Is(err, errPexMalformed) {
			t.Errorf("%s: got %v, want errPexMalformed", name, err)
		}
	}
	// Too many addresses for one peer: claims pexMaxAddrsPerPeer+1.
	id := []byte(randomPeer(t))
	b := binary.AppendUvarint([]byte{1}, uint64(len(id)))
	b = append(b, id...)
	b = binary.AppendUvarint(b, pexMaxAddrsPerPeer+1)
	if _, err := decodePexResponse(b); !errors.Is(err, errPexMalformed) {
		t.Errorf("addr count over cap: got %v", err)
	}
}

func TestPexRequest(t *testing.T) {
	for want, in := range map[int][]byte{1: encodePexRequest(1), pexMaxPeers: encodePexRequest(1000)} {
		got, err := decodePexRequest(in)
		if err != nil || got != want {
			t.Errorf("decode %x = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range [][]byte{{}, {0}, {0x80}, {1, 2}} {
		if _, err := decodePexRequest(bad); err == nil {
			t.Errorf("decodePexRequest(%x) accepted", bad)
		}
	}
}

func FuzzPexResponse(f *testing.F) {
	f.Add(encodePexResponse(nil))
	f.Add(encodePexResponse([]peer.AddrInfo{{ID: randomPeer(f), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/1")}}}))
	f.Add([]byte{1, 0x26})
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decodePexResponse(b)
		if err != nil {
			return
		}
		if len(out) > pexMaxPeers {
			t.Fatalf("decoded %d peers over cap", len(out))
		}
		// What decodes re-encodes to the same bytes (the format is
		// canonical up to varint minimality, which Go's encoder ensures).
		again := encodePexResponse(out)
		if back, err := decodePexResponse(again); err != nil || len(back) != len(out) {
			t.Fatalf("re-encoded response does not decode: %v", err)
		}
	})
}

func FuzzPexRequest(f *testing.F) {
	f.Add(encodePexRequest(8))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodePexRequest(b)
		if err == nil && (n < 1 || n > pexMaxPeers) {
			t.Fatalf("decoded want=%d outside 1..%d", n, pexMaxPeers)
		}
	})
}
