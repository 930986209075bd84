package chain

import (
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

// batchSigMin is the fewest signatures checked as a batch: below it the
// batch equation's fixed cost outweighs what it saves (measured here: a
// batch of 2 costs about as much as 2 single checks, 16 about 0.7x).
const batchSigMin = 4

// verifySig reports whether sig is pub's signature over msg under the
// chain's rule.
func verifySig(pub Address, msg []byte, sig *Signature) bool {
	return voi.VerifyWithOptions(voi.PublicKey(pub[:]), msg, sig[:], sigOptions)
}

// VerifyTxSigs checks the signatures of txs under chainID and returns, for
// each, whether it verifies: the same verdicts as Tx.VerifySig one by one,
// at about half the cost per signature when many are checked together. A
// batch holding a bad signature is checked again one by one to find it,
// so junk costs its sender's batch the single-check price, no more.
func VerifyTxSigs(chainID string, txs []*Tx) []bool {
	ok := make([]bool, len(txs))
	if len(txs) < batchSigMin {
		for i, tx := range txs {
			ok[i] = tx.VerifySig(chainID)
		}
		return ok
	}
	v := voi.NewBatchVerifier()
	for _, tx := range txs {
		v.AddWithOptions(voi.PublicKey(tx.From[:]), tx.SigningBytes(chainID), tx.Sig[:], sigOptions)
	}
	// nil: the batch's random coefficients come from crypto/rand, so a
	// sender cannot craft signatures that cancel out in the sum.
	_, valid := v.Verify(nil)
	copy(ok, valid)
	return ok
}
