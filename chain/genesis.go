package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/rumor-relay/rumor/chain/durable"
)

// Genesis policy defaults, used by FillDefaults for limits a genesis file
// leaves out (zero).
const (
	// DefaultMaxBlockBytes is 1 MiB, Bitcoin's legacy block size limit: a
	// size the relay literature measures against (BIP152 compact blocks,
	// propagation studies) and that fits one GossipSub message (1 MiB max)
	// in compact form with room to spare.
	DefaultMaxBlockBytes = 1 << 20
	// DefaultMaxBlockTxs lets the byte limit bind first: a default block
	// can hold as many minimum-size transactions as fit in its bytes.
	DefaultMaxBlockTxs = DefaultMaxBlockBytes / minTxEncoding
	// DefaultMaxPayloadBytes is the wire cap: tests and load generators may
	// make transactions of any size up to it.
	DefaultMaxPayloadBytes = MaxPayloadSize
	// DefaultBlockInterval is the proof-of-authority slot length when a
	// genesis leaves it out: short enough for quick testnets, long enough
	// that a 1 MB block crosses a 5-hop, 100 ms-per-hop mesh within a slot.
	DefaultBlockInterval = 2 * time.Second
)

// Genesis sanity bounds, checked by Validate.
const (
	// MaxChainIDLen bounds the chain id, which appears in protocol names
	// ("/rumor/<chainid>/req/2.0.0"; gossip topics carry a hash of it)
	// and in every signature's signed bytes.
	MaxChainIDLen = 64
	// MaxBlockInterval bounds the slot length; a longer one is surely a
	// unit mistake (seconds written as milliseconds the other way round).
	MaxBlockInterval = 24 * time.Hour
	// MaxGenesisFileSize bounds what LoadGenesis reads. A genesis is a local,
	// trusted file, but a wrong path (a disk image, /dev/zero) must fail
	// cleanly; 256 MiB holds about two million funded accounts.
	MaxGenesisFileSize = 256 << 20
)

// MaxFutureBlockTime is how far ahead of the local clock a block timestamp
// may be. go-ethereum uses the same 15 s (allowedFutureBlockTime); Bitcoin's
// 2 h suits 10-minute blocks, far too loose for second-scale slots.
const MaxFutureBlockTime = 15 * time.Second

// GenesisAccount is an account funded at genesis.
type GenesisAccount struct {
	Address Address `json:"address"`
	Balance uint64  `json:"balance"`
}

// Genesis is the chain's configuration and initial state, read from a JSON
// file. Every node of a network must use the same genesis: its Block id is
// the network's identity. A *Genesis must not be modified after Validate;
// its methods are then safe for concurrent use.
type Genesis struct {
	// ChainID names the network; it separates signatures and topics of
	// different networks. 1..MaxChainIDLen characters from [A-Za-z0-9._-].
	ChainID string `json:"chain_id"`
	// Time is the genesis timestamp, Unix milliseconds.
	Time int64 `json:"timestamp_ms"`
	// Authorities are the block producers' public keys; the producer of
	// height h is Authorities[h % len]. At least one, no duplicates.
	Authorities []Address `json:"authorities"`
	// BlockIntervalMs is the slot length in milliseconds (> 0).
	BlockIntervalMs int64 `json:"block_interval_ms"`
	// MaxBlockBytes is the largest encoded block, at most MaxBlockSize
	// (zero in a file means DefaultMaxBlockBytes).
	MaxBlockBytes int `json:"max_block_bytes"`
	// MaxBlockTxs is the most transactions per block, at most MaxBlockTxs
	// (zero in a file means DefaultMaxBlockTxs).
	MaxBlockTxs int `json:"max_block_txs"`
	// MaxPayloadBytes is the largest tx payload, at most MaxPayloadSize
	// (zero in a file means DefaultMaxPayloadBytes; see FillDefaults).
	MaxPayloadBytes int `json:"max_payload_bytes"`
	// MinFee is the least fee a block may contain a tx with (0 = free).
	MinFee uint64 `json:"min_fee"`
	// Accounts are funded at genesis, each address at most once; the sum
	// of balances (the fixed total supply) must fit in a uint64.
	Accounts []GenesisAccount `json:"accounts"`
}

// FillDefaults sets zero limits to their defaults (DefaultMaxBlockBytes,
// DefaultMaxBlockTxs, DefaultMaxPayloadBytes, DefaultBlockInterval).
// LoadGenesis calls it, so a genesis file may leave them out. A zero
// MaxPayloadBytes therefore cannot be expressed in a file; a chain that
// wants no payloads sets 1 byte, which is as good.
func (g *Genesis) FillDefaults() {
	if g.MaxBlockBytes == 0 {
		g.MaxBlockBytes = DefaultMaxBlockBytes
	}
	if g.MaxBlockTxs == 0 {
		g.MaxBlockTxs = DefaultMaxBlockTxs
	}
	if g.MaxPayloadBytes == 0 {
		g.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if g.BlockIntervalMs == 0 {
		g.BlockIntervalMs = DefaultBlockInterval.Milliseconds()
	}
}

// ErrInvalidGenesis is wrapped by every error of Genesis.Validate.
var ErrInvalidGenesis = errors.New("invalid genesis")

func badGenesis(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidGenesis, fmt.Sprintf(format, args...))
}

// maxTxEncodingFor is the largest in-block encoding of a tx whose payload is
// at most payload bytes: length prefix plus the tx.
func maxTxEncodingFor(payload int) int {
	s := txFixedSize + uvarintLen(uint64(payload)) + payload
	return uvarintLen(uint64(s)) + s
}

// Validate checks the genesis: a well-formed chain id, at least one
// authority and no duplicate, a positive interval, limits within the wire
// caps (and a block big enough for one largest tx, so that every valid tx
// can be included), no duplicate account and a total supply that fits a
// uint64. Errors wrap ErrInvalidGenesis.
func (g *Genesis) Validate() error {
	if g == nil {
		return badGenesis("nil")
	}
	if err := validChainID(g.ChainID); err != nil {
		return err
	}
	if g.Time < 0 {
		return badGenesis("timestamp_ms %d is negative", g.Time)
	}
	if len(g.Authorities) == 0 {
		return badGenesis("no authorities")
	}
	seen := make(map[Address]struct{}, len(g.Authorities))
	for i, a := range g.Authorities {
		if _, dup := seen[a]; dup {
			return badGenesis("authority %d (%s) listed twice", i, a)
		}
		seen[a] = struct{}{}
	}
	if g.BlockIntervalMs <= 0 || g.BlockIntervalMs > MaxBlockInterval.Milliseconds() {
		return badGenesis("block_interval_ms %d not in 1..%d", g.BlockIntervalMs, MaxBlockInterval.Milliseconds())
	}
	if g.MaxPayloadBytes < 0 || g.MaxPayloadBytes > MaxPayloadSize {
		return badGenesis("max_payload_bytes %d not in 0..%d", g.MaxPayloadBytes, MaxPayloadSize)
	}
	minBlock := HeaderSize + uvarintLen(1) + maxTxEncodingFor(g.MaxPayloadBytes)
	if g.MaxBlockBytes < minBlock || g.MaxBlockBytes > MaxBlockSize {
		return badGenesis("max_block_bytes %d not in %d..%d (a block must hold one largest tx)",
			g.MaxBlockBytes, minBlock, MaxBlockSize)
	}
	if g.MaxBlockTxs < 1 || g.MaxBlockTxs > MaxBlockTxs {
		return badGenesis("max_block_txs %d not in 1..%d", g.MaxBlockTxs, MaxBlockTxs)
	}
	clear(seen)
	var supply uint64
	for i, a := range g.Accounts {
		if _, dup := seen[a.Address]; dup {
			return badGenesis("account %d (%s) listed twice", i, a.Address)
		}
		seen[a.Address] = struct{}{}
		if a.Balance > math.MaxUint64-supply {
			return badGenesis("total supply overflows uint64 at account %d", i)
		}
		supply += a.Balance
	}
	return nil
}

func validChainID(id string) error {
	if len(id) == 0 || len(id) > MaxChainIDLen {
		return badGenesis("chain_id must have 1..%d characters, has %d", MaxChainIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return badGenesis("chain_id %q: character %q not in [A-Za-z0-9._-]", id, c)
		}
	}
	return nil
}

// LoadGenesis reads a JSON genesis file, fills default limits and validates
// it. Unknown fields are errors, so a misspelt limit is not silently
// replaced by its default.
func LoadGenesis(path string) (*Genesis, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxGenesisFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("genesis: read %s: %w", path, err)
	}
	if len(data) > MaxGenesisFileSize {
		return nil, badGenesis("%s is larger than %d bytes", path, MaxGenesisFileSize)
	}
	return ParseGenesis(data)
}

// ParseGenesis decodes a JSON genesis (see LoadGenesis).
func ParseGenesis(data []byte) (*Genesis, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	g := new(Genesis)
	if err := dec.Decode(g); err != nil {
		return nil, badGenesis("json: %v", err)
	}
	if dec.More() {
		return nil, badGenesis("json: trailing data after the genesis object")
	}
	g.FillDefaults()
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// MarshalJSONIndent returns the genesis as indented JSON, the file format.
func (g *Genesis) MarshalJSONIndent() ([]byte, error) {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Save validates the genesis and writes it as indented JSON to path,
// atomically (a temporary file renamed over path), so a reader never sees
// a half-written genesis.
func (g *Genesis) Save(path string) error {
	if err := g.Validate(); err != nil {
		return err
	}
	b, err := g.MarshalJSONIndent()
	if err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	if err := durable.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	return nil
}

// genesisDomain tags the genesis commitment hash.
const genesisDomain = "rumor/genesis/v1"

// Commitment returns a SHA-256 over a canonical binary encoding of every
// genesis field (chain id, time, authorities, interval, limits, min fee,
// accounts in order). Two geneses that differ in any field have different
// commitments; the genesis block carries it as its TxRoot.
func (g *Genesis) Commitment() Hash {
	h := sha256.New()
	var b []byte
	b = appendString(b, genesisDomain)
	b = appendString(b, g.ChainID)
	b = binary.BigEndian.AppendUint64(b, uint64(g.Time))
	b = binary.AppendUvarint(b, uint64(len(g.Authorities)))
	for _, a := range g.Authorities {
		b = append(b, a[:]...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(g.BlockIntervalMs))
	b = binary.BigEndian.AppendUint64(b, uint64(g.MaxBlockBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(g.MaxBlockTxs))
	b = binary.BigEndian.AppendUint64(b, uint64(g.MaxPayloadBytes))
	b = binary.BigEndian.AppendUint64(b, g.MinFee)
	b = binary.AppendUvarint(b, uint64(len(g.Accounts)))
	h.Write(b)
	var acct [AddressSize + 8]byte
	for _, a := range g.Accounts {
		copy(acct[:], a.Address[:])
		binary.BigEndian.PutUint64(acct[AddressSize:], a.Balance)
		h.Write(acct[:])
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// Block returns the genesis block: height 0, zero parent, Time = g.Time, no
// transactions, zero proposer, unsigned. Its TxRoot is not the (zero) root
// of its empty tx list but g.Commitment(), so the genesis block id commits
// to the whole genesis: two networks whose genesis differs in any field
// (accounts, limits, chain id) never share a genesis id, and a store can
// refuse a data dir made with another genesis by comparing ids. The genesis
// block is never passed to CheckBlock (it has no parent).
func (g *Genesis) Block() *Block {
	return &Block{Header: Header{
		Height: 0,
		Time:   g.Time,
		TxRoot: g.Commitment(),
	}}
}

// ID returns the genesis block id, the network's identity. It hashes the
// whole genesis on every call (the accounts included), so callers keep it.
func (g *Genesis) ID() Hash { return g.Block().ID() }

// ProposerAt returns the authority whose turn it is at height: round robin,
// Authorities[height % len(Authorities)]. The genesis must be valid (at
// least one authority).
func (g *Genesis) ProposerAt(height uint64) Address {
	return g.Authorities[height%uint64(len(g.Authorities))]
}

// IsAuthority reports whether a is one of the genesis authorities.
func (g *Genesis) IsAuthority(a Address) bool {
	for _, x := range g.Authorities {
		if x == a {
			return true
		}
	}
	return false
}

// BlockInterval returns the slot length.
func (g *Genesis) BlockInterval() time.Duration {
	return time.Duration(g.BlockIntervalMs) * time.Millisecond
}

// State returns the genesis account state: every funded account with its
// balance and nonce 0. The caller owns the map.
func (g *Genesis) State() map[Address]Account {
	m := make(map[Address]Account, len(g.Accounts))
	for _, a := range g.Accounts {
		m[a.Address] = Account{Balance: a.Balance}
	}
	return m
}

// TotalSupply returns the sum of the genesis balances. No transaction
// creates or destroys units (fees go to proposers), so it is the supply at
// every height. Validate guarantees it does not overflow.
func (g *Genesis) TotalSupply() uint64 {
	var s uint64
	for _, a := range g.Accounts {
		s += a.Balance
	}
	return s
}
