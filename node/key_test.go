package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNodeKeyCreatedWithMode0600AndReused(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, testGenesis(time.Second))
	cfg.DataDir = dir

	n1, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id1 := n1.ID()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}

	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	if n2.ID() != id1 || id1 == "" {
		t.Fatalf("restart changed identity: %s then %s", id1, n2.ID())
	}
}

func TestNodeKeyTightensLooseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	k1, err := loadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	k2, err := loadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("reloaded key differs")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v not tightened to 0600", st.Mode().Perm())
	}
}

func TestNodeKeyRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(path); err == nil {
		t.Fatal("garbage key file accepted")
	}
	big := filepath.Join(t.TempDir(), KeyFile)
	if err := os.WriteFile(big, make([]byte, maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(big); err == nil {
		t.Fatal("oversize key file accepted")
	}
}
