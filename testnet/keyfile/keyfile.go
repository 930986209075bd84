// Package keyfile reads and writes rumor's ed25519 key files: the account
// keys `rumor tx send` signs with and the authority keys `rumor node
// --producer-key` produces blocks with.
//
// A key file is small JSON, written with mode 0600:
//
//	{"type": "ed25519", "address": "<64 hex>", "private_key": "<64 hex seed>"}
//
// The address is redundant (it is derived from the seed) and is checked on
// load, so a hand-edited or truncated file fails loudly instead of signing
// with the wrong key. Functions are safe for concurrent use.
package keyfile

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rumor-relay/rumor/chain"
)

// KeyType is the only key type rumor uses.
const KeyType = "ed25519"

// maxFileSize bounds what Load reads: a key file is about 200 bytes; 64 KiB
// tolerates whitespace and extra fields yet stops a wrong path (a disk
// image) from being read whole.
const maxFileSize = 64 << 10

// ErrBadKeyFile is wrapped by every decoding error of Parse and Load.
var ErrBadKeyFile = errors.New("bad key file")

type fileJSON struct {
	Type       string        `json:"type"`
	Address    chain.Address `json:"address"`
	PrivateKey string        `json:"private_key"`
}

// Address returns the chain address (the public key) of key.
func Address(key ed25519.PrivateKey) chain.Address { return chain.AddressOf(key) }

// Generate returns a fresh random key.
func Generate() (ed25519.PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return k, err
}

// Marshal encodes key as a key file.
func Marshal(key ed25519.PrivateKey) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key has %d bytes, want %d", ErrBadKeyFile, len(key), ed25519.PrivateKeySize)
	}
	b, err := json.MarshalIndent(fileJSON{
		Type:       KeyType,
		Address:    Address(key),
		PrivateKey: hex.EncodeToString(key.Seed()),
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Parse decodes a key file and checks that its address matches its key.
func Parse(data []byte) (ed25519.PrivateKey, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadKeyFile, len(data), maxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrBadKeyFile)
	}
	if f.Type != KeyType {
		return nil, fmt.Errorf("%w: type %q, want %q", ErrBadKeyFile, f.Type, KeyType)
	}
	seed, err := hex.DecodeString(f.PrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: private_key must be %d hex characters", ErrBadKeyFile, 2*ed25519.SeedSize)
	}
	key := ed25519.NewKeyFromSeed(seed)
	if Address(key) != f.Address {
		return nil, fmt.Errorf("%w: address %s does not match the private key (%s)", ErrBadKeyFile, f.Address, Address(key))
	}
	return key, nil
}

// Load reads and parses the key file at path.
func Load(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Save writes key to path with mode 0600. It refuses to replace an
// existing file unless overwrite is set, because losing a key loses funds
// or a producer identity.
func Save(path string, key ed25519.PrivateKey, overwrite bool) error {
	b, err := Marshal(key)
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
