package chain

import (
	"testing"
	"time"
)

// benchTx returns a signed transaction whose encoding is exactly size bytes.
func benchTx(from, to int, nonce uint64, size int) *Tx {
	payload := make([]byte, size-txFixedSize-1) // one-byte length while < 128
	if len(payload) >= 128 {
		payload = payload[:len(payload)-1]
	}
	tx := signedTx(from, to, 1, 1, nonce, payload)
	if tx.Size() != size {
		panic("benchTx: wrong size")
	}
	return tx
}

// benchBlock returns a valid block after genesis filled with 250-byte txs
// up to the default 1 MiB limit.
func benchBlock(b *testing.B) (*Genesis, *Block, *Header) {
	g := testGenesis(b)
	gen := g.Block().Header
	var txs []*Tx
	size := HeaderSize + 3
	for n := uint64(0); size+252 <= g.MaxBlockBytes; n++ {
		txs = append(txs, benchTx(int(n%4), int(n+1)%4, n/4, 250))
		size += 252
	}
	blk := child(g, &gen, txs...)
	return g, blk, &gen
}

func BenchmarkDecodeTx(b *testing.B) {
	enc := benchTx(0, 1, 0, 250).Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTx(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeTx(b *testing.B) {
	tx := benchTx(0, 1, 0, 250)
	buf := make([]byte, 0, 512)
	b.SetBytes(250)
	b.ReportAllocs()
	for b.Loop() {
		buf = tx.AppendEncode(buf[:0])
	}
}

func BenchmarkDecodeBlock(b *testing.B) {
	_, blk, _ := benchBlock(b)
	enc := blk.Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	b.ReportMetric(float64(len(blk.Txs)), "txs/block")
	for b.Loop() {
		if _, err := DecodeBlock(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckTx(b *testing.B) {
	g := testGenesis(b)
	tx := benchTx(0, 1, 0, 250)
	b.ReportAllocs()
	for b.Loop() {
		if err := g.CheckTx(tx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTxID(b *testing.B) {
	tx := benchTx(0, 1, 0, 250)
	b.ReportAllocs()
	for b.Loop() {
		_ = tx.ID()
	}
}

// BenchmarkCheckBlock measures full validation of a 1 MiB block: with
// every signature checked (cold: fanned out over GOMAXPROCS), and with all
// txs vouched for by the caller (warm: a compact block rebuilt from the
// mempool).
func BenchmarkCheckBlock(b *testing.B) {
	g, blk, parent := benchBlock(b)
	now := time.UnixMilli(blk.Header.Time)
	for _, bc := range []struct {
		name     string
		verified func(Hash) bool
	}{{"cold", nil}, {"warm", func(Hash) bool { return true }}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := g.CheckBlockVerified(blk, parent, now, bc.verified); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkApplyBlockTxs(b *testing.B) {
	g, blk, _ := benchBlock(b)
	state := g.State()
	get := func(a Address) Account { return state[a] }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ApplyBlockTxs(blk, get, g.MinFee); err != nil {
			b.Fatal(err)
		}
	}
}
