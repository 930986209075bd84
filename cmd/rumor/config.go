package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/node"
	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/testnet/keyfile"
)

// ConfigFile is the name of the node's TOML configuration inside its data
// dir.
const ConfigFile = "config.toml"

// maxConfigFileSize bounds what the node reads as its config file: a
// config is a few KiB; a wrong path (a disk image) must fail cleanly.
const maxConfigFileSize = 1 << 20

// duration is a time.Duration written in TOML as a Go duration string
// ("30s", "3h").
type duration time.Duration

// MarshalText writes the duration as a Go duration string.
func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses a Go duration string.
func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// mempoolFile is the [mempool] table of config.toml.
type mempoolFile struct {
	MaxTxs       int      `toml:"max_txs" comment:"most transactions held, queued ones included"`
	MaxBytes     int      `toml:"max_bytes" comment:"most bytes of encoded transactions held"`
	MaxPerSender int      `toml:"max_per_sender" comment:"most transactions held for one sender"`
	TTL          duration `toml:"ttl" comment:"how long a transaction may wait in the pool"`
	PersistPath  string   `toml:"persist_path" comment:"saved on clean shutdown, loaded on start; relative to the data dir; \"\" = off"`
	JournalPath  string   `toml:"journal_path" comment:"own-tx journal: txs accepted over RPC, written before tx_send answers and replayed on start, so a crash loses none; relative to the data dir; \"\" = off"`
	JournalSync  bool     `toml:"journal_sync" comment:"fsync the journal before tx_send answers (also survives power loss; slower)"`
}

// peersFile is the [peers] table of config.toml: the peer policy.
type peersFile struct {
	BanThreshold        float64  `toml:"ban_threshold" comment:"peer score at or below which a peer is banned (negative; see peers/offense.go for the weights)"`
	BanDuration         duration `toml:"ban_duration" comment:"how long a ban lasts; bans are kept in bans.json across restarts"`
	PingInterval        duration `toml:"ping_interval" comment:"liveness ping period; a peer that misses 3 in a row is dropped"`
	MaxConnsPerIP       int      `toml:"max_conns_per_ip" comment:"connections per IPv4 address / IPv6 /56 (loopback exempt); -1 = no cap"`
	ColocationThreshold int      `toml:"colocation_threshold" comment:"peers per IP before GossipSub's colocation penalty; 0 = auto (off on loopback, else 10); -1 = off"`
}

// fileConfig is config.toml: what a node operator sets once. Paths are
// relative to the data dir. Command-line flags override it.
type fileConfig struct {
	Genesis       string      `toml:"genesis" comment:"genesis JSON file (relative to the data dir)"`
	Listen        []string    `toml:"listen" comment:"libp2p listen multiaddrs"`
	Bootstrap     []string    `toml:"bootstrap" comment:"full multiaddrs (/p2p/<id>) of peers to dial at start"`
	MDNS          bool        `toml:"mdns" comment:"find peers on the local network"`
	PeerExchange  bool        `toml:"peer_exchange" comment:"exchange peer addresses so nodes that know one seed find each other"`
	TargetPeers   int         `toml:"target_peers" comment:"connections peer exchange dials towards"`
	ConnLowWater  int         `toml:"conn_low_water" comment:"connection manager trims down to this many connections"`
	ConnHighWater int         `toml:"conn_high_water" comment:"... once it holds this many"`
	RPCAddr       string      `toml:"rpc_addr" comment:"JSON-RPC host:port (HTTP POST at /, WebSocket at /ws); \"\" = off"`
	RPCToken      string      `toml:"rpc_token" comment:"bearer token required on RPC; generated into rpc.cookie when RPC is not on loopback"`
	MetricsAddr   string      `toml:"metrics_addr" comment:"Prometheus /metrics and /debug/pprof host:port; \"\" = off"`
	ProducerKey   string      `toml:"producer_key" comment:"authority key file (relative to the data dir): produce blocks in this key's slots; \"\" = not a producer"`
	BlockRelay    string      `toml:"block_relay" comment:"how this node announces blocks: compact, pull or push"`
	TxRelay       string      `toml:"tx_relay" comment:"how this node gossips txs: announce (ids over GossipSub), link (id prefixes per link to the tx mesh) or push (whole txs, the plain-GossipSub baseline)"`
	PrefillAge    duration    `toml:"prefill_age" comment:"compact blocks carry whole the txs first seen here less than this ago, besides those not yet announced; 0 = only those"`
	MeshDegree    int         `toml:"mesh_degree" comment:"GossipSub's D, the mesh peers per topic; 0 = its default (6), else 4..8: lower means fewer duplicate announcements and more hops"`
	LogLevel      string      `toml:"log_level" comment:"e.g. \"info,rumor/relay=debug\""`
	InMemory      bool        `toml:"in_memory" comment:"keep the chain in memory (nothing persists)"`
	SyncWrites    bool        `toml:"sync_writes" comment:"fsync every block commit (survives power loss)"`
	Mempool       mempoolFile `toml:"mempool"`
	Peers         peersFile   `toml:"peers"`
	RPCAddrFile   string      `toml:"rpc_addr_file" comment:"write the bound RPC host:port here once serving (scripts, rumor testnet); relative to the data dir"`
}

// defaultFileConfig is the configuration of a node with no config file
// and no flags.
func defaultFileConfig() fileConfig {
	d := node.DefaultConfig()
	mp := mempool.DefaultConfig()
	return fileConfig{
		Genesis:       "genesis.json",
		Listen:        d.ListenAddrs,
		Bootstrap:     []string{},
		MDNS:          d.MDNS,
		PeerExchange:  d.PeerExchange,
		TargetPeers:   d.TargetPeers,
		ConnLowWater:  d.ConnLowWater,
		ConnHighWater: d.ConnHighWater,
		RPCAddr:       d.RPCAddr,
		MetricsAddr:   d.MetricsAddr,
		BlockRelay:    string(d.BlockRelay),
		TxRelay:       string(d.TxRelay),
		LogLevel:      "info",
		Mempool: mempoolFile{
			MaxTxs:       mp.MaxTxs,
			MaxBytes:     mp.MaxBytes,
			MaxPerSender: mp.MaxPerSender,
			TTL:          duration(mp.TTL),
			PersistPath:  node.DefaultMempoolFile,
			JournalPath:  node.DefaultJournalFile,
		},
		Peers: peersFile{
			BanThreshold:  peers.DefaultBanThreshold,
			BanDuration:   duration(peers.DefaultBanDuration),
			PingInterval:  duration(peers.DefaultPingInterval),
			MaxConnsPerIP: node.DefaultMaxConnsPerIP,
		},
	}
}

// decodeConfig decodes a TOML config over base, strictly: an unknown key
// is an error, so a misspelt setting never silently keeps its default.
func decodeConfig(data []byte, base fileConfig) (fileConfig, error) {
	if len(data) > maxConfigFileSize {
		return base, fmt.Errorf("config larger than %d bytes", maxConfigFileSize)
	}
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	cfg := base
	if err := dec.Decode(&cfg); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return base, fmt.Errorf("unknown setting:\n%s", sm.String())
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			return base, fmt.Errorf("%s", de.String())
		}
		return base, err
	}
	return cfg, nil
}

// loadConfigFile reads path over base. A missing file is not an error
// unless required (the user named it explicitly).
func loadConfigFile(path string, base fileConfig, required bool) (fileConfig, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !required {
		return base, nil
	}
	if err != nil {
		return base, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFileSize+1))
	if err != nil {
		return base, err
	}
	cfg, err := decodeConfig(data, base)
	if err != nil {
		return base, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// encodeConfig renders cfg as a commented TOML file.
func encodeConfig(cfg fileConfig) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("# rumor node configuration. Command-line flags override these settings.\n")
	buf.WriteString("# Relative paths are relative to the data dir.\n\n")
	enc := toml.NewEncoder(&buf)
	enc.SetIndentTables(true)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// inDir resolves a path from the config relative to the data dir.
func inDir(dataDir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dataDir, p)
}

// rpcAddrFile is where the node writes its bound RPC address: a relative
// rpc_addr_file from the config file is taken inside the data dir (the
// --rpc-addr-file flag is already absolute).
func (fc fileConfig) rpcAddrFile(dataDir string) string { return inDir(dataDir, fc.RPCAddrFile) }

// nodeConfig turns the merged file config into node.Config.
func (fc fileConfig) nodeConfig(dataDir string) (node.Config, error) {
	c := node.DefaultConfig()
	c.DataDir = dataDir
	c.GenesisPath = inDir(dataDir, fc.Genesis)
	c.ListenAddrs = fc.Listen
	c.Bootstrap = fc.Bootstrap
	c.MDNS = fc.MDNS
	c.PeerExchange = fc.PeerExchange
	c.TargetPeers = fc.TargetPeers
	c.ConnLowWater = fc.ConnLowWater
	c.ConnHighWater = fc.ConnHighWater
	c.RPCAddr = fc.RPCAddr
	c.RPCToken = fc.RPCToken
	c.MetricsAddr = fc.MetricsAddr
	c.InMemory = fc.InMemory
	c.SyncWrites = fc.SyncWrites
	mode, err := relay.ParseBlockMode(fc.BlockRelay)
	if err != nil {
		return c, err
	}
	c.BlockRelay = mode
	txMode, err := relay.ParseTxMode(fc.TxRelay)
	if err != nil {
		return c, err
	}
	c.TxRelay = txMode
	c.PrefillAge = time.Duration(fc.PrefillAge)
	c.MeshDegree = fc.MeshDegree
	c.Mempool.MaxTxs = fc.Mempool.MaxTxs
	c.Mempool.MaxQueued = 0 // derived from MaxTxs (a tenth of the default, capped at MaxTxs)
	c.Mempool.MaxBytes = fc.Mempool.MaxBytes
	c.Mempool.MaxPerSender = fc.Mempool.MaxPerSender
	c.Mempool.TTL = time.Duration(fc.Mempool.TTL)
	c.Mempool.PersistPath = fc.Mempool.PersistPath // node resolves a relative path in the data dir
	c.Mempool.JournalPath = fc.Mempool.JournalPath // likewise
	c.Mempool.JournalSync = fc.Mempool.JournalSync
	c.BanThreshold = fc.Peers.BanThreshold
	c.BanDuration = time.Duration(fc.Peers.BanDuration)
	c.PingInterval = time.Duration(fc.Peers.PingInterval)
	c.MaxConnsPerIP = fc.Peers.MaxConnsPerIP
	c.ColocationThreshold = fc.Peers.ColocationThreshold
	if fc.ProducerKey != "" {
		k, err := keyfile.Load(inDir(dataDir, fc.ProducerKey))
		if err != nil {
			return c, fmt.Errorf("producer key: %w", err)
		}
		c.ProducerKey = k
	}
	return c, c.Validate()
}
