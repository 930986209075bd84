package chain

import (
	"crypto/ed25519"

	lru "github.com/hashicorp/golang-lru/v2"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// The chain's signature rule is ed25519 as ZIP-215 defines validity: the
// cofactored verification equation, S canonical, and A and R any encodings
// that decode. Under that rule a batch of signatures verifies exactly when
// every one of them verifies alone, so a node may check a block or a
// fetched batch of txs in one batch and another node the same signatures
// one at a time, and both reach the same verdict: no signature splits the
// network by the path it was checked on. (crypto/ed25519 verifies with the
// cofactorless equation, which batch verification cannot reproduce; for
// signatures made by honest signers the two rules agree.) CometBFT checks
// its ed25519 signatures under the same rule, with the same library.
var sigOptions = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// sign makes key's ed25519 signature of msg. Ed25519 signing is
// deterministic (RFC 8032), so this is byte for byte what
// crypto/ed25519.Sign makes; curve25519-voi makes it in about half the
// time (measured here: 14.3 µs against 26.9 µs), which is most of what a
// load generator sharing the machine with its nodes spends per tx.
func sign(key ed25519.PrivateKey, msg []byte) []byte {
	return voi.Sign(voi.PrivateKey(key), msg)
}

// BatchSigMin is the fewest signatures checked as a batch: below it the
// batch equation's fixed cost outweighs what it saves (measured here: a
// batch of 2 costs about as much as 2 single checks, 16 about 0.7x).
const BatchSigMin = 4

// ExpandedKeyCacheSize bounds the senders whose public keys are kept
// decompressed and expanded for signature checks (about 1.4 KiB each,
// measured, so under 6 MiB). Decompressing and expanding a key costs about as much as the
// rest of its share of a batch check (measured here: 64 signatures took
// 30 µs each with fresh keys, 20 µs with expanded ones), and a busy
// network's txs come from far fewer senders than this. Senders are
// anyone's choice, so a flood of new ones only pushes keys out, costing
// the batch its old price.
const ExpandedKeyCacheSize = 4096

// expandedKeys maps an Address to its *voi.ExpandedPublicKey. It is a pure
// function of the address, so one cache serves every node of a process.
var expandedKeys = func() *lru.Cache[Address, *voi.ExpandedPublicKey] {
	c, err := lru.New[Address, *voi.ExpandedPublicKey](ExpandedKeyCacheSize)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}()

// expandedKey returns pub expanded, from the cache or computed and kept;
// nil when pub is no point encoding at all (its signatures never verify).
func expandedKey(pub Address) *voi.ExpandedPublicKey {
	if k, ok := expandedKeys.Get(pub); ok {
		return k
	}
	k, err := voi.NewExpandedPublicKey(voi.PublicKey(pub[:]))
	if err != nil {
		return nil
	}
	expandedKeys.Add(pub, k)
	return k
}

// verifySig reports whether sig is pub's signature over msg under the
// chain's rule, with pub's expanded key when the cache has it (a lone
// check does not pay to expand one).
func verifySig(pub Address, msg []byte, sig *Signature) bool {
	if k, ok := expandedKeys.Get(pub); ok {
		return voi.VerifyExpandedWithOptions(k, msg, sig[:], sigOptions)
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub[:]), msg, sig[:], sigOptions)
}

// VerifyTxSigs checks the signatures of txs under chainID and returns, for
// each, whether it verifies: the same verdicts as Tx.VerifySig one by one,
// at about half the cost per signature when many are checked together. A
// batch holding a bad signature is checked again one by one to find it,
// so one bad signature makes its batch cost about one and a half times
// checking each alone; its sender pays for that with the penalty for an
// invalid tx.
func VerifyTxSigs(chainID string, txs []*Tx) []bool {
	ok := make([]bool, len(txs))
	if len(txs) < BatchSigMin {
		for i, tx := range txs {
			ok[i] = tx.VerifySig(chainID)
		}
		return ok
	}
	v := voi.NewBatchVerifier()
	for _, tx := range txs {
		if k := expandedKey(tx.From); k != nil {
			v.AddExpandedWithOptions(k, tx.SigningBytes(chainID), tx.Sig[:], sigOptions)
		} else {
			v.AddWithOptions(voi.PublicKey(tx.From[:]), tx.SigningBytes(chainID), tx.Sig[:], sigOptions)
		}
	}
	// nil: the batch's random coefficients come from crypto/rand, so a
	// sender cannot craft signatures that cancel out in the sum.
	_, valid := v.Verify(nil)
	copy(ok, valid)
	return ok
}
