package recon

// Bounds of a reconciliation session. Each bounds what one peer's symbols
// can make us store or compute; see /work/shared/notes/anchors.md for the
// figures the numbers come from.
const (
	// SymbolSize is the size of one coded symbol on the wire: the 32-byte
	// XOR of its ids, the 8-byte XOR of their keyed checksums (64 bits: a
	// symbol that is not pure passes the purity test with probability
	// 2^-64) and a 4-byte count (a pool of up to 2^32 ids; rumor's default
	// pool holds 50,000).
	SymbolSize = 32 + 8 + 4

	// TargetDifference is the largest difference the bounds are sized to
	// decode: 5000 ids, Bitcoin Core's per-peer announcement cap
	// (MAX_PEER_TX_ANNOUNCEMENTS) and the syncer's MaxPoolIDsPerResponse.
	// Reconciling costs ~1.37*44 = 60 bytes per differing id and listing a
	// pool 32 bytes per pooled id (5000 ids in 160 KB), so reconciliation
	// pays while the difference is under about half the pool; a bound sized
	// for a difference as large as the syncer's whole answer covers every
	// case where it can pay.
	TargetDifference = 5000

	// MaxSymbols caps the coded symbols of one session, on both sides: the
	// encoder produces no symbol at or past this index and the decoder
	// accepts none. The paper measures ~1.35 symbols per differing id for
	// large differences, so TargetDifference needs ~6750; 8192 leaves ~20%
	// for the tail (measured here: 1.37 symbols per id on average and at
	// most 6998 symbols for 5000 ids over 150 trials; TestOverheadLarge
	// keeps checking). A full session is 8192*44 = 360 KB.
	MaxSymbols = 8192

	// MaxDecodedIDs caps the ids one decoder peels, so decoding work is
	// linear in the symbols received. Honest peeling empties the pure symbol
	// it peels for good (every copy of the id is removed), so a session of
	// at most MaxSymbols symbols decodes at most MaxSymbols ids; more means
	// the symbols are not the difference of any two sets.
	MaxDecodedIDs = MaxSymbols

	// MaxSymbolsPerBatch caps the symbols of one wire batch: 2048 symbols
	// are 90 KB, inside the relay's 128 KiB soft response size
	// (wire.TxResponseSoftBytes, go-ethereum's softResponseLimit) and its
	// 256 KiB request frame, so a batch fits a frame either way. Four full
	// batches cover a whole session.
	MaxSymbolsPerBatch = 2048
)
