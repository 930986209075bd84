package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/p2p"
)

// Defaults. Each names where its number comes from.
const (
	// DefaultP2PPort is the TCP and UDP (QUIC) port a node listens on unless
	// told otherwise. Like IPFS's 4001 it is one fixed port for both
	// transports, so a single firewall rule opens the node.
	DefaultP2PPort = 4141

	// DefaultRPCAddr is where JSON-RPC listens: loopback only, on geth's port,
	// so wallets and scripts written for a local node find it.
	DefaultRPCAddr = "127.0.0.1:8545"

	// DefaultConnLowWater and DefaultConnHighWater are the connection
	// manager's watermarks. GossipSub keeps a mesh of D=6..D_hi=12 peers per
	// topic by default (4..8 and 8..16 with MeshDegree), asks D_lazy more
	// for gossip, and body fetches fall back to
	// other announcers; 32 leaves room for all of that with spare for
	// joining peers (Kubo keeps 32..96, Bitcoin Core 125 slots). GossipSub
	// protects its mesh peers from trimming, and the connection manager keeps
	// ConnLowWater unprotected peers besides, so a trim ends at up to
	// 32 + 2×12 = 56 connections (64 at MeshDegree 8): the high watermark
	// must clear that (Validate enforces low + 2×D_hi <= high). 64 does, and is
	// libp2p's resource-manager base limit for inbound connections.
	DefaultConnLowWater  = 32
	DefaultConnHighWater = 64
	// DefaultConnGracePeriod protects a new connection from trimming long
	// enough to identify, exchange peers and graft (GossipSub heartbeats are
	// 1 s; a PRUNE backoff is 60 s). Half of libp2p's 1 min default, because a
	// seed node that every joiner dials first must shed them sooner.
	DefaultConnGracePeriod = 30 * time.Second

	// DefaultTargetPeers is how many connections peer exchange dials towards:
	// Bitcoin Core's 8 outbound full-relay peers; a random graph of degree 8
	// has diameter 4 at 100 nodes (../shared/notes/anchors.md), and 8 > D=6
	// leaves GossipSub a choice of mesh peers. With MeshDegree set, the
	// target is at least MeshDegree+2, for the same reason.
	DefaultTargetPeers = 8

	// DefaultResourceMemory is the memory libp2p's resource manager scales its
	// limits to: 1 GiB gives 128+64 inbound connections at the system scope,
	// three times DefaultConnHighWater, and ~4k streams.
	DefaultResourceMemory = 1 << 30

	// DefaultRPCMaxBodyBytes caps one HTTP request body or WebSocket message:
	// geth's 5 MiB. A maximal transaction is ~257 KiB of hex, so a batch of
	// about twenty fits.
	DefaultRPCMaxBodyBytes = 5 << 20
	// DefaultRPCMaxBatch caps the requests in one JSON-RPC batch. geth allows
	// 1000 with a 25 MB response cap; 100 bounds the work one HTTP request
	// can queue behind others at a tenth of that.
	DefaultRPCMaxBatch = 100
	// DefaultRPCMaxWSConns caps concurrent WebSocket clients. Each holds a
	// goroutine pair and its subscriptions' buffers.
	DefaultRPCMaxWSConns = 64

	// DefaultMaxConnsPerIP caps the connections to and from one IPv4
	// address (or one IPv6 /56) at libp2p's own default of 8: enough for a
	// few nodes behind one NAT and for the dial races of a reconnect, while
	// one machine cannot take more than an eighth of DefaultConnHighWater.
	// An IPv6 /48 gets 8 times as many (libp2p's defaults too).
	DefaultMaxConnsPerIP = 8
	// ipv6Per48Factor is how many times MaxConnsPerIP one IPv6 /48 may hold:
	// libp2p's default ratio (a /48 is one site, a /56 one customer).
	ipv6Per48Factor = 8

	// DefaultColocationThreshold is how many peers may share one IP before
	// GossipSub's P6 colocation penalty applies: Prysm's 10 (Ethereum's
	// consensus layer). Below it a small NAT'd cluster is not penalized;
	// above it a Sybil farm on one address pays quadratically.
	DefaultColocationThreshold = 10
)

// meshProtected is how many connections GossipSub can protect from the
// connection manager at once with the default mesh degree: its mesh peers of
// our two topics, at most D_hi each (GossipSub's tag tracer calls
// ConnManager.Protect for mesh peers).
var meshProtected = 2 * pubsub.DefaultGossipSubParams().Dhi

// protectedMeshPeers is meshProtected for the config's MeshDegree:
// 2 topics × D_hi (an invalid degree counts as the default; Validate
// reports it).
func (c *Config) protectedMeshPeers() int {
	params, err := p2p.MeshParams(c.MeshDegree)
	if err != nil {
		return meshProtected
	}
	return 2 * params.Dhi
}

// maxBlockResponse is the largest answer the relay serves for rumor's own
// chain: one maximal block plus per-item framing, what the relay's response
// cap allows (relay.Config's MaxBlockBytes + 64 KiB).
const maxBlockResponse = chain.MaxBlockSize + 64<<10

// File names inside Config.DataDir.
const (
	// KeyFile holds the node's libp2p Ed25519 identity (protobuf, mode 0600).
	KeyFile = "node.key"
	// ChainDir holds the Badger store.
	ChainDir = "chain"
	// CookieFile holds the generated RPC bearer token when RPC is bound to a
	// non-loopback address and no token was configured (bitcoind's .cookie).
	CookieFile = "rpc.cookie"
	// DefaultMempoolFile is where the mempool is saved on Close and loaded on
	// start when Config.Mempool.PersistPath is set to a relative name.
	DefaultMempoolFile = "mempool.dat"
	// DefaultJournalFile is the own-tx journal (mempool.Journal): the txs
	// this node acknowledged over JSON-RPC, written before each answer and
	// replayed into the pool on start, so a crash does not lose them. Used
	// when Config.Mempool.JournalPath is set to a relative name; not kept
	// with InMemory.
	DefaultJournalFile = "owntx.journal"
	// BanFile holds the ban list (JSON), so bans survive a restart. It is
	// not written with InMemory, where bans last until Close.
	BanFile = "bans.json"
)

// Config configures a Node. Start from DefaultConfig; Validate fills zero
// numeric tunables with their defaults (booleans cannot be told apart from
// "off", so MDNS and PeerExchange are only defaulted by DefaultConfig).
// New copies the config; changing it afterwards has no effect.
type Config struct {
	// DataDir holds KeyFile, ChainDir, the mempool file and CookieFile. It is
	// created (mode 0700) if missing. "" is allowed only with InMemory: the
	// node then has a fresh identity each run and persists nothing.
	DataDir string `toml:"data_dir"`
	// Genesis is the chain's genesis. When nil, GenesisPath is loaded.
	Genesis *chain.Genesis `toml:"-"`
	// GenesisPath is a genesis JSON file, used when Genesis is nil.
	GenesisPath string `toml:"genesis"`
	// ChainID names the chain when the node runs a caller-supplied chain
	// (WithChain) and no genesis is given. It is ignored otherwise.
	ChainID string `toml:"chain_id"`

	// InMemory keeps the chain store in memory (tests, simulations).
	InMemory bool `toml:"in_memory"`
	// SyncWrites makes every block commit fsync (survives power loss, see
	// Badger #2000); off, a process crash still loses nothing.
	SyncWrites bool `toml:"sync_writes"`

	// ListenAddrs are libp2p multiaddrs to listen on (TCP and QUIC).
	ListenAddrs []string `toml:"listen_addrs"`
	// Bootstrap are full multiaddrs (with /p2p/<id>) dialled at start and
	// again, with backoff, while the node has fewer than half TargetPeers.
	Bootstrap []string `toml:"bootstrap"`
	// MDNS finds peers on the local network. Default on.
	MDNS bool `toml:"mdns"`
	// PeerExchange enables rumor's peer-exchange protocol (see pex.go), so
	// nodes that know one seed find each other. Default on.
	PeerExchange bool `toml:"peer_exchange"`
	// GossipPeerExchange enables GossipSub's own PRUNE peer exchange as
	// well. Default off: each PRUNE makes the pruned peer dial up to 16
	// peers regardless of the watermarks; in the 30-node discovery test it
	// drove degrees to 15-25 and kept the seed above its high watermark
	// through trim/reconnect churn, where pex alone settles near TargetPeers.
	GossipPeerExchange bool `toml:"gossip_peer_exchange"`
	// TargetPeers is how many connections peer exchange dials towards.
	// 0 = DefaultTargetPeers; with MeshDegree set, at least MeshDegree+2.
	// Must be below ConnHighWater.
	TargetPeers int `toml:"target_peers"`
	// ConnLowWater and ConnHighWater: when the node holds ConnHighWater
	// connections or more, the connection manager closes the least useful
	// until ConnLowWater remain besides GossipSub's mesh peers, which it
	// never closes. So ConnHighWater must be at least ConnLowWater +
	// meshProtected (two topics × D_hi). 0 = defaults.
	ConnLowWater  int `toml:"conn_low_water"`
	ConnHighWater int `toml:"conn_high_water"`
	// ConnGracePeriod is how long a new connection is exempt from trimming.
	// 0 = DefaultConnGracePeriod.
	ConnGracePeriod time.Duration `toml:"conn_grace_period"`
	// ResourceMemory is the memory, in bytes, libp2p's resource manager
	// scales its connection, stream and buffer limits to. 0 = default.
	ResourceMemory int64 `toml:"resource_memory"`

	// RPCAddr is the JSON-RPC listen address, host:port. Port 0 picks a free
	// port (Node.RPCAddr reports it); "" disables RPC.
	RPCAddr string `toml:"rpc_addr"`
	// RPCToken, when set, is required as "Authorization: Bearer <token>" on
	// every RPC request. When RPCAddr is not a loopback address and RPCToken
	// is empty, a random token is written to <DataDir>/rpc.cookie.
	RPCToken string `toml:"rpc_token"`
	// RPCAllowedOrigins lists the browser origins allowed to call RPC (CORS);
	// "*" allows any. Empty (default) refuses every request that carries an
	// Origin header.
	RPCAllowedOrigins []string `toml:"rpc_allowed_origins"`
	// RPCMaxBodyBytes caps a request body or WebSocket message. 0 = default.
	RPCMaxBodyBytes int64 `toml:"rpc_max_body_bytes"`
	// RPCMaxBatch caps the requests in one batch. 0 = default.
	RPCMaxBatch int `toml:"rpc_max_batch"`

	// MetricsAddr serves Prometheus /metrics on host:port, and
	// /debug/pprof/ too when host is loopback (pprof has no
	// authentication and exposes internals); "" disables it.
	MetricsAddr string `toml:"metrics_addr"`

	// ProducerKey makes the node a block producer for the heights where the
	// genesis names its public key as proposer. nil = not a producer.
	ProducerKey ed25519.PrivateKey `toml:"-"`
	// BlockRelay selects how blocks are announced. "" = relay.BlockCompact.
	BlockRelay relay.BlockMode `toml:"block_relay"`
	// TxRelay selects how transactions are gossiped: "announce" (ids over
	// GossipSub, the default), "link" (8-byte id prefixes per link to the
	// tx mesh peers, outside GossipSub) or "push" (whole txs, the
	// plain-GossipSub baseline). "" = relay.TxAnnounce.
	TxRelay relay.TxMode `toml:"tx_relay"`
	// PrefillAge is how recently this node must have first seen a tx for
	// its compact blocks to carry it whole (relay.Config.PrefillAge): 0
	// (or negative) = only txs not yet announced, the default. Longer
	// costs block bytes and spares a far node a getblocktxn round trip
	// only where its txs trail its blocks by more than a round trip.
	PrefillAge time.Duration `toml:"prefill_age"`
	// MeshDegree is GossipSub's D for both topics (p2p.MeshParams): 0 =
	// GossipSub's default, 6; 4..8 otherwise. Lower costs fewer
	// duplicate announcements and more hops.
	MeshDegree int `toml:"mesh_degree"`
	// Mempool configures the transaction pool. A relative PersistPath is
	// taken inside DataDir; "" disables persistence.
	Mempool mempool.Config `toml:"mempool"`

	// Peer scoring, bans and limits (package peers; see peers.go).

	// BanThreshold is the peer score at or below which a peer is
	// disconnected and banned. Scores are in package peers' units: a fresh
	// peer scores 0, an invalid block costs 100, an invalid tx 10 (see
	// peers.Offense). 0 = peers.DefaultBanThreshold (-200); must be negative.
	BanThreshold float64 `toml:"ban_threshold"`
	// BanDuration is how long a ban lasts. Bans are kept in
	// <DataDir>/bans.json and survive a restart (not with InMemory).
	// 0 = peers.DefaultBanDuration (24 h, Bitcoin Core's -bantime).
	BanDuration time.Duration `toml:"ban_duration"`
	// ScoreHalfLife is how fast penalties fade: a score halves every
	// ScoreHalfLife. 0 = peers.DefaultHalfLife (10 min).
	ScoreHalfLife time.Duration `toml:"score_half_life"`
	// PingInterval is how often every connected peer is pinged (libp2p
	// ping, which every rumor node serves); a peer that misses
	// peers.DefaultMaxMisses pings in a row is disconnected so discovery
	// replaces it. 0 = peers.DefaultPingInterval (15 s); negative disables
	// liveness checks.
	PingInterval time.Duration `toml:"ping_interval"`
	// PingTimeout is how long one ping may take. 0 = the smaller of
	// peers.DefaultPingTimeout (10 s) and PingInterval.
	PingTimeout time.Duration `toml:"ping_timeout"`
	// MaxConnsPerIP caps the connections, both directions, with one IPv4
	// address or one IPv6 /56 (8 times as many per /48), enforced by the
	// resource manager before the handshake. Loopback is exempt, so a local
	// testnet can run many nodes on 127.0.0.1; a testnet spread over a few
	// machines, many nodes to each address, must raise it (or disable it).
	// Not applied with WithHost. 0 = DefaultMaxConnsPerIP (8); negative =
	// no per-IP cap.
	MaxConnsPerIP int `toml:"max_conns_per_ip"`
	// ColocationThreshold is how many peers may share one IP before
	// GossipSub's IP-colocation penalty (P6) lowers their scores. 0 = auto:
	// off when every listen address is loopback (a local testnet runs every
	// node on one address), DefaultColocationThreshold (10) otherwise;
	// negative = off. Loopback peers are never penalized either way.
	ColocationThreshold int `toml:"colocation_threshold"`
	// ServeBudget sets the per-peer token buckets for requests and bytes
	// served by the request protocol; a peer over budget is answered busy
	// and penalized. Zero fields take package peers' defaults (50 req/s,
	// burst 100; 8 MiB/s, burst 16 MiB). ByteBurst must fit a maximal
	// response: one block of rumor's chain plus framing (maxBlockResponse).
	ServeBudget peers.LimiterConfig `toml:"serve_budget"`
}

// DefaultDataDir returns $HOME/.rumor, or ".rumor" when there is no home.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".rumor"
	}
	return filepath.Join(home, ".rumor")
}

// DefaultListenAddrs listens on DefaultP2PPort over TCP and QUIC, IPv4 and
// IPv6 (a family the host lacks is skipped by libp2p).
func DefaultListenAddrs() []string {
	p := DefaultP2PPort
	return []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", p),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", p),
		fmt.Sprintf("/ip6/::/tcp/%d", p),
		fmt.Sprintf("/ip6/::/udp/%d/quic-v1", p),
	}
}

// DefaultConfig returns the configuration a user running one node expects:
// data in DefaultDataDir, TCP+QUIC on DefaultP2PPort, RPC on loopback,
// mDNS and peer exchange on, metrics off, not a producer.
func DefaultConfig() Config {
	return Config{
		DataDir:         DefaultDataDir(),
		ListenAddrs:     DefaultListenAddrs(),
		MDNS:            true,
		PeerExchange:    true,
		TargetPeers:     DefaultTargetPeers,
		ConnLowWater:    DefaultConnLowWater,
		ConnHighWater:   DefaultConnHighWater,
		ConnGracePeriod: DefaultConnGracePeriod,
		ResourceMemory:  DefaultResourceMemory,
		RPCAddr:         DefaultRPCAddr,
		RPCMaxBodyBytes: DefaultRPCMaxBodyBytes,
		RPCMaxBatch:     DefaultRPCMaxBatch,
		BlockRelay:      relay.BlockCompact,
		TxRelay:         relay.TxAnnounce,
		Mempool:         mempool.DefaultConfig(),
		BanThreshold:    peers.DefaultBanThreshold,
		BanDuration:     peers.DefaultBanDuration,
		ScoreHalfLife:   peers.DefaultHalfLife,
		PingInterval:    peers.DefaultPingInterval,
		MaxConnsPerIP:   DefaultMaxConnsPerIP,
	}
}

// ErrConfig is wrapped by every error Validate returns.
var ErrConfig = errors.New("node config")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// Validate fills zero numeric tunables with defaults and rejects values and
// combinations the node cannot run with. It does not touch the disk.
func (c *Config) Validate() error {
	if c.DataDir == "" && !c.InMemory {
		return configErr("data dir is required unless in_memory is set")
	}
	if c.Genesis != nil {
		if err := c.Genesis.Validate(); err != nil {
			return configErr("genesis: %v", err)
		}
	}
	if _, err := p2p.MeshParams(c.MeshDegree); err != nil {
		return configErr("mesh_degree %d: want %d..%d, or 0 for GossipSub's default", c.MeshDegree, p2p.MinMeshDegree, p2p.MaxMeshDegree)
	}
	if c.TargetPeers == 0 {
		c.TargetPeers = DefaultTargetPeers
	}
	if c.MeshDegree > 0 {
		// A mesh needs spare peers to choose from and to gossip to.
		c.TargetPeers = max(c.TargetPeers, c.MeshDegree+2)
	}
	if c.ConnLowWater == 0 {
		c.ConnLowWater = DefaultConnLowWater
	}
	protected := c.protectedMeshPeers()
	if c.ConnHighWater == 0 {
		c.ConnHighWater = max(DefaultConnHighWater, c.ConnLowWater+protected)
	}
	if c.ConnGracePeriod == 0 {
		c.ConnGracePeriod = DefaultConnGracePeriod
	}
	if c.ResourceMemory == 0 {
		c.ResourceMemory = DefaultResourceMemory
	}
	if c.RPCMaxBodyBytes == 0 {
		c.RPCMaxBodyBytes = DefaultRPCMaxBodyBytes
	}
	if c.RPCMaxBatch == 0 {
		c.RPCMaxBatch = DefaultRPCMaxBatch
	}
	if c.BlockRelay == "" {
		c.BlockRelay = relay.BlockCompact
	}
	if c.TxRelay == "" {
		c.TxRelay = relay.TxAnnounce
	}
	if c.Mempool == (mempool.Config{}) {
		c.Mempool = mempool.DefaultConfig()
	}
	if c.BanThreshold == 0 {
		c.BanThreshold = peers.DefaultBanThreshold
	}
	if c.BanDuration == 0 {
		c.BanDuration = peers.DefaultBanDuration
	}
	if c.ScoreHalfLife == 0 {
		c.ScoreHalfLife = peers.DefaultHalfLife
	}
	if c.PingInterval == 0 {
		c.PingInterval = peers.DefaultPingInterval
	}
	if c.PingTimeout == 0 && c.PingInterval > 0 {
		c.PingTimeout = min(peers.DefaultPingTimeout, c.PingInterval)
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.ColocationThreshold == 0 {
		c.ColocationThreshold = DefaultColocationThreshold
		if allLoopback(c.ListenAddrs) {
			c.ColocationThreshold = -1
		}
	}
	switch {
	case c.TargetPeers < 0:
		return configErr("target_peers %d is negative", c.TargetPeers)
	case c.ConnLowWater < 0 || c.ConnHighWater <= c.ConnLowWater:
		return configErr("conn watermarks: want 0 <= low (%d) < high (%d)", c.ConnLowWater, c.ConnHighWater)
	case c.ConnHighWater < c.ConnLowWater+protected:
		return configErr("conn_high_water %d < conn_low_water %d + %d: GossipSub protects up to %d mesh peers from trimming, so a trim could never get below the high watermark",
			c.ConnHighWater, c.ConnLowWater, protected, protected)
	case c.TargetPeers >= c.ConnHighWater:
		return configErr("target_peers %d reaches conn_high_water %d: peer exchange would dial into trimming", c.TargetPeers, c.ConnHighWater)
	case c.ConnGracePeriod < 0:
		return configErr("conn_grace_period %v is negative", c.ConnGracePeriod)
	case c.ResourceMemory < 0:
		return configErr("resource_memory %d is negative", c.ResourceMemory)
	case c.RPCMaxBodyBytes < 0:
		return configErr("rpc_max_body_bytes %d is negative", c.RPCMaxBodyBytes)
	case c.RPCMaxBatch < 0:
		return configErr("rpc_max_batch %d is negative", c.RPCMaxBatch)
	case !(c.BanThreshold < 0) || math.IsInf(c.BanThreshold, -1):
		return configErr("ban_threshold %v: want a finite negative score", c.BanThreshold)
	case c.BanDuration < 0:
		return configErr("ban_duration %v is negative", c.BanDuration)
	case c.ScoreHalfLife < 0:
		return configErr("score_half_life %v is negative", c.ScoreHalfLife)
	case c.PingInterval > 0 && c.PingTimeout < 0:
		return configErr("ping_timeout %v is negative", c.PingTimeout)
	case c.PingInterval > 0 && c.PingInterval < time.Millisecond:
		return configErr("ping_interval %v: want at least 1ms, or negative to disable", c.PingInterval)
	case c.ServeBudget.RequestsPerSecond < 0 || c.ServeBudget.RequestBurst < 0 ||
		c.ServeBudget.BytesPerSecond < 0 || c.ServeBudget.ByteBurst < 0:
		return configErr("serve_budget %+v: negative field", c.ServeBudget)
	case math.IsNaN(c.ServeBudget.RequestsPerSecond) || math.IsNaN(c.ServeBudget.BytesPerSecond):
		return configErr("serve_budget: NaN rate")
	case c.ServeBudget.ByteBurst > 0 && c.ServeBudget.ByteBurst < maxBlockResponse:
		return configErr("serve_budget.byte_burst %d < %d: a maximal block could never be served", c.ServeBudget.ByteBurst, maxBlockResponse)
	}
	switch c.BlockRelay {
	case relay.BlockCompact, relay.BlockPull, relay.BlockPush:
	default:
		return configErr("block_relay %q: want %q, %q or %q", c.BlockRelay, relay.BlockCompact, relay.BlockPull, relay.BlockPush)
	}
	switch c.TxRelay {
	case relay.TxAnnounce, relay.TxPush, relay.TxLink:
	default:
		return configErr("tx_relay %q: want %q, %q or %q", c.TxRelay, relay.TxAnnounce, relay.TxLink, relay.TxPush)
	}
	for _, s := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			return configErr("listen addr %q: %v", s, err)
		}
	}
	if _, err := parseBootstrap(c.Bootstrap); err != nil {
		return configErr("%v", err)
	}
	if c.RPCAddr != "" {
		if err := checkHostPort(c.RPCAddr); err != nil {
			return configErr("rpc_addr: %v", err)
		}
		if !isLoopbackAddr(c.RPCAddr) && c.RPCToken == "" && c.DataDir == "" {
			return configErr("rpc_addr %s is not loopback: set rpc_token or a data dir for the cookie file", c.RPCAddr)
		}
	}
	if c.MetricsAddr != "" {
		if err := checkHostPort(c.MetricsAddr); err != nil {
			return configErr("metrics_addr: %v", err)
		}
	}
	for _, o := range c.RPCAllowedOrigins {
		if o == "" {
			return configErr("rpc_allowed_origins: empty origin")
		}
	}
	if c.ProducerKey != nil && len(c.ProducerKey) != ed25519.PrivateKeySize {
		return configErr("producer key: want %d bytes, got %d", ed25519.PrivateKeySize, len(c.ProducerKey))
	}
	if err := c.Mempool.Validate(); err != nil {
		return configErr("mempool: %v", err)
	}
	return nil
}

// parseBootstrap turns full multiaddrs into one AddrInfo per peer.
func parseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	mas := make([]ma.Multiaddr, 0, len(addrs))
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %v", s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			return nil, fmt.Errorf("bootstrap %q: want a full address ending in /p2p/<peer id>: %v", s, err)
		}
		mas = append(mas, m)
	}
	return peer.AddrInfosFromP2pAddrs(mas...)
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return err
	}
	return nil
}

// allLoopback reports whether every listen address is on a loopback IP
// (and there is at least one): the node can then only meet peers on this
// machine.
func allLoopback(addrs []string) bool {
	if len(addrs) == 0 {
		return false
	}
	for _, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return false
		}
		ip, err := manet.ToIP(m)
		if err != nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// isLoopbackAddr reports whether host:port binds only to loopback. An empty
// host or an unspecified address binds every interface.
func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
