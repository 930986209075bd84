package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rumor-relay/rumor/chain/durable"
	"github.com/rumor-relay/rumor/node"
)

// nodeFlags are the flag values of `rumor node`; a flag overrides the
// config file only when given on the command line.
type nodeFlags struct {
	dataDir     string
	configPath  string
	writeConfig bool
	force       bool
	v           fileConfig
	prefillAge  time.Duration // --prefill-age; fileConfig's is a TOML duration
}

func newNodeCmd() *cobra.Command { return nodeCmd(&nodeFlags{v: defaultFileConfig()}) }

// nodeCmd builds `rumor node` with its flags bound to nf.
func nodeCmd(nf *nodeFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a rumor node",
		Long: `Run one rumor node until SIGINT or SIGTERM.

Settings come from, lowest priority first: built-in defaults, the TOML file
<data-dir>/config.toml (or --config), then command-line flags. Unknown keys
in the file are errors. --write-config writes the effective settings as a
commented config.toml and exits.

Relative paths given as flags (--data-dir, --config, --genesis,
--producer-key, --rpc-addr-file) are taken from the current directory.
Relative paths in the config file (genesis, producer_key, rpc_addr_file,
[mempool] persist_path and journal_path) are taken from the data dir, also
when the file is named with --config; --write-config stores flag paths as
absolute paths. Without --genesis or a genesis setting, the node reads
<data-dir>/genesis.json.

On shutdown the node closes its store and saves its mempool (when
[mempool] persist_path is set, as it is by default). Transactions accepted
over RPC are also written to <data-dir>/owntx.journal before tx_send
answers ([mempool] journal_path), so a crash does not lose them: the next
start puts them back in the pool.`,
		Example: `  rumor genesis --out ./net && rumor node --data-dir ./net/n0 --genesis ./net/genesis.json \
      --producer-key ./net/keys/authority-0.json --rpc-addr 127.0.0.1:8545`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNode(cmd, nf) },
	}
	d := nf.v
	fl := cmd.Flags()
	fl.StringVar(&nf.dataDir, "data-dir", node.DefaultDataDir(), "data dir: node key, chain store, mempool file, config.toml")
	fl.StringVar(&nf.configPath, "config", "", "TOML config file (default <data-dir>/config.toml, read when present)")
	fl.BoolVar(&nf.writeConfig, "write-config", false, "write the effective configuration to the config file and exit")
	fl.BoolVar(&nf.force, "force", false, "with --write-config: replace an existing config file")
	// The flag shows no default: its default is the file setting's
	// "genesis.json", which is relative to the data dir, not to the
	// current directory as a path given with the flag is.
	fl.StringVar(&nf.v.Genesis, "genesis", "", "genesis JSON file (default <data-dir>/genesis.json)")
	fl.StringSliceVar(&nf.v.Listen, "listen", d.Listen, "libp2p listen multiaddrs (repeat or comma-separate)")
	fl.StringSliceVar(&nf.v.Bootstrap, "bootstrap", nil, "full multiaddrs (ending in /p2p/<peer id>) of peers to dial at start")
	fl.BoolVar(&nf.v.MDNS, "mdns", d.MDNS, "find peers on the local network with mDNS")
	fl.StringVar(&nf.v.RPCAddr, "rpc-addr", d.RPCAddr, `JSON-RPC listen host:port ("" = off; port 0 = any free port)`)
	fl.StringVar(&nf.v.RPCAddrFile, "rpc-addr-file", "", "write the bound RPC host:port to this file once serving")
	fl.StringVar(&nf.v.MetricsAddr, "metrics-addr", d.MetricsAddr, `Prometheus /metrics and /debug/pprof host:port ("" = off)`)
	fl.StringVar(&nf.v.ProducerKey, "producer-key", "", "authority key file (rumor genesis writes them): produce blocks in its slots")
	fl.StringVar(&nf.v.BlockRelay, "block-relay", d.BlockRelay, "how this node announces blocks: compact, pull or push")
	fl.StringVar(&nf.v.TxRelay, "tx-relay", d.TxRelay, "how this node gossips txs: announce (ids over GossipSub; peers pull bodies), link (8-byte id prefixes per link to the tx mesh; peers pull bodies) or push (whole txs, the plain-GossipSub baseline)")
	fl.DurationVar(&nf.prefillAge, "prefill-age", 0, "compact blocks carry whole the txs first seen here less than this ago, besides those not yet announced (0 = only those)")
	fl.IntVar(&nf.v.MeshDegree, "mesh-degree", 0, "GossipSub's D, the mesh peers per topic (0 = its default, 6; 4..8): lower means fewer duplicate announcements and more hops")
	fl.BoolVar(&nf.v.InMemory, "in-memory", false, "keep the chain in memory; nothing persists")
	return cmd
}

// applyNodeFlags copies the flags given on the command line over fc.
func applyNodeFlags(fs *pflag.FlagSet, nf *nodeFlags, fc *fileConfig) error {
	abs := func(p string) string {
		if p == "" {
			return p
		}
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	set := map[string]func(){
		"genesis":       func() { fc.Genesis = abs(nf.v.Genesis) },
		"listen":        func() { fc.Listen = nf.v.Listen },
		"bootstrap":     func() { fc.Bootstrap = nf.v.Bootstrap },
		"mdns":          func() { fc.MDNS = nf.v.MDNS },
		"rpc-addr":      func() { fc.RPCAddr = nf.v.RPCAddr },
		"rpc-addr-file": func() { fc.RPCAddrFile = abs(nf.v.RPCAddrFile) },
		"metrics-addr":  func() { fc.MetricsAddr = nf.v.MetricsAddr },
		"producer-key":  func() { fc.ProducerKey = abs(nf.v.ProducerKey) },
		"block-relay":   func() { fc.BlockRelay = nf.v.BlockRelay },
		"tx-relay":      func() { fc.TxRelay = nf.v.TxRelay },
		"in-memory":     func() { fc.InMemory = nf.v.InMemory },
		"prefill-age":   func() { fc.PrefillAge = duration(nf.prefillAge) },
		"mesh-degree":   func() { fc.MeshDegree = nf.v.MeshDegree },
	}
	for name, apply := range set {
		if fs.Changed(name) {
			apply()
		}
	}
	if fs.Changed("log-level") {
		lvl, err := fs.GetString("log-level")
		if err != nil {
			return err
		}
		fc.LogLevel = lvl
	}
	return nil
}

// resolveNodeConfig merges defaults, the config file and the flags.
func resolveNodeConfig(fs *pflag.FlagSet, nf *nodeFlags) (fileConfig, string, error) {
	path := nf.configPath
	if path == "" {
		path = filepath.Join(nf.dataDir, ConfigFile)
	}
	fc, err := loadConfigFile(path, defaultFileConfig(), nf.configPath != "")
	if err != nil {
		return fc, path, err
	}
	if err := applyNodeFlags(fs, nf, &fc); err != nil {
		return fc, path, err
	}
	return fc, path, nil
}

func runNode(cmd *cobra.Command, nf *nodeFlags) error {
	fc, path, err := resolveNodeConfig(cmd.Flags(), nf)
	if err != nil {
		return err
	}
	if nf.writeConfig {
		return writeConfigFile(cmd, path, fc, nf.force)
	}
	if err := applyLogLevel(fc.LogLevel); err != nil {
		return err
	}
	nc, err := fc.nodeConfig(nf.dataDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.New(nc)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		_ = n.Close()
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "peer id: %s\n", n.Host().ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(out, "listening: %s\n", a)
	}
	if a := n.RPCAddr(); a != "" {
		fmt.Fprintf(out, "rpc: http://%s/ (ws://%s/ws)\n", a, a)
		if f := fc.rpcAddrFile(nf.dataDir); f != "" {
			if err := durable.WriteFile(f, []byte(a+"\n"), 0o644); err != nil {
				_ = n.Close()
				return fmt.Errorf("rpc addr file: %w", err)
			}
			// A stale address must not send a script to a dead port.
			defer os.Remove(f)
		}
	}
	<-ctx.Done()
	stop() // a second signal now kills the process the default way
	fmt.Fprintln(out, "shutting down")
	return n.Close()
}

func writeConfigFile(cmd *cobra.Command, path string, fc fileConfig, force bool) error {
	if _, err := os.Stat(path); err == nil && !force {
		return fmt.Errorf("%s exists; use --force to replace it", path)
	}
	b, err := encodeConfig(fc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := durable.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", path)
	return nil
}
