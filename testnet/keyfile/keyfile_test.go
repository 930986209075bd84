package keyfile

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "k.json")
	if err := Save(p, k, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(k) {
		t.Fatal("loaded key differs")
	}
	if err := Save(p, k, false); err == nil {
		t.Fatal("Save replaced an existing key without overwrite")
	}
	if err := Save(p, k, true); err != nil {
		t.Fatalf("Save with overwrite: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	k := ed25519.NewKeyFromSeed(make([]byte, 32))
	good, _ := Marshal(k)
	other := ed25519.NewKeyFromSeed([]byte(strings.Repeat("x", 32)))
	otherFile, _ := Marshal(other)
	// Splice the address of one key onto the seed of another.
	mismatched := strings.Replace(string(good), Address(k).String(), Address(other).String(), 1)
	cases := map[string]string{
		"empty":      "",
		"not json":   "hello",
		"wrong type": strings.Replace(string(good), `"ed25519"`, `"secp256k1"`, 1),
		"short seed": `{"type":"ed25519","address":"` + Address(k).String() + `","private_key":"00"}`,
		"mismatch":   mismatched,
		"unknown":    `{"type":"ed25519","extra":1}`,
		"trailing":   string(otherFile) + "{}",
	}
	for name, in := range cases {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: err = %v, want ErrBadKeyFile", name, err)
		}
	}
	if _, err := Parse(good); err != nil {
		t.Fatalf("good file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Marshal(ed25519.NewKeyFromSeed(make([]byte, 32)))
	f.Add(good)
	f.Add([]byte(`{"type":"ed25519"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must re-encode to a file that parses to the same key.
		b, err := Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := Parse(b)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
