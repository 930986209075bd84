package recon

import (
	"crypto/sha256"
	"encoding/binary"
	"math"

	"github.com/dchest/siphash"

	"github.com/rumor-relay/rumor/relay/wire"
)

// ID is an item of the reconciled sets: a transaction id. It is the relay's
// own id type, so pool ids pass through without conversion.
type ID = wire.ID

// Key is the per-session key of the keyed hash that gives every id its
// checksum and its index sequence. Both peers must use the same key; see
// SessionKey for deriving it from both peers' nonces.
type Key [16]byte

// SessionKey derives a session key from a nonce chosen by each peer:
// the first 16 bytes of SHA-256("rumor/recon/1" || initiator || responder),
// nonces big-endian. Neither peer alone, and no third party, knows the key
// before both nonces are exchanged, so nobody can grind transaction ids that
// collide in a session's checksums or index sequences ahead of time (the same
// reason BIP152 keys its short ids with the header and a nonce).
func SessionKey(initiator, responder uint64) Key {
	var buf [13 + 16]byte
	copy(buf[:], "rumor/recon/1")
	binary.BigEndian.PutUint64(buf[13:], initiator)
	binary.BigEndian.PutUint64(buf[21:], responder)
	sum := sha256.Sum256(buf[:])
	var k Key
	copy(k[:], sum[:16])
	return k
}

// hasher is a Key unpacked into SipHash's two key words.
type hasher struct{ k0, k1 uint64 }

func newHasher(k Key) hasher {
	return hasher{k0: binary.LittleEndian.Uint64(k[0:8]), k1: binary.LittleEndian.Uint64(k[8:16])}
}

// hash returns an id's keyed checksum and the seed of its index sequence:
// the two words of SipHash-2-4-128. Two independent 64-bit words mean two
// ids share a sequence (and so can never be told apart when both are in the
// difference) only if both words collide: 2^64 work even for someone who
// knows the key, instead of a 2^32 birthday search on one word.
func (h hasher) hash(id *ID) (check, seed uint64) {
	return siphash.Hash128(h.k0, h.k1, id[:])
}

// Symbol is one coded symbol as the encoder produces it and the wire
// carries it: the XOR of the ids mapped to its index, the XOR of their keyed
// checksums, and how many ids were mapped (never negative on the sending
// side; a difference of two symbols, which can be, lives only inside the
// Decoder).
type Symbol struct {
	Sum   ID
	Check uint64
	Count uint32
}

// cell is a symbol of the difference (remote minus local) inside the
// decoder: the count is signed, +1 for each id only the remote holds and -1
// for each only we hold.
type cell struct {
	sum   ID
	check uint64
	count int64
}

func (c *cell) empty() bool { return c.count == 0 && c.check == 0 && c.sum == (ID{}) }

// toggle adds (sign +1) or removes (sign -1) one id with its checksum.
func (c *cell) toggle(id *ID, check uint64, sign int64) {
	xorID(&c.sum, id)
	c.check ^= check
	c.count += sign
}

func xorID(dst, src *ID) {
	// Four word XORs instead of 32 byte XORs: this is the codec's inner loop.
	for i := 0; i < len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(dst[i:])^binary.LittleEndian.Uint64(src[i:]))
	}
}

// mapping walks one id's index sequence: the coded symbols the id is XORed
// into. Every id maps to index 0, so the first symbol sums the whole set
// (and, in a difference, is empty exactly when the difference is decoded).
type mapping struct {
	rng uint64 // splitmix64 state, seeded by the id's keyed seed
	idx uint64 // the current index
}

func newMapping(seed uint64) mapping { return mapping{rng: seed} }

// next moves to the id's next index. Indexes at or past MaxSymbols are
// never produced or accepted, so the walk stops there (parked): the
// sequence below the bound does not depend on where the bound is.
func (m *mapping) next() {
	if m.idx >= MaxSymbols {
		return
	}
	m.idx = nextIndex(m.idx, splitmix64(&m.rng))
}

// splitmix64 is Steele, Lea and Flood's SplitMix64 generator: one add and
// two multiply-xorshift rounds per output, every output bit depending on
// every state bit. A small, fast, well-mixed PRNG is all the mapping needs;
// the unpredictability comes from the keyed seed.
func splitmix64(s *uint64) uint64 {
	*s += 0x9e3779b97f4a7c15
	z := *s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// nextIndex returns the index after j in an id's sequence, given r, a
// uniform 64-bit output of the id's PRNG.
//
// The paper (Yang, Gilad, Alizadeh, SIGCOMM 2024, section 4) maps each item
// to coded symbol i with probability rho(i) = 1/(1+alpha*i), alpha = 1/2:
// dense at the start, so a small difference decodes from the first few
// symbols, and thinning so that symbol i of a long stream still holds the
// ~1.35 items per symbol that peeling needs, whatever the difference size,
// which is what makes the code rateless. Rather than flip a coin for every
// index, it samples the gap to the next mapped index by inversion: the
// chance of skipping j+1..j+g is
//
//	prod_{i=j+1}^{j+g} (1 - rho(i)) = prod i/(i+2) = (j+1)(j+2)/((j+g+1)(j+g+2)) ~ ((j+1.5)/(j+g+1.5))^2,
//
// and setting it to a uniform u in (0,1) gives g = (j+1.5)(1/sqrt(u) - 1).
// With u = r/2^64 that is the paper's j' = j + ceil((j+1.5)(2^32/sqrt(r) - 1)).
// We take u from r's top 53 bits plus half a step, so u is never 0 (the
// paper's r = 0 would divide by zero) and never 1.
//
// Both peers must compute the same sequence, on any CPU: math.Sqrt and
// IEEE division are correctly rounded, and the explicit float64 conversion
// keeps the compiler from fusing the multiply into an FMA (the Go spec
// allows that on some architectures), so every platform rounds alike.
// TestMappingGolden pins the sequence.
func nextIndex(j, r uint64) uint64 {
	u := (float64(r>>11) + 0.5) * (1.0 / (1 << 53))
	g := float64((float64(j) + 1.5) * (1/math.Sqrt(u) - 1))
	if g >= MaxSymbols { // also catches j+g overflowing: nothing past the bound matters
		return MaxSymbols
	}
	step := uint64(math.Ceil(g))
	if step == 0 { // u rounded to within an ulp of 1
		step = 1
	}
	if j+step > MaxSymbols {
		return MaxSymbols
	}
	return j + step
}
