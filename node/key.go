package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/rumor-relay/rumor/chain/durable"
)

// keyFileMode is the only mode the node writes its key with: owner read and
// write, as ssh and geth do for private keys.
const keyFileMode = 0o600

// maxKeyFileSize bounds what loadOrCreateKey reads: a protobuf Ed25519 key is
// 68 bytes; anything much larger is not a key file.
const maxKeyFileSize = 4 << 10

// loadOrCreateKey returns the identity stored in path, creating a fresh
// Ed25519 key there (mode 0600) if the file does not exist. A key file that
// others can read is tightened to 0600 with a warning rather than refused,
// so a key copied with the wrong umask still starts the node.
func loadOrCreateKey(path string) (crypto.PrivKey, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createKey(path)
	case err != nil:
		return nil, fmt.Errorf("node key: %w", err)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("node key %s: not a regular file", path)
	case st.Size() > maxKeyFileSize:
		return nil, fmt.Errorf("node key %s: %d bytes is not a key file", path, st.Size())
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warnw("node key readable by others; setting mode 0600", "path", path, "mode", st.Mode().Perm())
		if err := os.Chmod(path, keyFileMode); err != nil {
			return nil, fmt.Errorf("node key: %w", err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("node key %s: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("node key %s: want an Ed25519 key, got %v", path, k.Type())
	}
	return k, nil
}

// createKey generates an Ed25519 key and writes it atomically: a temporary
// file in the same directory, fsynced, then renamed, so a crash never leaves
// a truncated key that would change the node's identity.
func createKey(path string) (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := durable.WriteFile(path, b, keyFileMode); err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	log.Infow("created node key", "path", path)
	return k, nil
}
