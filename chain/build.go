package chain

import (
	"crypto/ed25519"
	"time"
)

// BuildBlock assembles and signs the block after parent: height parent+1,
// parent id, timestamp max(now, parent time + 1 ms) so it is always after
// the parent even when the local clock lags, TxRoot over txs (kept in the
// given order), proposer = key's address, signed with key under the chain
// id. It does not check that it is key's turn or that txs are valid and
// fit the limits: the producer selects them (mempool Template) and the
// result must pass CheckBlock like any other block. The txs slice is
// copied; the txs themselves are shared, not copied (they are immutable).
func (g *Genesis) BuildBlock(parent *Header, now time.Time, key ed25519.PrivateKey, txs []*Tx) *Block {
	b := &Block{Header: Header{
		Height:   parent.Height + 1,
		Parent:   parent.ID(),
		Time:     max(now.UnixMilli(), parent.Time+1),
		Proposer: AddressOf(key),
	}}
	if len(txs) > 0 {
		b.Txs = append([]*Tx(nil), txs...)
	}
	b.Header.TxRoot = MerkleRoot(b.TxIDs())
	b.Header.Sign(g.ChainID, key)
	return b
}

// SlotTime returns when the block at height is due: the genesis time plus
// height block intervals. Producers use it to pace production; validity
// does not depend on it (only on the parent's time and the local clock).
func (g *Genesis) SlotTime(height uint64) time.Time {
	return time.UnixMilli(g.Time).Add(time.Duration(height) * g.BlockInterval())
}
