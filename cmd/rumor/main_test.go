package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/testnet/keyfile"
)

// execMainEnv makes the test binary behave as the rumor binary, so the
// process-mode testnet test can start nodes by re-executing it.
const execMainEnv = "RUMOR_TEST_EXEC_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(execMainEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, s := range c.Commands() {
		walk(s, fn)
	}
}

// TestEveryCommandHasHelpWithExample: --help on every command shows an
// example and the flags' defaults.
func TestEveryCommandHasHelpWithExample(t *testing.T) {
	root := newRootCmd()
	var paths [][]string
	walk(root, func(c *cobra.Command) {
		if c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" {
			return
		}
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
	})
	for _, p := range paths {
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetArgs(append(p, "--help"))
		if err := root.Execute(); err != nil {
			t.Fatalf("%v --help: %v", p, err)
		}
		if !strings.Contains(out.String(), "Examples:") {
			t.Errorf("%v --help shows no example", p)
		}
		if !strings.Contains(out.String(), "--log-level string") {
			t.Errorf("%v --help does not list the global --log-level flag", p)
		}
	}
	var out bytes.Buffer
	root = newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"testnet", "--help"})
	_ = root.Execute()
	for _, want := range []string{`--nodes int`, `(default 8)`, `--tx-rate float`, `(default 500)`, `--block-relay string`, `(default "compact")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("testnet --help lacks %q", want)
		}
	}
}

func TestUsageErrorExitsTwo(t *testing.T) {
	if code := run([]string{"testnet", "--no-such-flag"}); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

func TestParseLogLevel(t *testing.T) {
	s, err := parseLogLevel("info, rumor/relay=debug,pubsub=warn")
	if err != nil {
		t.Fatal(err)
	}
	if s.Default != "info" || s.Subsystems["rumor/relay"] != "debug" || s.Subsystems["pubsub"] != "warn" {
		t.Fatalf("%+v", s)
	}
	if s, err := parseLogLevel("rumor/node=debug"); err != nil || s.Default != "" {
		t.Fatalf("subsystem only: %+v %v", s, err)
	}
	for _, bad := range []string{"loud", "info,debug", "=debug", "rumor/relay=loud"} {
		if _, err := parseLogLevel(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseParams(t *testing.T) {
	got := parseParams([]string{"12", "true", `{"txs":[]}`, `"quoted"`, "abcdef", "0x12"})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `[12,true,{"txs":[]},"quoted","abcdef","0x12"]`
	if string(b) != want {
		t.Fatalf("got %s, want %s", b, want)
	}
}

func TestConfigFileStrictAndFlagsOverride(t *testing.T) {
	dir := t.TempDir()
	conf := `
genesis = "g.json"
rpc_addr = "127.0.0.1:9000"
bootstrap = ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"]
mdns = false
log_level = "warn"
prefill_age = "80ms"
[mempool]
ttl = "5m"
max_txs = 100
[peers]
ban_duration = "1h"
max_conns_per_ip = 4
`
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	nf := &nodeFlags{v: defaultFileConfig()}
	cmd := nodeCmd(nf)
	root := &cobra.Command{Use: "rumor"}
	root.PersistentFlags().String("log-level", "info", "")
	root.AddCommand(cmd)
	if err := cmd.ParseFlags([]string{"--data-dir", dir, "--rpc-addr", "127.0.0.1:9100", "--block-relay", "push", "--prefill-age", "40ms"}); err != nil {
		t.Fatal(err)
	}
	fc, path, err := resolveNodeConfig(cmd.Flags(), nf)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, ConfigFile) {
		t.Errorf("path %s", path)
	}
	if fc.RPCAddr != "127.0.0.1:9100" {
		t.Errorf("flag did not override file: rpc %s", fc.RPCAddr)
	}
	if fc.BlockRelay != "push" || fc.MDNS || fc.LogLevel != "warn" || fc.Mempool.MaxTxs != 100 {
		t.Errorf("merged config %+v", fc)
	}
	if len(fc.Bootstrap) != 1 || fc.Genesis != "g.json" {
		t.Errorf("file values lost: %+v", fc)
	}
	nc, err := fc.nodeConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if nc.PrefillAge != 40*time.Millisecond {
		t.Errorf("--prefill-age did not override the file's: %v", nc.PrefillAge)
	}
	if fromFile, err := decodeConfig([]byte("prefill_age = \"80ms\"\n"), defaultFileConfig()); err != nil {
		t.Fatal(err)
	} else if nc, err := fromFile.nodeConfig(dir); err != nil || nc.PrefillAge != 80*time.Millisecond {
		t.Errorf("prefill_age from the file: %v %v", nc.PrefillAge, err)
	}
	if nc.BanDuration != time.Hour || nc.MaxConnsPerIP != 4 || nc.BanThreshold != peers.DefaultBanThreshold {
		t.Errorf("[peers] not applied: ban %v for %v, per-IP %d", nc.BanThreshold, nc.BanDuration, nc.MaxConnsPerIP)
	}
	if d := defaultFileConfig(); !reflect.DeepEqual(fc.Listen, d.Listen) {
		t.Errorf("unset listen changed: %v", fc.Listen)
	}
	if got := inDir(dir, fc.Genesis); got != filepath.Join(dir, "g.json") {
		t.Errorf("genesis path %s", got)
	}

	// Strict: a misspelt key is an error that names it.
	if _, err := decodeConfig([]byte("rpc_adr = \"x\"\n"), defaultFileConfig()); err == nil || !strings.Contains(err.Error(), "rpc_adr") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := decodeConfig([]byte("[mempool]\nttl = \"soon\"\n"), defaultFileConfig()); err == nil {
		t.Fatal("bad duration accepted")
	}
	// An explicitly named missing file is an error; the default one is not.
	if _, err := loadConfigFile(filepath.Join(dir, "nope.toml"), defaultFileConfig(), true); err == nil {
		t.Fatal("missing --config accepted")
	}
	if _, err := loadConfigFile(filepath.Join(dir, "nope.toml"), defaultFileConfig(), false); err != nil {
		t.Fatal(err)
	}
}

// TestRelativePaths: relative paths in flags are taken from the current
// directory, relative paths in the config file from the data dir (what
// README and `rumor node --help` say).
func TestRelativePaths(t *testing.T) {
	dir := t.TempDir()
	conf := "genesis = \"../g.json\"\nproducer_key = \"k.json\"\nrpc_addr_file = \"rpc.addr\"\n"
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(args ...string) fileConfig {
		t.Helper()
		nf := &nodeFlags{v: defaultFileConfig()}
		cmd := nodeCmd(nf)
		root := &cobra.Command{Use: "rumor"}
		root.PersistentFlags().String("log-level", "info", "")
		root.AddCommand(cmd)
		if err := cmd.ParseFlags(append([]string{"--data-dir", dir}, args...)); err != nil {
			t.Fatal(err)
		}
		fc, _, err := resolveNodeConfig(cmd.Flags(), nf)
		if err != nil {
			t.Fatal(err)
		}
		return fc
	}
	fc := parse()
	if got, want := inDir(dir, fc.Genesis), filepath.Join(filepath.Dir(dir), "g.json"); got != want {
		t.Errorf("config genesis: %s, want %s", got, want)
	}
	if got, want := inDir(dir, fc.ProducerKey), filepath.Join(dir, "k.json"); got != want {
		t.Errorf("config producer_key: %s, want %s", got, want)
	}
	if got, want := fc.rpcAddrFile(dir), filepath.Join(dir, "rpc.addr"); got != want {
		t.Errorf("config rpc_addr_file: %s, want %s", got, want)
	}

	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	fc = parse("--genesis", "net/genesis.json", "--producer-key", "net/keys/a.json", "--rpc-addr-file", "x/rpc.addr")
	for name, c := range map[string][2]string{
		"--genesis":       {inDir(dir, fc.Genesis), filepath.Join(wd, "net/genesis.json")},
		"--producer-key":  {inDir(dir, fc.ProducerKey), filepath.Join(wd, "net/keys/a.json")},
		"--rpc-addr-file": {fc.rpcAddrFile(dir), filepath.Join(wd, "x/rpc.addr")},
	} {
		if c[0] != c[1] {
			t.Errorf("%s: %s, want %s", name, c[0], c[1])
		}
	}

	// No genesis anywhere: <data-dir>/genesis.json.
	if err := os.Remove(filepath.Join(dir, ConfigFile)); err != nil {
		t.Fatal(err)
	}
	if got, want := inDir(dir, parse().Genesis), filepath.Join(dir, "genesis.json"); got != want {
		t.Errorf("default genesis: %s, want %s", got, want)
	}
}

func TestWriteConfigRoundTrips(t *testing.T) {
	d := defaultFileConfig()
	b, err := encodeConfig(d)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "# ") {
		t.Error("written config has no comments")
	}
	got, err := decodeConfig(b, fileConfig{})
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, d)
	}
}

func TestBuildTxSignsForChain(t *testing.T) {
	k := chain.TestnetAccountKey("s", 0)
	to := keyfile.Address(chain.TestnetAccountKey("s", 1))
	o := &txSendOpts{to: to.String(), amount: 5, fee: 1, payloadSize: 40}
	tx, err := buildTx(o, k, "chain-x", 7)
	if err != nil {
		t.Fatal(err)
	}
	if !tx.VerifySig("chain-x") || tx.VerifySig("chain-y") {
		t.Fatal("signature not bound to the chain id")
	}
	if tx.Nonce != 7 || tx.Amount != 5 || len(tx.Payload) != 40 || tx.To != to {
		t.Fatalf("tx %+v", tx)
	}
	o.payloadHex = "00ff"
	if _, err := buildTx(o, k, "c", 0); err == nil {
		t.Fatal("--payload with --payload-size accepted")
	}
	o.payloadSize = 0
	if tx, err := buildTx(o, k, "c", 0); err != nil || !bytes.Equal(tx.Payload, []byte{0, 0xff}) {
		t.Fatalf("hex payload: %v", err)
	}
	o.to = "nothex"
	if _, err := buildTx(o, k, "c", 0); err == nil {
		t.Fatal("bad address accepted")
	}
}

func TestGenesisCommandWritesLoadableFiles(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"genesis", "--out", dir, "--accounts", "3", "--authorities", "2", "--block-interval", "500ms"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	g, err := chain.LoadGenesis(filepath.Join(dir, "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Authorities) != 2 || len(g.Accounts) != 3 || g.BlockIntervalMs != 500 {
		t.Fatalf("genesis %+v", g)
	}
	k, err := keyfile.Load(filepath.Join(dir, "keys", "authority-1.json"))
	if err != nil || keyfile.Address(k) != g.Authorities[1] {
		t.Fatalf("authority key: %v", err)
	}
	k, err = keyfile.Load(filepath.Join(dir, "keys", "account-2.json"))
	if err != nil || keyfile.Address(k) != g.Accounts[2].Address {
		t.Fatalf("account key: %v", err)
	}
	root = newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"genesis", "--out", dir})
	if err := root.Execute(); err == nil {
		t.Fatal("overwrote an existing genesis without --force")
	}
}

// TestProcessTestnet runs `rumor testnet` in process mode with 3 nodes:
// the test binary re-executes itself as `rumor node` (see TestMain).
func TestProcessTestnet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 node processes; skipped with -short")
	}
	t.Setenv(execMainEnv, "1") // inherited by the node children
	out := filepath.Join(t.TempDir(), "tn")
	code := run([]string{"testnet", "--nodes", "3", "--duration", "3s", "--tx-rate", "50",
		"--block-interval", "500ms", "--accounts", "64", "--out", out, "--node-log-level", "warn", "--log-level", "warn"})
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatalf("exit %d, no report: %v", code, err)
	}
	var r struct {
		Nodes int    `json:"nodes"`
		Mode  string `json:"mode"`
		Txs   struct {
			Accepted int `json:"accepted"`
		} `json:"txs"`
		FloorMs *float64 `json:"floor_ms"`
		CPU     *struct {
			NodesS          float64 `json:"nodes_s"`
			PerAcceptedTxUs float64 `json:"per_accepted_tx_us"`
		} `json:"cpu"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit %d; errors %q", code, r.Errors)
	}
	if r.Nodes != 3 || r.Mode != "process" || r.Txs.Accepted == 0 || r.FloorMs != nil {
		t.Fatalf("report %s", b)
	}
	// Three nodes relaying 150 txs and 6 blocks for 3 s spend some CPU.
	if runtime.GOOS == "linux" && (r.CPU == nil || r.CPU.NodesS <= 0 || r.CPU.PerAcceptedTxUs <= 0) {
		t.Fatalf("no node CPU in the report: %s", b)
	}
	// Every child has exited: their data dirs hold a saved mempool, which
	// a node writes only on clean shutdown.
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(out, "nodes", fmt.Sprintf("node-%d", i), "mempool.dat")); err != nil {
			t.Errorf("node %d did not shut down cleanly: %v", i, err)
		}
	}
}

// FuzzDecodeConfig: no config file content panics the strict decoder.
func FuzzDecodeConfig(f *testing.F) {
	b, _ := encodeConfig(defaultFileConfig())
	f.Add(b)
	f.Add([]byte("[mempool]\nttl = 5\n"))
	f.Add([]byte("listen = 'x'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeConfig(data, defaultFileConfig())
	})
}
