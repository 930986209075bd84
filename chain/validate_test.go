package chain

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"testing"
	"time"
)

// produced records every reason a test in this file observed, so
// TestEveryReasonProduced can check each one is exercised.
var produced = map[Reason]bool{}

func expect(t *testing.T, err error, want Reason) {
	t.Helper()
	wantReason(t, err, want)
	if want != ReasonNone {
		produced[want] = true
		var re *RuleError
		if !errors.As(err, &re) && want != ReasonMalformed {
			t.Fatalf("%v is not a *RuleError", err)
		}
	}
}

func TestCheckTx(t *testing.T) {
	g := testGenesis(t)
	g.MaxPayloadBytes = 100
	tests := []struct {
		name string
		tx   func() *Tx
		want Reason
	}{
		{"valid", func() *Tx { return signedTx(0, 1, 5, 1, 0, nil) }, ReasonNone},
		{"valid payload at limit", func() *Tx { return signedTx(0, 1, 5, 1, 0, make([]byte, 100)) }, ReasonNone},
		{"self transfer", func() *Tx { return signedTx(0, 0, 5, 1, 0, nil) }, ReasonNone},
		{"nil", func() *Tx { return nil }, ReasonMalformed},
		{"payload over wire cap", func() *Tx { return signedTx(0, 1, 5, 1, 0, make([]byte, MaxPayloadSize+1)) }, ReasonTxTooLarge},
		{"payload over limit", func() *Tx { return signedTx(0, 1, 5, 1, 0, make([]byte, 101)) }, ReasonPayloadTooLarge},
		{"amount+fee overflow", func() *Tx { return signedTx(0, 1, math.MaxUint64, 1, 0, nil) }, ReasonAmountOverflow},
		{"amount max, fee 0", func() *Tx { return signedTx(0, 1, math.MaxUint64, 0, 0, nil) }, ReasonNone},
		{"tampered amount", func() *Tx { tx := signedTx(0, 1, 5, 1, 0, nil); tx.Amount++; return tx }, ReasonBadSignature},
		{"tampered payload", func() *Tx { tx := signedTx(0, 1, 5, 1, 0, []byte{1}); tx.Payload[0] = 2; return tx }, ReasonBadSignature},
		{"wrong key", func() *Tx {
			tx := &Tx{From: acct(0), To: acct(1), Amount: 1, Fee: 1}
			tx.Sign(testChainID, acctKey(1))
			return tx
		}, ReasonBadSignature},
		{"other chain", func() *Tx {
			tx := &Tx{From: acct(0), To: acct(1), Amount: 1, Fee: 1}
			tx.Sign("other-chain", acctKey(0))
			return tx
		}, ReasonBadSignature},
		{"zero signature", func() *Tx { tx := signedTx(0, 1, 5, 1, 0, nil); tx.Sig = Signature{}; return tx }, ReasonBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := g.CheckTx(tc.tx())
			expect(t, err, tc.want)
			if err != nil {
				var re *RuleError
				if errors.As(err, &re) && re.TxIndex != -1 {
					t.Fatalf("TxIndex = %d, want -1", re.TxIndex)
				}
			}
		})
	}
}

func TestParseTx(t *testing.T) {
	g := testGenesis(t)
	tx := signedTx(0, 1, 5, 1, 0, []byte("hi"))
	got, err := g.ParseTx(tx.Encode())
	if err != nil || got.ID() != tx.ID() {
		t.Fatalf("ParseTx: %v", err)
	}
	enc := tx.Encode()
	_, err = g.ParseTx(enc[:len(enc)-1])
	expect(t, err, ReasonMalformed)
	if !errors.Is(err, ErrMalformed) {
		t.Fatal("malformed ParseTx error does not wrap ErrMalformed")
	}
	_, err = g.ParseTx(make([]byte, MaxTxSize+1))
	expect(t, err, ReasonTxTooLarge)
	bad := tx.Encode()
	bad[len(bad)-1] ^= 1
	_, err = g.ParseTx(bad)
	expect(t, err, ReasonBadSignature)
}

func TestCheckTxState(t *testing.T) {
	tx := func(amount, fee, nonce uint64) *Tx {
		return &Tx{Amount: amount, Fee: fee, Nonce: nonce}
	}
	tests := []struct {
		name   string
		tx     *Tx
		acct   Account
		minFee uint64
		want   Reason
	}{
		{"exact balance", tx(9, 1, 3), Account{Balance: 10, Nonce: 3}, 1, ReasonNone},
		{"free when min fee 0", tx(10, 0, 0), Account{Balance: 10}, 0, ReasonNone},
		{"nonce low", tx(1, 1, 2), Account{Balance: 10, Nonce: 3}, 1, ReasonNonceTooLow},
		{"nonce high", tx(1, 1, 4), Account{Balance: 10, Nonce: 3}, 1, ReasonNonceTooHigh},
		{"last nonce", tx(1, 1, math.MaxUint64), Account{Balance: 10, Nonce: math.MaxUint64}, 1, ReasonNonceTooHigh},
		{"fee low", tx(1, 1, 0), Account{Balance: 10}, 2, ReasonFeeTooLow},
		{"balance short by one", tx(9, 2, 0), Account{Balance: 10}, 1, ReasonInsufficientBalance},
		{"unfunded", tx(0, 1, 0), Account{}, 1, ReasonInsufficientBalance},
		{"overflow", tx(math.MaxUint64, 1, 0), Account{Balance: math.MaxUint64}, 1, ReasonAmountOverflow},
		// Order: nonce before fee before balance, so a replay is reported
		// as such even when it is also unaffordable.
		{"nonce low beats balance", tx(100, 0, 0), Account{Balance: 1, Nonce: 1}, 1, ReasonNonceTooLow},
		{"fee beats balance", tx(100, 0, 0), Account{Balance: 1}, 1, ReasonFeeTooLow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, CheckTxState(tc.tx, tc.acct, tc.minFee), tc.want)
		})
	}
}

func TestCheckBlock(t *testing.T) {
	g := testGenesis(t)
	gen := g.Block().Header
	b1 := child(g, &gen, signedTx(0, 1, 5, 1, 0, nil))
	if err := g.CheckBlock(b1, &gen, testNow); err != nil {
		t.Fatalf("block 1: %v", err)
	}
	now := time.UnixMilli(b1.Header.Time)
	// resign recomputes the root and signature after a mutation, so the
	// rule under test is the only one broken.
	resign := func(b *Block, key int) *Block {
		b.Header.TxRoot = MerkleRoot(b.TxIDs())
		b.Header.Sign(g.ChainID, authKey(key))
		return b
	}
	next := func(txs ...*Tx) *Block { return child(g, &b1.Header, txs...) }
	tooMany := func() *Block {
		txs := make([]*Tx, g.MaxBlockTxs+1)
		for i := range txs {
			txs[i] = signedTx(1, 2, 1, 1, uint64(i), nil)
		}
		return next(txs...)
	}
	tests := []struct {
		name   string
		block  func() *Block
		parent *Header
		now    time.Time
		want   Reason
		txIdx  int
	}{
		{"valid empty", func() *Block { return next() }, &b1.Header, now, ReasonNone, -1},
		{"valid txs", func() *Block {
			return next(signedTx(0, 1, 5, 1, 1, nil), signedTx(1, 0, 5, 1, 0, []byte("x")))
		}, &b1.Header, now, ReasonNone, -1},
		{"nil block", func() *Block { return nil }, &b1.Header, now, ReasonMalformed, -1},
		{"nil parent", func() *Block { return next() }, nil, now, ReasonMalformed, -1},
		{"height skip", func() *Block { b := next(); b.Header.Height = 3; return resign(b, 0) }, &b1.Header, now, ReasonBadHeight, -1},
		{"height same", func() *Block { b := next(); b.Header.Height = 1; return resign(b, 1) }, &b1.Header, now, ReasonBadHeight, -1},
		{"height wrap", func() *Block { b := next(); b.Header.Height = 0; return resign(b, 0) },
			&Header{Height: math.MaxUint64}, now, ReasonBadHeight, -1},
		{"wrong parent", func() *Block { b := next(); b.Header.Parent[0] ^= 1; return resign(b, 2) }, &b1.Header, now, ReasonBadParent, -1},
		{"wrong proposer", func() *Block {
			b := next()
			b.Header.Proposer = AddressOf(authKey(1))
			return resign(b, 1)
		}, &b1.Header, now, ReasonWrongProposer, -1},
		{"account as proposer", func() *Block {
			b := next()
			b.Header.Proposer = acct(0)
			b.Header.Sign(g.ChainID, acctKey(0))
			return b
		}, &b1.Header, now, ReasonWrongProposer, -1},
		{"bad signature", func() *Block { b := next(); b.Header.Sig[5] ^= 1; return b }, &b1.Header, now, ReasonBadBlockSignature, -1},
		{"signed by other key", func() *Block { return resign(next(), 0) }, &b1.Header, now, ReasonBadBlockSignature, -1},
		{"signed for other chain", func() *Block { b := next(); b.Header.Sign("other", authKey(2)); return b }, &b1.Header, now, ReasonBadBlockSignature, -1},
		{"time equal parent", func() *Block { b := next(); b.Header.Time = b1.Header.Time; return resign(b, 2) }, &b1.Header, now, ReasonTimeNotAfterParent, -1},
		{"time before parent", func() *Block { b := next(); b.Header.Time = b1.Header.Time - 1000; return resign(b, 2) }, &b1.Header, now, ReasonTimeNotAfterParent, -1},
		{"time at future limit", func() *Block {
			b := next()
			b.Header.Time = now.Add(MaxFutureBlockTime).UnixMilli()
			return resign(b, 2)
		}, &b1.Header, now, ReasonNone, -1},
		{"time past future limit", func() *Block {
			b := next()
			b.Header.Time = now.Add(MaxFutureBlockTime).UnixMilli() + 1
			return resign(b, 2)
		}, &b1.Header, now, ReasonTimeTooFarInFuture, -1},
		{"bad root", func() *Block { b := next(signedTx(0, 1, 5, 1, 1, nil)); b.Header.TxRoot[0] ^= 1; return resign2(g, b) }, &b1.Header, now, ReasonBadTxRoot, -1},
		{"tx dropped", func() *Block {
			b := next(signedTx(0, 1, 5, 1, 1, nil), signedTx(1, 0, 5, 1, 0, nil))
			b.Txs = b.Txs[:1]
			return b
		}, &b1.Header, now, ReasonBadTxRoot, -1},
		{"txs swapped", func() *Block {
			b := next(signedTx(0, 1, 5, 1, 1, nil), signedTx(1, 0, 5, 1, 0, nil))
			b.Txs[0], b.Txs[1] = b.Txs[1], b.Txs[0]
			return b
		}, &b1.Header, now, ReasonBadTxRoot, -1},
		{"duplicate tx", func() *Block {
			tx := signedTx(0, 1, 5, 1, 1, nil)
			return next(signedTx(2, 1, 5, 1, 0, nil), tx, tx)
		}, &b1.Header, now, ReasonDuplicateTx, 2},
		{"too many txs", tooMany, &b1.Header, now, ReasonTooManyTxs, -1},
		{"too large", func() *Block {
			n := g.MaxBlockBytes/(MaxPayloadSize+200) + 1
			txs := make([]*Tx, n)
			for i := range txs {
				txs[i] = signedTx(0, 1, 1, 1, uint64(i), make([]byte, MaxPayloadSize))
			}
			return next(txs...)
		}, &b1.Header, now, ReasonBlockTooLarge, -1},
		{"invalid tx signature", func() *Block {
			bad := signedTx(0, 1, 5, 1, 1, nil)
			bad.Sig[0] ^= 1
			return next(signedTx(1, 0, 5, 1, 0, nil), bad)
		}, &b1.Header, now, ReasonInvalidTx, 1},
		{"invalid tx overflow", func() *Block {
			return next(signedTx(1, 0, math.MaxUint64, 1, 0, nil))
		}, &b1.Header, now, ReasonInvalidTx, 0},
		{"invalid tx payload", func() *Block {
			g2 := *g
			g2.MaxPayloadBytes = 10 // block built for a looser chain
			_ = g2
			return next(signedTx(1, 0, 1, 1, 0, make([]byte, MaxPayloadSize+1)))
		}, &b1.Header, now, ReasonInvalidTx, 0},
		{"nil tx", func() *Block {
			b := next(signedTx(1, 0, 1, 1, 0, nil))
			b.Txs = append(b.Txs, nil)
			return b
		}, &b1.Header, now, ReasonInvalidTx, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := g.CheckBlock(tc.block(), tc.parent, tc.now)
			expect(t, err, tc.want)
			if err != nil {
				var re *RuleError
				errors.As(err, &re)
				if re.TxIndex != tc.txIdx {
					t.Fatalf("TxIndex = %d, want %d (%v)", re.TxIndex, tc.txIdx, err)
				}
			}
		})
	}
}

// resign2 re-signs a header without touching its (deliberately wrong) root.
func resign2(g *Genesis, b *Block) *Block {
	b.Header.Sign(g.ChainID, authKey(int(b.Header.Height%3)))
	return b
}

func TestCheckBlockInvalidTxCarriesTxReason(t *testing.T) {
	g := testGenesis(t)
	gen := g.Block().Header
	bad := signedTx(0, 1, 5, 1, 0, nil)
	bad.Sig[1] ^= 1
	err := g.CheckBlock(child(g, &gen, bad), &gen, testNow)
	if r, _ := ReasonOf(err); r != ReasonInvalidTx {
		t.Fatalf("outer reason %v", r)
	}
	if r, _ := TxReasonOf(err); r != ReasonBadSignature {
		t.Fatalf("inner reason %v", r)
	}
	if !ReasonInvalidTx.Penalize() || ReasonNonceTooLow.Penalize() {
		t.Fatal("Penalize")
	}
}

func TestCheckBlockVerifiedSkipsKnownSignatures(t *testing.T) {
	g := testGenesis(t)
	gen := g.Block().Header
	// A forged signature passes only if the caller vouches for the id.
	forged := signedTx(0, 1, 5, 1, 0, nil)
	forged.Sig[0] ^= 1
	b := child(g, &gen, forged)
	calls := 0
	vouch := func(id Hash) bool { calls++; return id == forged.ID() }
	if err := g.CheckBlockVerified(b, &gen, testNow, vouch); err != nil || calls != 1 {
		t.Fatalf("verified tx rechecked: %v, calls %d", err, calls)
	}
	expect(t, g.CheckBlockVerified(b, &gen, testNow, func(Hash) bool { return false }), ReasonInvalidTx)
	// CheckBody alone.
	if err := g.CheckBody(b, vouch); err != nil {
		t.Fatal(err)
	}
	expect(t, g.CheckBody(nil, nil), ReasonMalformed)
}

// TestParallelSigCheckFindsLowestIndex checks that the fan-out over
// goroutines reports the same tx as a sequential scan would.
func TestParallelSigCheckFindsLowestIndex(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	}
	g := testGenesis(t)
	const n = 4 * sigBatch
	txs := make([]*Tx, n)
	for i := range txs {
		txs[i] = signedTx(i%4, (i+1)%4, 1, 1, uint64(i/4), nil)
	}
	ids := (&Block{Txs: txs}).TxIDs()
	if i := g.firstBadSig(txs, ids, nil); i != -1 {
		t.Fatalf("all valid, got bad index %d", i)
	}
	for _, bad := range [][]int{{n - 1}, {0, n - 1}, {37, 200}, {150, 151, 17}} {
		cp := make([]*Tx, n)
		for i, tx := range txs {
			c := *tx
			cp[i] = &c
		}
		low := n
		for _, i := range bad {
			cp[i].Sig[3] ^= 1
			low = min(low, i)
		}
		if got := g.firstBadSig(cp, ids, nil); got != low {
			t.Fatalf("bad %v: got %d, want %d", bad, got, low)
		}
	}
}

func TestBuildBlock(t *testing.T) {
	g := testGenesis(t)
	gen := g.Block().Header
	txs := []*Tx{signedTx(0, 1, 5, 1, 0, nil), signedTx(1, 2, 5, 1, 0, nil)}
	// The clock lags the parent: the timestamp is still after it.
	b := g.BuildBlock(&gen, time.UnixMilli(gen.Time-5000), authKey(1), txs)
	if b.Header.Time != gen.Time+1 || b.Header.Height != 1 || b.Header.Parent != gen.ID() ||
		b.Header.Proposer != g.Authorities[1] || b.Header.TxRoot != MerkleRoot(b.TxIDs()) || len(b.Txs) != 2 {
		t.Fatalf("built %+v", b.Header)
	}
	if err := g.CheckBlock(b, &gen, testNow); err != nil {
		t.Fatal(err)
	}
	txs[0] = nil // the block keeps its own slice
	if b.Txs[0] == nil {
		t.Fatal("BuildBlock shares the caller's slice")
	}
	b2 := g.BuildBlock(&gen, testNow.Add(time.Minute), authKey(1), nil)
	if b2.Header.Time != testNow.Add(time.Minute).UnixMilli() || b2.Txs != nil || !b2.Header.TxRoot.IsZero() {
		t.Fatalf("empty block %+v", b2.Header)
	}
	// Encoding round trip of a built block.
	dec, err := DecodeBlock(b.Encode())
	if err != nil || !bytes.Equal(dec.Encode(), b.Encode()) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestApplyBlockTxs(t *testing.T) {
	g := testGenesis(t)
	gen := g.Block().Header
	prop := g.ProposerAt(1)
	const B = TestnetBalance
	// The proposer (unfunded) spends a fee it earned earlier in the block;
	// its own fee comes straight back to it.
	propTx := &Tx{From: prop, To: acct(2), Amount: 5, Fee: 1}
	propTx.Sign(g.ChainID, authKey(1))
	tests := []struct {
		name  string
		txs   []*Tx
		state map[Address]Account // nil = genesis state
		want  map[Address]Account
		err   Reason // inner tx reason when the block fails
		idx   int
	}{
		{"empty block touches nothing", nil, nil, map[Address]Account{}, ReasonNone, 0},
		{"one transfer", []*Tx{signedTx(0, 1, 100, 3, 0, nil)}, nil, map[Address]Account{
			acct(0): {B - 103, 1}, acct(1): {B + 100, 0}, prop: {3, 0},
		}, ReasonNone, 0},
		{"consecutive nonces and a chain of spends", []*Tx{
			signedTx(0, 1, 10, 1, 0, nil), signedTx(0, 1, 10, 1, 1, nil), signedTx(1, 2, B+15, 1, 0, nil),
		}, nil, map[Address]Account{
			acct(0): {B - 22, 2}, acct(1): {B + 20 - B - 16, 1}, acct(2): {B + B + 15, 0}, prop: {3, 0},
		}, ReasonNone, 0},
		{"self transfer pays only the fee", []*Tx{signedTx(3, 3, 50, 2, 0, nil)}, nil, map[Address]Account{
			acct(3): {B - 2, 1}, prop: {2, 0},
		}, ReasonNone, 0},
		{"proposer spends fee from earlier tx", []*Tx{signedTx(0, 1, 0, 7, 0, nil), propTx},
			nil, map[Address]Account{acct(0): {B - 7, 1}, acct(1): {B, 0}, acct(2): {B + 5, 0}, prop: {2, 1}}, ReasonNone, 0},
		{"unfunded recipient created", []*Tx{signedTx(0, 7, 4, 1, 0, nil)}, nil, map[Address]Account{
			acct(0): {B - 5, 1}, acct(7): {4, 0}, prop: {1, 0},
		}, ReasonNone, 0},
		{"unfunded sender", []*Tx{signedTx(6, 1, 0, 1, 0, nil)}, nil, nil, ReasonInsufficientBalance, 0},
		{"nonce gap", []*Tx{signedTx(0, 1, 1, 1, 0, nil), signedTx(0, 1, 1, 1, 2, nil)}, nil, nil, ReasonNonceTooHigh, 1},
		{"replay in block", []*Tx{signedTx(0, 1, 1, 1, 0, nil), signedTx(0, 2, 1, 1, 0, nil)}, nil, nil, ReasonNonceTooLow, 1},
		{"fee below minimum", []*Tx{signedTx(0, 1, 1, 0, 0, nil)}, nil, nil, ReasonFeeTooLow, 0},
		{"second tx overdraws", []*Tx{signedTx(0, 1, B-10, 1, 0, nil), signedTx(0, 1, 9, 1, 1, nil)}, nil, nil, ReasonInsufficientBalance, 1},
		{"spend balance exactly to zero", []*Tx{signedTx(0, 1, B-11, 1, 0, nil), signedTx(0, 1, 9, 1, 1, nil)}, nil,
			map[Address]Account{acct(0): {0, 2}, acct(1): {B + B - 2, 0}, prop: {2, 0}}, ReasonNone, 0},
		{"recipient overflow", []*Tx{signedTx(0, 1, 5, 1, 0, nil)},
			map[Address]Account{acct(0): {10, 0}, acct(1): {math.MaxUint64 - 4, 0}}, nil, ReasonAmountOverflow, 0},
		{"proposer overflow", []*Tx{signedTx(0, 1, 5, 1, 0, nil)},
			map[Address]Account{acct(0): {10, 0}, prop: {math.MaxUint64, 0}}, nil, ReasonAmountOverflow, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := tc.state
			if state == nil {
				state = g.State()
			}
			calls := map[Address]int{}
			get := func(a Address) Account { calls[a]++; return state[a] }
			b := child(g, &gen, tc.txs...)
			got, err := ApplyBlockTxs(b, get, g.MinFee)
			for a, n := range calls {
				if n > 1 {
					t.Fatalf("get(%s) called %d times", a.String()[:8], n)
				}
			}
			if tc.err != ReasonNone {
				expect(t, err, ReasonInvalidTx)
				if r, _ := TxReasonOf(err); r != tc.err {
					t.Fatalf("tx reason %v, want %v", r, tc.err)
				}
				produced[tc.err] = true
				var re *RuleError
				errors.As(err, &re)
				if re.TxIndex != tc.idx || got != nil {
					t.Fatalf("TxIndex %d want %d; changes %v", re.TxIndex, tc.idx, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("changes %v, want %v", got, tc.want)
			}
			for a, w := range tc.want {
				if got[a] != w {
					t.Fatalf("account %s: %+v, want %+v", a.String()[:8], got[a], w)
				}
			}
			// Supply is conserved over the touched accounts.
			var before, after uint64
			for a := range got {
				before += state[a].Balance
				after += got[a].Balance
			}
			if before != after {
				t.Fatalf("supply changed: %d -> %d", before, after)
			}
		})
	}
}

func TestReasonStrings(t *testing.T) {
	seen := map[string]Reason{}
	for r := Reason(0); r < numReasons; r++ {
		s := r.String()
		if s == "" || s[0] == 'r' && len(s) > 6 && s[:7] == "reason(" {
			t.Fatalf("reason %d has no name", r)
		}
		if o, dup := seen[s]; dup {
			t.Fatalf("reasons %d and %d share name %q", o, r, s)
		}
		seen[s] = r
	}
	if got := Reason(999).String(); got != "reason(999)" {
		t.Fatalf("unknown reason string %q", got)
	}
	e := &RuleError{Reason: ReasonInvalidTx, TxIndex: 3, Err: &RuleError{Reason: ReasonBadSignature, TxIndex: -1, Detail: "x"}}
	if got := e.Error(); got != "invalid-tx (tx 3): bad-signature: x" {
		t.Fatalf("Error() = %q", got)
	}
	if _, ok := ReasonOf(errors.New("io")); ok {
		t.Fatal("ReasonOf of a plain error")
	}
	if r, ok := ReasonOf(malformed("x")); !ok || r != ReasonMalformed {
		t.Fatal("ReasonOf of a decoding error")
	}
	if _, ok := ReasonOf(nil); ok {
		t.Fatal("ReasonOf(nil)")
	}
}

// storeReasons are produced by chain/store (fork choice, orphans, genesis
// mismatch), not by this package.
var storeReasons = map[Reason]bool{ReasonUnknownParent: true, ReasonReorgTooDeep: true, ReasonBadGenesis: true}

// TestMain checks, after an unfiltered run, that each reason this package
// owns was produced by some test (order independent, so -shuffle is fine).
func TestMain(m *testing.M) {
	code := m.Run()
	if f := flag.Lookup("test.run"); code == 0 && f != nil && f.Value.String() == "" {
		for r := ReasonNone + 1; r < numReasons; r++ {
			if !storeReasons[r] && !produced[r] {
				fmt.Fprintf(os.Stderr, "FAIL: no test produced reason %v\n", r)
				code = 1
			}
		}
	}
	os.Exit(code)
}
