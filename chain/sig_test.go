package chain

import (
	"crypto/ed25519"
	"testing"
)

// sigCases returns txs whose signatures are, in turn: valid; one bit off;
// signed for another chain; an S at or above the group order (the
// malleable form every rule must refuse); and the identity point as both
// public key and R with S = 0, which the cofactored rule accepts for any
// message (an address nobody holds a key for, whose funds anyone can
// move). Each comes with its verdict under the chain's rule.
func sigCases() (txs []*Tx, want []bool) {
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
	return txs, want
}

// TestVerifyTxSigsMatchesSingle checks what lets nodes check signatures in
// batches while others check them alone: every verdict of a batch,
// whatever else the batch holds, is the verdict of that signature alone.
func TestVerifyTxSigsMatchesSingle(t *testing.T) {
	expandedKeys.Purge()
	cases, want := sigCases()
	for i, tx := range cases {
		if got := tx.VerifySig(testChainID); got != want[i] {
			t.Fatalf("case %d alone: %v, want %v", i, got, want[i])
		}
	}
	// Every case inside a batch of valid signatures (large enough to be
	// checked as a batch), at the front, middle and end.
	var valid []*Tx
	for n := range uint64(2 * batchSigMin) {
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
