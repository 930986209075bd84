package chain

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// Test fixture: a testnet of 4 accounts and 3 authorities.
const (
	testChainID = "rumor-test"
	testSeed    = "seed"
)

var testNow = time.UnixMilli(1_700_000_000_000)

func testGenesis(t testing.TB) *Genesis {
	t.Helper()
	g := NewTestnetGenesis(testChainID, testSeed, 4, 3, time.Second, testNow)
	if err := g.Validate(); err != nil {
		t.Fatalf("testnet genesis invalid: %v", err)
	}
	return g
}

func acctKey(i int) ed25519.PrivateKey { return TestnetAccountKey(testSeed, i) }
func authKey(i int) ed25519.PrivateKey { return TestnetAuthorityKey(testSeed, i) }
func acct(i int) Address               { return AddressOf(acctKey(i)) }

// signedTx returns a tx from account i to account to, signed for the test
// chain.
func signedTx(from, to int, amount, fee, nonce uint64, payload []byte) *Tx {
	tx := &Tx{From: acct(from), To: acct(to), Amount: amount, Fee: fee, Nonce: nonce, Payload: payload}
	tx.Sign(testChainID, acctKey(from))
	return tx
}

// child builds the block after parent with the authority whose turn it is.
func child(g *Genesis, parent *Header, txs ...*Tx) *Block {
	h := parent.Height + 1
	return g.BuildBlock(parent, time.UnixMilli(parent.Time).Add(g.BlockInterval()), authKey(int(h%uint64(len(g.Authorities)))), txs)
}

func wantReason(t testing.TB, err error, want Reason) {
	t.Helper()
	if want == ReasonNone {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	got, ok := ReasonOf(err)
	if !ok || got != want {
		t.Fatalf("got error %v (reason %v), want reason %v", err, got, want)
	}
}
