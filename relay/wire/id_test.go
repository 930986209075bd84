package wire

import "testing"

func TestShortIDKeyAndShortID(t *testing.T) {
	hdr := []byte("a block header")
	k := NewShortIDKey(hdr, 1)
	if k != NewShortIDKey(hdr, 1) {
		t.Fatal("key not deterministic")
	}
	other := append([]byte{}, hdr...)
	other[0] ^= 1
	if k == NewShortIDKey(hdr, 2) || k == NewShortIDKey(other, 1) {
		t.Fatal("key ignores nonce or header")
	}
	seen := map[uint64]bool{}
	for i := range 1000 {
		id := hashN(i)
		s := k.ShortID(id)
		if s>>(8*ShortIDSize) != 0 {
			t.Fatalf("short id %x wider than %d bytes", s, ShortIDSize)
		}
		if s != k.ShortID(id) || seen[s] {
			t.Fatal("short id not deterministic or collides on a tiny set")
		}
		seen[s] = true
	}
	if NewShortIDKey(other, 1).ShortID(hashN(0)) == k.ShortID(hashN(0)) {
		t.Fatal("short id does not depend on the key")
	}
}

func TestIDText(t *testing.T) {
	id := hashN(7)
	if len(id.String()) != 2*IDSize || id.Short() != id.String()[:8] {
		t.Fatalf("String %q Short %q", id.String(), id.Short())
	}
	if !(ID{}).IsZero() || id.IsZero() {
		t.Fatal("IsZero")
	}
}
