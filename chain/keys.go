package chain

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Key-derivation domains for testnet keys, so an account key and an
// authority key with the same seed and index differ.
const (
	testnetAccountDomain   = "rumor/testnet/account/v1"
	testnetAuthorityDomain = "rumor/testnet/authority/v1"
)

// Testnet genesis parameters (NewTestnetGenesis).
const (
	// TestnetBalance funds each testnet account: 2^40 units pays a fee of
	// TestnetMinFee for 10^12 transactions, so no load test runs dry, and
	// 2^40 × a million accounts still fits a uint64 total supply (2^60).
	TestnetBalance = 1 << 40
	// TestnetMinFee is the testnet's minimum fee: nonzero, so fee-rate
	// ordering and the fee-too-low rule are exercised.
	TestnetMinFee = 1
	// MaxTestnetAccounts bounds NewTestnetGenesis's account count so the
	// total supply of TestnetBalance-funded accounts fits a uint64 with a
	// wide margin (2^20 × 2^40 = 2^60).
	MaxTestnetAccounts = 1 << 20
)

// AddressOf returns the address (public key) of an ed25519 private key.
func AddressOf(key ed25519.PrivateKey) Address {
	var a Address
	copy(a[:], key.Public().(ed25519.PublicKey))
	return a
}

func testnetKey(domain, seed string, i int) ed25519.PrivateKey {
	b := appendString(nil, domain)
	b = appendString(b, seed)
	b = binary.BigEndian.AppendUint64(b, uint64(i))
	s := sha256.Sum256(b)
	return ed25519.NewKeyFromSeed(s[:])
}

// TestnetAccountKey returns the i-th funded account key of a testnet made
// from seed: ed25519 from SHA-256(domain, seed, i) with length-prefixed
// fields. Anyone who knows the seed can sign for these accounts: testnets
// only.
func TestnetAccountKey(seed string, i int) ed25519.PrivateKey {
	return testnetKey(testnetAccountDomain, seed, i)
}

// TestnetAuthorityKey returns the i-th authority (block producer) key of a
// testnet made from seed, derived like TestnetAccountKey in its own domain.
func TestnetAuthorityKey(seed string, i int) ed25519.PrivateKey {
	return testnetKey(testnetAuthorityDomain, seed, i)
}

// NewTestnetGenesis returns a valid genesis for a test network: authorities
// TestnetAuthorityKey(seed, 0..authorities-1), accounts
// TestnetAccountKey(seed, 0..accounts-1) each funded with TestnetBalance,
// MinFee TestnetMinFee, default limits, time now (ms). The result depends
// only on its arguments. authorities < 1 is raised to 1, accounts is
// clamped to 0..MaxTestnetAccounts, interval <= 0 means
// DefaultBlockInterval.
func NewTestnetGenesis(chainID, seed string, accounts, authorities int, interval time.Duration, now time.Time) *Genesis {
	authorities = max(authorities, 1)
	accounts = min(max(accounts, 0), MaxTestnetAccounts)
	if interval <= 0 {
		interval = DefaultBlockInterval
	}
	g := &Genesis{
		ChainID:         chainID,
		Time:            now.UnixMilli(),
		Authorities:     make([]Address, authorities),
		BlockIntervalMs: max(interval.Milliseconds(), 1),
		MinFee:          TestnetMinFee,
		Accounts:        make([]GenesisAccount, accounts),
	}
	for i := range g.Authorities {
		g.Authorities[i] = AddressOf(TestnetAuthorityKey(seed, i))
	}
	for i := range g.Accounts {
		g.Accounts[i] = GenesisAccount{Address: AddressOf(TestnetAccountKey(seed, i)), Balance: TestnetBalance}
	}
	g.FillDefaults()
	return g
}
