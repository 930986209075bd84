package store

import (
	"bytes"
	"slices"
	"testing"

	"github.com/rumor-relay/rumor/chain"
)

// The decoders below read the store's own records, not peer input, but a
// damaged disk must produce an error, never a panic or a huge allocation.

func FuzzDecodeMeta(f *testing.F) {
	m := blockMeta{status: StatusConnected, reason: chain.ReasonBadParent, seq: 7, header: chain.Header{Height: 3, Time: 9}}
	f.Add(m.encode())
	f.Add([]byte{})
	f.Add(make([]byte, metaSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if got := m.encode(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeUndo(f *testing.F) {
	u := undoRecord{{addr: chain.Address{1}, prev: chain.Account{Balance: 5, Nonce: 2}}, {addr: chain.Address{2}}}
	f.Add(u.encode())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUndo(b)
		if err != nil {
			return
		}
		if len(u) != (len(b)-4)/undoEntrySize {
			t.Fatalf("%d entries from %d bytes", len(u), len(b))
		}
		// encode sorts; a sorted input round-trips exactly.
		if slices.IsSortedFunc(u, func(x, y undoEntry) int { return bytes.Compare(x.addr[:], y.addr[:]) }) {
			if !bytes.Equal(u.encode(), b) {
				t.Fatal("re-encoding differs")
			}
		}
	})
}

func FuzzDecodeJournalPart(f *testing.F) {
	ops := []keyedOp{
		{key: []byte("a"), op: op{val: []byte("value")}},
		{key: []byte("b"), op: op{del: true}},
		{key: keyHeight(3), op: op{val: nil}},
	}
	f.Add(encodeJournal(ops)[0])
	f.Add([]byte{0, 0x80})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		ops, err := decodeJournalPart(b)
		if err != nil {
			return
		}
		if len(ops) == 0 {
			if len(b) != 0 {
				t.Fatal("bytes decoded to no ops")
			}
			return
		}
		parts := encodeJournal(ops)
		if len(parts) != 1 || !bytes.Equal(parts[0], b) {
			// Varints may be non-minimal in the input; decoding the
			// re-encoding must still give the same ops.
			again, err := decodeJournalPart(slices.Concat(parts...))
			if err != nil || len(again) != len(ops) {
				t.Fatalf("re-encoding does not decode to the same ops: %v", err)
			}
			for i := range ops {
				if !bytes.Equal(again[i].key, ops[i].key) || !bytes.Equal(again[i].val, ops[i].val) || again[i].del != ops[i].del {
					t.Fatalf("op %d differs", i)
				}
			}
		}
	})
}

func FuzzDecodeTxLocAndAccount(f *testing.F) {
	f.Add(TxLocation{Block: chain.Hash{1}, Height: 5, Index: 7}.encode())
	f.Add(encodeAccount(chain.Account{Balance: 1, Nonce: 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, err := decodeTxLoc(b); err == nil && !bytes.Equal(l.encode(), b) {
			t.Fatal("tx location re-encoding differs")
		}
		if a, err := decodeAccount(b); err == nil && !bytes.Equal(encodeAccount(a), b) {
			t.Fatal("account re-encoding differs")
		}
	})
}

func TestJournalEncodingSplitsParts(t *testing.T) {
	big := make([]byte, journalPartBytes/3)
	var ops []keyedOp
	for i := range 7 {
		ops = append(ops, keyedOp{key: keyHeight(uint64(i)), op: op{val: big}})
	}
	parts := encodeJournal(ops)
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	var got []keyedOp
	for _, p := range parts {
		if len(p) > journalPartBytes {
			t.Fatalf("part of %d bytes", len(p))
		}
		o, err := decodeJournalPart(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, o...)
	}
	if len(got) != len(ops) {
		t.Fatalf("%d ops back, want %d", len(got), len(ops))
	}
}

func TestStatusStrings(t *testing.T) {
	for _, s := range []AddStatus{Rejected, Connected, SideChain, Known, 9} {
		if s.String() == "" {
			t.Fatal("empty AddStatus name")
		}
	}
	for _, s := range []Status{StatusSide, StatusConnected, StatusInvalid, 0} {
		if s.String() == "" {
			t.Fatal("empty Status name")
		}
	}
}
