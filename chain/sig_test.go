package chain

import (
	"crypto/ed25519"
	"crypto/sha512"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// signWithTorsionR signs tx as key's holder could, but with R = rB + T for
// T the point of order 2, (0, -1): S = r + H(R, A, M)a still solves the
// cofactored equation, since 8T is the neutral element, but not the
// cofactorless one (SB - H(R, A, M)A is rB, not R). It is the one kind of
// signature on which ZIP-215 and crypto/ed25519 disagree that a key's
// holder can make for a chosen message.
func signWithTorsionR(t *testing.T, tx *Tx, key ed25519.PrivateKey) {
	t.Helper()
	ext := sha512.Sum512(key.Seed())
	ext[0] &= 248
	ext[31] &= 127
	ext[31] |= 64
	var a, r, k, S scalar.Scalar
	if _, err := a.SetBits(ext[:32]); err != nil {
		t.Fatal(err)
	}
	r.SetUint64(987654321)
	var enc [32]byte // y = p - 1, x = 0
	enc[0] = 0xec
	for i := 1; i < 31; i++ {
		enc[i] = 0xff
	}
	enc[31] = 0x7f
	var tc curve.CompressedEdwardsY
	if _, err := tc.SetBytes(enc[:]); err != nil {
		t.Fatal(err)
	}
	var T, R curve.EdwardsPoint
	if _, err := T.SetCompressedY(&tc); err != nil {
		t.Fatal(err)
	}
	R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, &r)
	R.Add(&R, &T)
	var rc curve.CompressedEdwardsY
	rc.SetEdwardsPoint(&R)
	h := sha512.New()
	h.Write(rc[:])
	h.Write(tx.From[:])
	h.Write(tx.SigningBytes(testChainID))
	if _, err := k.SetBytesModOrderWide(h.Sum(nil)); err != nil {
		t.Fatal(err)
	}
	S.Mul(&k, &a)
	S.Add(&S, &r)
	copy(tx.Sig[:32], rc[:])
	if err := S.ToBytes(tx.Sig[32:]); err != nil {
		t.Fatal(err)
	}
}

// sigCases returns txs whose signatures are, in turn: valid; one bit off;
// signed for another chain; an S at or above the group order (the
// malleable form every rule must refuse); and the identity point as both
// public key and R with S = 0, which both rules accept for any message (an
// address nobody holds a key for, whose funds anyone can move); and an R
// with a small-order component, which only the cofactored rule accepts.
// Each comes with its verdict under the chain's rule.
func sigCases(t *testing.T) (txs []*Tx, want []bool) {
	add := func(tx *Tx, ok bool) {
		txs = append(txs, tx)
		want = append(want, ok)
	}
	add(signedTx(0, 1, 5, 1, 0, nil), true)
	flipped := signedTx(0, 1, 5, 1, 1, nil)
	flipped.Sig[10] ^= 0x40
	add(flipped, false)
	other := &Tx{From: acct(1), To: acct(2), Amount: 5, Fee: 1}
	other.Sign("another-chain", acctKey(1))
	add(other, false)
	highS := signedTx(2, 1, 5, 1, 0, nil)
	highS.Sig[63] |= 0xe0 // S >= 2^253 > group order
	add(highS, false)
	var identity Address
	identity[0] = 1 // y = 1: the neutral element
	anyone := &Tx{From: identity, To: acct(0), Amount: 1, Fee: 1}
	anyone.Sig[0] = 1 // R = neutral element, S = 0
	add(anyone, true)
	torsion := &Tx{From: acct(3), To: acct(0), Amount: 2, Fee: 1, Nonce: 7}
	signWithTorsionR(t, torsion, acctKey(3))
	add(torsion, true)
	return txs, want
}

// TestVerifyTxSigsMatchesSingle checks what lets nodes check signatures in
// batches while others check them alone: every verdict of a batch,
// whatever else the batch holds, is the verdict of that signature alone.
func TestVerifyTxSigsMatchesSingle(t *testing.T) {
	expandedKeys.Purge()
	cases, want := sigCases(t)
	// crypto/ed25519 agrees on every case but the last, which tells the
	// rules apart.
	for i, tx := range cases {
		std := ed25519.Verify(tx.From[:], tx.SigningBytes(testChainID), tx.Sig[:])
		if wantStd := want[i] && i != len(cases)-1; std != wantStd {
			t.Fatalf("case %d: crypto/ed25519 says %v, want %v", i, std, wantStd)
		}
	}
	for i, tx := range cases {
		if got := tx.VerifySig(testChainID); got != want[i] {
			t.Fatalf("case %d alone: %v, want %v", i, got, want[i])
		}
	}
	// Every case inside a batch of valid signatures (large enough to be
	// checked as a batch), at the front, middle and end.
	var valid []*Tx
	for n := range uint64(2 * BatchSigMin) {
		valid = append(valid, signedTx(int(n%4), int(n+1)%4, 1, 1, n, nil))
	}
	for i, tx := range cases {
		for _, at := range []int{0, len(valid) / 2, len(valid)} {
			batch := append(append(append([]*Tx(nil), valid[:at]...), tx), valid[at:]...)
			got := VerifyTxSigs(testChainID, batch)
			for k, ok := range got {
				if wantK := k != at || want[i]; ok != wantK {
					t.Fatalf("case %d at %d: verdict %d is %v, want %v", i, at, k, ok, wantK)
				}
			}
		}
	}
	// Alone again, now that the batches left the keys expanded in the
	// cache.
	for i, tx := range cases {
		if _, cached := expandedKeys.Get(tx.From); !cached {
			t.Fatalf("case %d: key not cached after a batch", i)
		}
		if got := tx.VerifySig(testChainID); got != want[i] {
			t.Fatalf("case %d alone, expanded key: %v, want %v", i, got, want[i])
		}
	}
	// All the cases together, and short batches checked one by one.
	for n := range len(cases) + 1 {
		got := VerifyTxSigs(testChainID, cases[:n])
		for k := range n {
			if got[k] != want[k] {
				t.Fatalf("first %d cases: verdict %d is %v, want %v", n, k, got[k], want[k])
			}
		}
	}
}

// TestStdlibSignaturesVerify checks that keys and signatures made by
// crypto/ed25519 (the node's signer, wallets) verify under the chain's
// rule.
func TestStdlibSignaturesVerify(t *testing.T) {
	for i := range 32 {
		pub, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		tx := &Tx{To: acct(0), Amount: uint64(i), Fee: 1, Nonce: uint64(i), Payload: []byte{byte(i)}}
		copy(tx.From[:], pub)
		tx.Sign(testChainID, key)
		if !tx.VerifySig(testChainID) {
			t.Fatalf("key %d: stdlib signature does not verify", i)
		}
	}
}

// TestFirstBadSigSkipsVerified checks that ids the caller vouches for are
// not checked and that a bad signature among the rest is reported at its
// index in the block.
func TestFirstBadSigSkipsVerified(t *testing.T) {
	g := testGenesis(t)
	txs := make([]*Tx, 3*sigBatch)
	for i := range txs {
		txs[i] = signedTx(i%4, (i+1)%4, 1, 1, uint64(i/4), nil)
	}
	ids := (&Block{Txs: txs}).TxIDs()
	even := make(map[Hash]bool)
	for i := 0; i < len(ids); i += 2 {
		even[ids[i]] = true
	}
	verified := func(id Hash) bool { return even[id] }
	txs[10].Sig[0] ^= 1 // vouched for: not checked
	if got := g.firstBadSig(txs, ids, verified); got != -1 {
		t.Fatalf("a vouched-for signature was checked: bad index %d", got)
	}
	txs[141].Sig[0] ^= 1
	if got := g.firstBadSig(txs, ids, verified); got != 141 {
		t.Fatalf("bad index %d, want 141", got)
	}
	if got := g.firstBadSig(txs, ids, nil); got != 10 {
		t.Fatalf("with nothing vouched for: bad index %d, want 10", got)
	}
}

// TestSignMatchesStdlib: Tx.Sign and Header.Sign make exactly the
// signatures crypto/ed25519 would, so keys and signatures made by any
// standard Ed25519 signer stay interchangeable with the chain's.
func TestSignMatchesStdlib(t *testing.T) {
	for i := range 64 {
		key := TestnetAccountKey("sign", i)
		msg := make([]byte, i*7)
		for j := range msg {
			msg[j] = byte(i + j)
		}
		if got, want := sign(key, msg), ed25519.Sign(key, msg); string(got) != string(want) {
			t.Fatalf("key %d, %d-byte message: signature %x, crypto/ed25519 makes %x", i, len(msg), got, want)
		}
	}
	key := TestnetAccountKey("sign", 0)
	tx := &Tx{From: AddressOf(key), To: AddressOf(key), Amount: 1, Fee: 1, Nonce: 3}
	tx.Sign("net", key)
	if want := ed25519.Sign(key, tx.SigningBytes("net")); string(tx.Sig[:]) != string(want) || !tx.VerifySig("net") {
		t.Fatalf("tx signature %x, want %x", tx.Sig, want)
	}
}

// BenchmarkSign is the cost of a tx signature, what a load generator pays
// per tx: `go test -run x -bench Sign ./chain`.
func BenchmarkSign(b *testing.B) {
	key := TestnetAccountKey("sign", 0)
	tx := &Tx{From: AddressOf(key), To: AddressOf(key), Amount: 1, Fee: 1}
	for b.Loop() {
		tx.Nonce++
		tx.Sign("net", key)
	}
}
