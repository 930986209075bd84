package chain

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGenesisValidate(t *testing.T) {
	a, b := acct(0), acct(1)
	tests := []struct {
		name   string
		mutate func(g *Genesis)
		ok     bool
	}{
		{"testnet ok", func(g *Genesis) {}, true},
		{"nil accounts ok", func(g *Genesis) { g.Accounts = nil }, true},
		{"empty chain id", func(g *Genesis) { g.ChainID = "" }, false},
		{"chain id too long", func(g *Genesis) { g.ChainID = strings.Repeat("a", MaxChainIDLen+1) }, false},
		{"chain id max length", func(g *Genesis) { g.ChainID = strings.Repeat("a", MaxChainIDLen) }, true},
		{"chain id slash", func(g *Genesis) { g.ChainID = "a/b" }, false},
		{"chain id space", func(g *Genesis) { g.ChainID = "a b" }, false},
		{"chain id punctuation ok", func(g *Genesis) { g.ChainID = "Rumor_test-1.2" }, true},
		{"negative time", func(g *Genesis) { g.Time = -1 }, false},
		{"no authorities", func(g *Genesis) { g.Authorities = nil }, false},
		{"duplicate authority", func(g *Genesis) { g.Authorities = []Address{a, b, a} }, false},
		{"zero interval", func(g *Genesis) { g.BlockIntervalMs = 0 }, false},
		{"negative interval", func(g *Genesis) { g.BlockIntervalMs = -5 }, false},
		{"interval too long", func(g *Genesis) { g.BlockIntervalMs = MaxBlockInterval.Milliseconds() + 1 }, false},
		{"block bytes over cap", func(g *Genesis) { g.MaxBlockBytes = MaxBlockSize + 1 }, false},
		{"block bytes at cap", func(g *Genesis) { g.MaxBlockBytes = MaxBlockSize }, true},
		{"block cannot hold largest tx", func(g *Genesis) { g.MaxBlockBytes = HeaderSize + 100 }, false},
		{"small block, small payload", func(g *Genesis) {
			g.MaxPayloadBytes = 10
			g.MaxBlockBytes = HeaderSize + 1 + maxTxEncodingFor(10)
		}, true},
		{"one byte short", func(g *Genesis) {
			g.MaxPayloadBytes = 10
			g.MaxBlockBytes = HeaderSize + maxTxEncodingFor(10)
		}, false},
		{"zero txs", func(g *Genesis) { g.MaxBlockTxs = 0 }, false},
		{"txs over cap", func(g *Genesis) { g.MaxBlockTxs = MaxBlockTxs + 1 }, false},
		{"payload over cap", func(g *Genesis) { g.MaxPayloadBytes = MaxPayloadSize + 1 }, false},
		{"negative payload", func(g *Genesis) { g.MaxPayloadBytes = -1 }, false},
		{"duplicate account", func(g *Genesis) { g.Accounts = append(g.Accounts, GenesisAccount{Address: g.Accounts[0].Address}) }, false},
		{"supply overflow", func(g *Genesis) {
			g.Accounts = []GenesisAccount{{a, math.MaxUint64}, {b, 1}}
		}, false},
		{"supply exactly max", func(g *Genesis) {
			g.Accounts = []GenesisAccount{{a, math.MaxUint64 - 1}, {b, 1}}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := testGenesis(t)
			tc.mutate(g)
			err := g.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidGenesis) {
				t.Fatalf("Validate = %v, want ErrInvalidGenesis", err)
			}
		})
	}
	var nilG *Genesis
	if err := nilG.Validate(); err == nil {
		t.Fatal("nil genesis validated")
	}
}

func TestGenesisSaveLoadRoundTrip(t *testing.T) {
	g := testGenesis(t)
	g.Accounts[1].Balance = math.MaxUint64 - 3*TestnetBalance // exact uint64 through JSON
	path := filepath.Join(t.TempDir(), "genesis.json")
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadGenesis(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := g.MarshalJSONIndent()
	b, _ := got.MarshalJSONIndent()
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	if got.ID() != g.ID() || got.Commitment() != g.Commitment() {
		t.Fatal("genesis id changed across save/load")
	}
	// The file uses the contract's snake_case keys and hex addresses.
	raw, _ := os.ReadFile(path)
	for _, k := range []string{`"chain_id"`, `"timestamp_ms"`, `"authorities"`, `"block_interval_ms"`,
		`"max_block_bytes"`, `"max_block_txs"`, `"max_payload_bytes"`, `"min_fee"`, `"accounts"`, `"address"`, `"balance"`,
		`"` + g.Authorities[0].String() + `"`} {
		if !bytes.Contains(raw, []byte(k)) {
			t.Errorf("genesis file lacks %s", k)
		}
	}
	// Save refuses an invalid genesis and leaves the old file alone.
	bad := *g
	bad.ChainID = ""
	if err := bad.Save(path); !errors.Is(err, ErrInvalidGenesis) {
		t.Fatalf("Save of invalid genesis = %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, raw) {
		t.Fatal("failed Save modified the file")
	}
}

func TestParseGenesis(t *testing.T) {
	auth := acct(0).String()
	minimal := `{"chain_id":"x","timestamp_ms":5,"authorities":["` + auth + `"],"accounts":[{"address":"0x` + acct(1).String() + `","balance":7}]}`
	g, err := ParseGenesis([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if g.MaxBlockBytes != DefaultMaxBlockBytes || g.MaxBlockTxs != DefaultMaxBlockTxs ||
		g.MaxPayloadBytes != DefaultMaxPayloadBytes || g.BlockInterval() != DefaultBlockInterval {
		t.Fatalf("defaults not filled: %+v", g)
	}
	if g.Accounts[0].Address != acct(1) || g.Accounts[0].Balance != 7 || g.Time != 5 {
		t.Fatalf("fields wrong: %+v", g)
	}
	for name, in := range map[string]string{
		"unknown field":  strings.Replace(minimal, `"chain_id"`, `"max_block_byte":1,"chain_id"`, 1),
		"trailing data":  minimal + `{}`,
		"bad address":    strings.Replace(minimal, auth, "zz", 1),
		"short address":  strings.Replace(minimal, auth, auth[:62], 1),
		"not json":       `chain_id = "x"`,
		"negative limit": strings.Replace(minimal, `"chain_id"`, `"max_block_txs":-1,"chain_id"`, 1),
		"invalid":        strings.Replace(minimal, `"x"`, `""`, 1),
		"empty":          ``,
	} {
		if _, err := ParseGenesis([]byte(in)); !errors.Is(err, ErrInvalidGenesis) {
			t.Errorf("%s: err = %v, want ErrInvalidGenesis", name, err)
		}
	}
	if _, err := LoadGenesis(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("LoadGenesis of a missing file succeeded")
	}
}

func TestTestnetGenesisDeterministic(t *testing.T) {
	g1 := NewTestnetGenesis("net", "s", 10, 4, 500*time.Millisecond, testNow)
	g2 := NewTestnetGenesis("net", "s", 10, 4, 500*time.Millisecond, testNow)
	if err := g1.Validate(); err != nil {
		t.Fatal(err)
	}
	if g1.ID() != g2.ID() {
		t.Fatal("same arguments, different genesis")
	}
	if len(g1.Accounts) != 10 || len(g1.Authorities) != 4 || g1.BlockInterval() != 500*time.Millisecond ||
		g1.Time != testNow.UnixMilli() || g1.MinFee != TestnetMinFee {
		t.Fatalf("unexpected genesis %+v", g1)
	}
	for i, a := range g1.Accounts {
		if a.Address != AddressOf(TestnetAccountKey("s", i)) || a.Balance != TestnetBalance {
			t.Fatalf("account %d not funded from its key", i)
		}
	}
	for i, a := range g1.Authorities {
		if a != AddressOf(TestnetAuthorityKey("s", i)) {
			t.Fatalf("authority %d not from its key", i)
		}
	}
	// Keys are distinct across index, domain and seed.
	seen := map[Address]bool{}
	for _, s := range []string{"s", "t"} {
		for i := range 20 {
			for _, k := range []Address{AddressOf(TestnetAccountKey(s, i)), AddressOf(TestnetAuthorityKey(s, i))} {
				if seen[k] {
					t.Fatalf("key collision at seed %q index %d", s, i)
				}
				seen[k] = true
			}
		}
	}
	// Pinned: the derivation is a format other tools rely on.
	if got := AddressOf(TestnetAccountKey("s", 0)).String(); got != pinnedAccount0 {
		t.Fatalf("TestnetAccountKey(\"s\",0) = %s, pinned %s", got, pinnedAccount0)
	}
	for _, other := range []*Genesis{
		NewTestnetGenesis("net2", "s", 10, 4, 500*time.Millisecond, testNow),
		NewTestnetGenesis("net", "t", 10, 4, 500*time.Millisecond, testNow),
		NewTestnetGenesis("net", "s", 11, 4, 500*time.Millisecond, testNow),
		NewTestnetGenesis("net", "s", 10, 3, 500*time.Millisecond, testNow),
		NewTestnetGenesis("net", "s", 10, 4, time.Second, testNow),
		NewTestnetGenesis("net", "s", 10, 4, 500*time.Millisecond, testNow.Add(time.Millisecond)),
	} {
		if other.ID() == g1.ID() {
			t.Fatalf("different genesis %+v shares id", other)
		}
	}
	// Clamping of silly arguments still yields a valid genesis.
	g0 := NewTestnetGenesis("net", "s", -1, 0, 0, testNow)
	if err := g0.Validate(); err != nil || len(g0.Authorities) != 1 || len(g0.Accounts) != 0 ||
		g0.BlockInterval() != DefaultBlockInterval {
		t.Fatalf("clamped genesis: %v %+v", err, g0)
	}
}

// pinnedAccount0 is AddressOf(TestnetAccountKey("s", 0)); it changes only
// if the derivation changes, which would break existing testnet tooling.
const pinnedAccount0 = "c32c89ca1a138eae36f1d3d7ba18995130d1f7017fc1d5a950eed59960284b4b"

func TestGenesisBlock(t *testing.T) {
	g := testGenesis(t)
	b := g.Block()
	h := b.Header
	if h.Height != 0 || !h.Parent.IsZero() || h.Time != g.Time || len(b.Txs) != 0 ||
		h.Proposer != (Address{}) || h.Sig != (Signature{}) || h.TxRoot != g.Commitment() {
		t.Fatalf("genesis block %+v", h)
	}
	if g.Block().ID() != b.ID() || g.ID() != b.ID() {
		t.Fatal("genesis block not deterministic")
	}
	// Any field change changes the commitment, including the account list.
	g2 := testGenesis(t)
	g2.Accounts[3].Balance++
	if g2.ID() == g.ID() {
		t.Fatal("balance change kept the genesis id")
	}
	g3 := testGenesis(t)
	g3.MinFee++
	if g3.ID() == g.ID() {
		t.Fatal("min fee change kept the genesis id")
	}
	// A genesis block round-trips through the block encoding.
	dec, err := DecodeBlock(b.Encode())
	if err != nil || dec.ID() != b.ID() {
		t.Fatalf("decode genesis block: %v", err)
	}
	if g.TotalSupply() != 4*TestnetBalance {
		t.Fatalf("supply %d", g.TotalSupply())
	}
	st := g.State()
	if len(st) != 4 || st[acct(2)] != (Account{Balance: TestnetBalance}) {
		t.Fatalf("state %v", st)
	}
}

func TestProposerAt(t *testing.T) {
	g := testGenesis(t)
	for h := uint64(0); h < 10; h++ {
		if got, want := g.ProposerAt(h), AddressOf(authKey(int(h%3))); got != want {
			t.Fatalf("height %d: proposer %s, want %s", h, got, want)
		}
	}
	if g.ProposerAt(math.MaxUint64) != g.Authorities[math.MaxUint64%3] {
		t.Fatal("max height")
	}
	if !g.IsAuthority(g.Authorities[2]) || g.IsAuthority(acct(0)) {
		t.Fatal("IsAuthority")
	}
	if got := g.SlotTime(3); !got.Equal(testNow.Add(3 * time.Second)) {
		t.Fatalf("SlotTime(3) = %v", got)
	}
}
