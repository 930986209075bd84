package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	golog "github.com/ipfs/go-log/v2"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/durable"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/node/rpc"
	"github.com/rumor-relay/rumor/relay"
	"github.com/rumor-relay/rumor/relay/p2p"
	"github.com/rumor-relay/rumor/relay/transport"
)

var log = golog.Logger("rumor/node")

// Version is the node software version, reported by node_info and identify.
const Version = "0.1.0"

// mempoolExpireInterval is how often the pool drops transactions past their
// TTL (the pool's doc: a minute is plenty against a 3 h TTL).
const mempoolExpireInterval = time.Minute

// promoteQueue bounds the batches of promoted transaction ids waiting to be
// announced. A batch is one Add's promotions (at most a sender's queue); the
// loop drains a batch in microseconds, so 1024 absorbs any burst the pool's
// lock lets through. A full queue drops the batch: those txs then travel
// only inside blocks or by mempool sync.
const promoteQueue = 1024

// Option configures what New cannot take from a Config: objects, not settings.
type Option func(*options)

type options struct {
	host        host.Host
	chain       relay.Chain
	pool        relay.TxPool
	gater       connmgr.ConnectionGater
	relayOpts   []relay.Option
	relayConfig func(*relay.Config)
	// limitLoopback applies MaxConnsPerIP to loopback connections too
	// (tests of the per-IP cap; set from test files only).
	limitLoopback bool
	inprocRPC     bool
	cpu           *CPUModel
	sigs          *mempool.SigCache
	gossipTopics  []string
	loss          *messageLoss
	memDir        *MemDataDir
}

// WithGossipTopics lets other subsystems join these GossipSub topics on
// the node's router (Node.PubSub). GossipSub keeps peers' subscriptions
// only to the relay's topics and these: junk topics cost no memory.
func WithGossipTopics(topics ...string) Option {
	return func(o *options) { o.gossipTopics = append(o.gossipTopics, topics...) }
}

// WithSharedSigCache lets the node's mempool skip signatures another node
// in this process already verified (a simulated network: the host's CPU
// verifies each tx once, not once per node). What the node would pay for
// the verification is still charged by its CPU model.
func WithSharedSigCache(c *mempool.SigCache) Option { return func(o *options) { o.sigs = c } }

// WithInProcessRPC serves JSON-RPC without a listener: Node.RPCHandler
// returns the HTTP handler, for a caller in the same process (a simulated
// testnet in virtual time, where no real socket may be used). Config.RPCAddr
// is ignored; no cookie is written (the caller is trusted).
func WithInProcessRPC() Option {
	return func(o *options) { o.inprocRPC = true }
}

// WithHost runs the node on a caller-provided libp2p host (a mocknet or
// simnet host in simulations). The node does not close it, and the host's
// own transports, connection manager and resource manager apply: the
// ListenAddrs, watermark and resource settings of the Config are ignored.
func WithHost(h host.Host) Option { return func(o *options) { o.host = h } }

// WithChain runs the relay over a caller-supplied chain and pool instead of
// rumor's own store and mempool: the embedding API. The node then opens no
// store, produces no blocks, and its RPC offers only the chain-independent
// methods (tx_send, node_info, net_*, measure_*). Config.ChainID names the
// chain unless a genesis is given.
func WithChain(c relay.Chain, p relay.TxPool) Option {
	return func(o *options) { o.chain, o.pool = c, p }
}

// WithConnectionGater adds a libp2p connection gater to the node's own host.
// The node always installs its ban gater; a connection must pass both.
func WithConnectionGater(g connmgr.ConnectionGater) Option {
	return func(o *options) { o.gater = g }
}

// WithRelayOptions passes options through to relay.New (loggers, metrics,
// hooks). They apply after the node's own, so a penalty hook or serve budget
// given here replaces the node's peer scoring.
func WithRelayOptions(opts ...relay.Option) Option {
	return func(o *options) { o.relayOpts = append(o.relayOpts, opts...) }
}

// WithRelayConfig lets the caller adjust the relay's configuration after the
// node has filled in the chain id and block mode (timeouts, batch window).
func WithRelayConfig(fn func(*relay.Config)) Option {
	return func(o *options) { o.relayConfig = fn }
}

// Node is one rumor node: a libp2p host, the relay, discovery, the chain
// store and mempool (or a caller's chain and pool), the block producer, the
// JSON-RPC server and the metrics endpoint.
//
// New opens the data dir (key, store, pool); Start brings up the network and
// servers; Close takes everything down in reverse order, store last. Start
// and Close are idempotent and safe to call from any goroutine.
type Node struct {
	cfg     Config
	opts    options
	genesis *chain.Genesis // nil when embedding without a genesis
	chainID string
	key     crypto.PrivKey

	store *store.Store  // nil when embedding
	pool  *mempool.Pool // nil when embedding
	// sigs holds the ids of txs whose signatures verified: the pool's
	// cache, filled ahead by RPC batches (prepareTxs). Nil when embedding.
	sigs    *mempool.SigCache
	adapter *chainAdapter // nil when embedding
	feed    *rpc.Feed
	prod    *producer // nil unless a producer
	peers   *peerPolicy

	host      host.Host
	ownsHost  bool
	transport *p2p.Transport // the relay's GossipSub and streams on host
	relay     *relay.Relay
	pex       *pex
	boot      *bootstrapper
	mdns      *mdnsDiscovery
	rpc       *rpc.Server
	own       *ownTxs // own txs: journal and delivery tracking; nil when embedding
	metrics   *metricsServer
	registry  *prometheus.Registry

	cookiePath string
	promoted   chan []chain.Hash // promoted tx ids to announce

	ctx    context.Context // the node's lifetime
	cancel context.CancelFunc
	wg     sync.WaitGroup // background loops

	mu        sync.Mutex
	started   bool
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, loads the genesis and the node key, and opens the store
// and mempool in the data dir. It starts no goroutines and binds no ports.
func New(cfg Config, opts ...Option) (*Node, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if (o.chain == nil) != (o.pool == nil) {
		return nil, errors.New("node: WithChain needs both a chain and a pool")
	}
	cfg.ListenAddrs = append([]string(nil), cfg.ListenAddrs...)
	cfg.Bootstrap = append([]string(nil), cfg.Bootstrap...)
	cfg.RPCAllowedOrigins = append([]string(nil), cfg.RPCAllowedOrigins...)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	embedded := o.chain != nil
	n := &Node{cfg: cfg, opts: o, feed: rpc.NewFeed()}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	switch {
	case cfg.Genesis != nil:
		g := *cfg.Genesis // ours: FillDefaults must not touch the caller's
		n.genesis = &g
	case cfg.GenesisPath != "":
		g, err := chain.LoadGenesis(cfg.GenesisPath)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		n.genesis = g
	case !embedded:
		return nil, fmt.Errorf("%w: a genesis (value or path) is required", ErrConfig)
	}
	if n.genesis != nil {
		n.genesis.FillDefaults()
		if err := n.genesis.Validate(); err != nil {
			return nil, fmt.Errorf("%w: genesis: %v", ErrConfig, err)
		}
		n.chainID = n.genesis.ChainID
	} else {
		if cfg.ChainID == "" {
			return nil, fmt.Errorf("%w: WithChain without a genesis needs Config.ChainID", ErrConfig)
		}
		n.chainID = cfg.ChainID
	}

	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("node: data dir: %w", err)
		}
	}
	if o.host == nil {
		var err error
		if cfg.DataDir != "" {
			n.key, err = loadOrCreateKey(filepath.Join(cfg.DataDir, KeyFile))
		} else {
			n.key, _, err = crypto.GenerateEd25519Key(rand.Reader)
		}
		if err != nil {
			return nil, err
		}
	}
	pp, err := newPeerPolicy(&n.cfg)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.peers = pp
	if embedded {
		return n, nil
	}

	var st *store.Store
	if o.memDir != nil {
		if cfg.DataDir != "" {
			pp.close()
			return nil, fmt.Errorf("%w: a memory data dir and a data dir on disk", ErrConfig)
		}
		st = o.memDir.store
		if st.GenesisID() != n.genesis.ID() {
			pp.close()
			return nil, fmt.Errorf("%w: the memory data dir holds another genesis", ErrConfig)
		}
	} else {
		dir := ""
		if !cfg.InMemory {
			dir = filepath.Join(cfg.DataDir, ChainDir)
		}
		var err error
		if st, err = store.Open(n.genesis, store.Options{Dir: dir, SyncWrites: cfg.SyncWrites}); err != nil {
			pp.close()
			return nil, fmt.Errorf("node: store: %w", err)
		}
	}
	n.store = st
	closeStore := func() {
		if o.memDir == nil {
			st.Close()
		}
	}
	mcfg := cfg.Mempool
	if mcfg.PersistPath != "" && !filepath.IsAbs(mcfg.PersistPath) {
		if cfg.DataDir == "" {
			mcfg.PersistPath = ""
		} else {
			mcfg.PersistPath = filepath.Join(cfg.DataDir, mcfg.PersistPath)
		}
	}
	n.cfg.Mempool = mcfg
	n.sigs = n.opts.sigs
	if n.sigs == nil {
		n.sigs = mempool.NewSigCache(rpcSigCacheSize)
	}
	n.pool, err = mempool.New(mcfg, n.genesis, st, mempool.WithSigCache(n.sigs))
	if err != nil {
		closeStore()
		pp.close()
		return nil, fmt.Errorf("node: mempool: %w", err)
	}
	if mcfg.PersistPath != "" {
		k, err := n.pool.Load(mcfg.PersistPath, time.Now())
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			log.Warnw("mempool file not loaded", "path", mcfg.PersistPath, "err", err)
		default:
			log.Infow("mempool loaded", "path", mcfg.PersistPath, "txs", k)
		}
	}
	n.adapter = &chainAdapter{g: n.genesis, store: st, pool: n.pool, now: time.Now, cpu: newCPU(o.cpu)}
	n.adapter.onHead = n.onHead
	n.adapter.onPending = func(id chain.Hash) { n.feed.Publish(rpc.TopicNewPendingTxs, id) }
	n.promoted = make(chan []chain.Hash, promoteQueue)
	n.adapter.onPromoted = func(ids []chain.Hash) {
		select {
		case n.promoted <- ids:
		default:
			log.Warnw("promoted-tx queue full; not announcing", "txs", len(ids))
		}
	}
	n.adapter.start() // hooks set: the importer may call them from now on
	if cfg.ProducerKey != nil {
		n.prod = newProducer(n.genesis, cfg.ProducerKey, st, n.pool, n.adapter)
		if !n.genesis.IsAuthority(n.prod.addr) {
			log.Warnw("producer key is not a genesis authority: this node will never produce", "address", n.prod.addr)
		}
	}
	return n, nil
}

// onHead runs (on the adapter's importer) for each block joining the best
// chain: publish it to subscribers and wake the producer.
func (n *Node) onHead(h *chain.Header, id chain.Hash) {
	n.feed.Publish(rpc.TopicNewHeads, rpc.NewHeaderJSON(h, id))
	if n.prod != nil {
		n.prod.wake()
	}
}

// Start brings the node up: the host (unless WithHost), the relay with
// GossipSub, peer exchange, bootstrap dialling, mDNS, the RPC and metrics
// servers, the block producer. ctx bounds start-up only; the node runs until
// Close. If Start fails, the node is closed. Calling Start again is a no-op.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.New("node: closed")
	}
	if n.started {
		n.mu.Unlock()
		return nil
	}
	n.started = true
	n.mu.Unlock()
	if err := n.start(ctx); err != nil {
		n.Close()
		return err
	}
	return nil
}

func (n *Node) start(ctx context.Context) error {
	cfg := &n.cfg
	if err := ctx.Err(); err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		n.registry = prometheus.NewRegistry()
		n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if n.opts.host != nil {
		n.host = n.opts.host
	} else {
		var reg prometheus.Registerer
		if n.registry != nil {
			reg = n.registry
		}
		h, err := newHost(cfg, n.key, n.peers.hostGater(n.opts.gater), reg, n.opts.limitLoopback)
		if err != nil {
			return fmt.Errorf("node: host: %w", err)
		}
		n.host, n.ownsHost = h, true
	}

	// Peer policy: scores, bans, budgets, liveness.
	if n.registry != nil {
		n.peers.metrics = newPeerMetrics(n.registry)
	}
	n.peers.start(n.ctx, n.host, &n.wg)

	// The relay.
	rcfg := relay.DefaultConfig(n.chainID)
	rcfg.BlockMode = cfg.BlockRelay
	rcfg.TxMode = cfg.TxRelay
	rcfg.PrefillAge = cfg.PrefillAge
	if n.adapter != nil {
		// Rumor's own chain: its consensus limits are the relay's. An
		// embedder sets its chain's in WithRelayConfig.
		rcfg.MaxTxBytes, rcfg.MaxBlockBytes, rcfg.MaxBlockTxs = chain.MaxTxSize, chain.MaxBlockSize, chain.MaxBlockTxs
	}
	if n.opts.relayConfig != nil {
		n.opts.relayConfig(&rcfg)
	}
	ropts, psOpts := n.peers.relayOptions(rcfg.TxTopic(), rcfg.BlockTopic())
	psOpts = append([]pubsub.Option{pubsub.WithPeerExchange(cfg.GossipPeerExchange)}, psOpts...)
	if n.opts.loss != nil {
		psOpts = append(psOpts, n.opts.loss.option())
	}
	tr, err := p2p.New(n.host, p2p.Config{
		MaxMessageSize: rcfg.MaxGossipMessageSize,
		MeshDegree:     cfg.MeshDegree,
		PubSubOptions:  psOpts,
		Topics:         append([]string{rcfg.TxTopic(), rcfg.BlockTopic()}, n.opts.gossipTopics...),
		// An RPC over the cap is over a protocol limit: an oversize frame.
		OnSubscriptionFlood: func(p peer.ID) { n.peers.penalize(p, relay.OffenseOversize) },
	})
	if err != nil {
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	n.transport = tr
	if n.registry != nil {
		ropts = append(ropts, relay.WithMetrics(relay.NewMetrics(n.registry)))
	}
	if n.pool != nil {
		// Own txs (tx_send's) are tracked until peers hold them: the
		// relay tells which peers hold which txs. Before the caller's
		// options, so a caller's own hook replaces this one.
		n.own = newOwnTxs(n.ctx, n.pool)
		ropts = append(ropts, relay.WithTxHeldHook(n.own.noteHeld))
	}
	ropts = append(ropts, n.opts.relayOpts...)
	var (
		rc relay.Chain
		rp relay.TxPool
	)
	if n.adapter != nil {
		rc, rp = n.adapter, n.adapter
	} else {
		rc, rp = n.opts.chain, n.opts.pool
	}
	r, err := relay.New(tr, rc, rp, rcfg, ropts...)
	if err != nil {
		return fmt.Errorf("node: relay: %w", err)
	}
	n.relay = r
	if err := r.Start(n.ctx); err != nil {
		return fmt.Errorf("node: relay: %w", err)
	}

	// Own txs: replayed before RPC takes new ones, announced by the
	// relay just started, tracked by their loop from now.
	if n.own != nil {
		jc, keep := cfg.journalConfig(n.pool, n.opts.memDir)
		if err := n.own.open(jc, keep, n.store, r); err != nil {
			return err
		}
		n.own.start(&n.wg)
	}

	// Discovery.
	if cfg.PeerExchange {
		n.pex = newPex(n.host, n.chainID, cfg.TargetPeers)
		if err := n.pex.start(); err != nil {
			n.pex = nil
			return err
		}
	}
	boot, _ := parseBootstrap(cfg.Bootstrap) // validated by Config.Validate
	n.boot = newBootstrapper(n.host, boot, max(1, cfg.TargetPeers/2))
	n.boot.start()
	if cfg.MDNS {
		d, err := startMDNS(n.host)
		if err != nil {
			log.Warnw("mDNS not started", "err", err) // e.g. no multicast interface
		} else {
			n.mdns = d
		}
	}

	// Servers.
	if cfg.RPCAddr != "" || n.opts.inprocRPC {
		if err := n.startRPC(); err != nil {
			return err
		}
	}
	if n.registry != nil {
		n.registerNodeMetrics()
		m, err := startMetrics(cfg.MetricsAddr, n.registry)
		if err != nil {
			return err
		}
		n.metrics = m
	}

	// Loops.
	if n.prod != nil {
		n.prod.start(r.PublishBlock)
	}
	if n.pool != nil {
		n.wg.Add(2)
		go n.expireLoop()
		go n.promoteLoop()
	}

	addrs := make([]string, 0)
	for _, a := range n.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Infow("rumor node started", "peer_id", n.host.ID().String(), "addrs", addrs,
		"chain_id", n.chainID, "block_relay", cfg.BlockRelay, "rpc", n.RPCAddr(), "producer", n.prod != nil)
	return nil
}

func (n *Node) startRPC() error {
	cfg := &n.cfg
	token := cfg.RPCToken
	if token == "" && !isLoopbackAddr(cfg.RPCAddr) && !n.opts.inprocRPC {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return fmt.Errorf("node: rpc cookie: %w", err)
		}
		token = hex.EncodeToString(raw[:])
		n.cookiePath = filepath.Join(cfg.DataDir, CookieFile)
		if err := durable.WriteFile(n.cookiePath, []byte(token), keyFileMode); err != nil {
			n.cookiePath = ""
			return fmt.Errorf("node: rpc cookie: %w", err)
		}
		log.Infow("RPC is bound beyond loopback: bearer token required", "cookie", n.cookiePath)
	}
	b := rpc.Backend{
		ChainID:    n.chainID,
		Version:    Version,
		BlockRelay: string(cfg.BlockRelay),
		Host:       n.host,
		Relay:      n.rpcRelay(),
		Stats:      func() any { return n.relay.Stats() },
		Mesh:       n.meshSnapshot,
		Feed:       n.feed,
		PeerScore: func(p peer.ID) rpc.PeerScore {
			bd := n.PeerScore(p)
			gs, _ := n.GossipScore(p)
			return rpc.PeerScore{Score: bd.Score, Offenses: bd.Offenses, GossipScore: gs}
		},
		Bans: func() []rpc.Ban {
			list := n.Bans()
			out := make([]rpc.Ban, len(list))
			for i, b := range list {
				out[i] = rpc.Ban{Peer: b.Peer, Until: b.Until, Reason: b.Reason}
			}
			return out
		},
	}
	if n.own != nil {
		b.OwnTx = n.own.status
	}
	if n.pool != nil {
		b.PrepareTxs = n.prepareTxs
	}
	if n.store != nil {
		b.Chain, b.Pool = n.store, n.pool
		b.Tip = func() (uint64, chain.Hash) { h, id := n.store.Tip(); return h.Height, id }
	} else {
		b.Tip = func() (uint64, chain.Hash) { h, id := n.opts.chain.Tip(); return h, chain.Hash(id) }
	}
	srv, err := rpc.New(rpc.Config{
		Addr:           cfg.RPCAddr,
		Token:          token,
		AllowedOrigins: cfg.RPCAllowedOrigins,
		MaxBodyBytes:   cfg.RPCMaxBodyBytes,
		MaxBatch:       cfg.RPCMaxBatch,
		MaxWSConns:     DefaultRPCMaxWSConns,
	}, b)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if !n.opts.inprocRPC {
		if err := srv.Start(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
	}
	n.rpc = srv
	return nil
}

// rpcSigCacheSize bounds the ids of verified txs the pool remembers when
// no cache is shared (a process node): enough for a few thousand RPC
// batches in flight between their check and their add, about 400 KiB.
const rpcSigCacheSize = 1 << 13

// prepareTxs checks the signatures of a JSON-RPC batch's transactions
// together (chain.VerifyTxSigs) and records those that verified in the
// pool's signature cache, so that each tx_send call of the batch, run
// next, skips its own check. Bodies that do not decode are left to the
// calls to refuse.
func (n *Node) prepareTxs(bodies [][]byte) {
	txs := make([]*chain.Tx, 0, len(bodies))
	ids := make([]chain.Hash, 0, len(bodies))
	for _, b := range bodies {
		tx, err := chain.DecodeTx(b)
		if err != nil {
			continue
		}
		id := sha256.Sum256(b) // the tx id: the encoding is canonical
		if n.pool.Has(id) || n.sigs.Has(id) {
			continue
		}
		txs = append(txs, tx)
		ids = append(ids, id)
	}
	for i, ok := range chain.VerifyTxSigs(n.genesis.ChainID, txs) {
		if ok {
			n.sigs.Add(ids[i])
		}
	}
}

// rpcRelay is where RPC submissions go: through ownTxs (journal and
// delivery tracking) with rumor's pool, straight to the relay otherwise.
func (n *Node) rpcRelay() rpc.Relay {
	if n.own != nil {
		return n.own
	}
	return n.relay
}

// RPCHandler returns the JSON-RPC HTTP handler (POST / and WebSocket
// /ws), or nil when RPC is off. With WithInProcessRPC it is the only way in.
func (n *Node) RPCHandler() http.Handler {
	if n.rpc == nil {
		return nil
	}
	return n.rpc.Handler()
}

func (n *Node) expireLoop() {
	defer n.wg.Done()
	t := time.NewTicker(mempoolExpireInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case now := <-t.C:
			if ids := n.pool.Expire(now); len(ids) > 0 {
				log.Debugw("mempool expired txs", "count", len(ids))
			}
		}
	}
}

// promoteLoop announces transactions the pool promoted from its queue (a
// later nonce filled their gap). A queued tx was not announced when it
// arrived (it could not be mined); once it is executable here the relay
// announces it (Relay.Announce). Without this a tx that reached a node
// ahead of its predecessor would stay there. It runs apart from the pool's
// callback, which must not block on the relay's batcher.
func (n *Node) promoteLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case ids := <-n.promoted:
			rids := make([]relay.ID, len(ids))
			for i, id := range ids {
				rids[i] = relay.ID(id)
			}
			if k := n.relay.Announce(rids); k < len(rids) {
				log.Debugw("promoted txs not all announced (no longer pending)", "promoted", len(rids), "announced", k)
			}
		}
	}
}

// Close stops everything Start started, in reverse order, saves the mempool
// if persistence is on, and closes the store last. It is idempotent and
// returns the first error met (all steps run regardless).
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		var errs []error
		n.cancel()
		if n.prod != nil {
			n.prod.stop()
		}
		n.wg.Wait()
		if n.peers != nil {
			n.peers.stop()
		}
		if n.rpc != nil {
			errs = append(errs, n.rpc.Close())
		}
		if n.own != nil { // after RPC: no Append in flight
			errs = append(errs, n.own.close())
		}
		if n.metrics != nil {
			errs = append(errs, n.metrics.close())
		}
		if n.mdns != nil {
			errs = append(errs, n.mdns.close())
		}
		if n.boot != nil {
			n.boot.close()
		}
		if n.pex != nil {
			n.pex.close()
		}
		if n.relay != nil {
			errs = append(errs, n.relay.Close())
		}
		if n.adapter != nil { // after the relay and the producer: nothing adds blocks now
			n.adapter.stop()
		}
		if n.transport != nil {
			errs = append(errs, n.transport.Close())
		}
		if n.ownsHost && n.host != nil {
			errs = append(errs, n.host.Close())
		}
		if n.peers != nil {
			errs = append(errs, n.peers.close())
		}
		if n.pool != nil && n.cfg.Mempool.PersistPath != "" {
			if err := n.pool.Save(n.cfg.Mempool.PersistPath); err != nil {
				errs = append(errs, fmt.Errorf("mempool save: %w", err))
			}
		}
		if n.store != nil && n.opts.memDir == nil { // a memory data dir outlives the node
			errs = append(errs, n.store.Close())
		}
		if n.cookiePath != "" {
			_ = os.Remove(n.cookiePath)
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Host returns the libp2p host (nil before Start).
func (n *Node) Host() host.Host { return n.host }

// ID returns the node's peer id (empty before Start with WithHost).
func (n *Node) ID() peer.ID {
	if n.host != nil {
		return n.host.ID()
	}
	if n.key != nil {
		id, _ := peer.IDFromPrivateKey(n.key)
		return id
	}
	return ""
}

// Relay returns the relay (nil before Start).
func (n *Node) Relay() *relay.Relay { return n.relay }

// Store returns rumor's block store (nil when embedding).
func (n *Node) Store() *store.Store { return n.store }

// Pool returns rumor's mempool (nil when embedding).
func (n *Node) Pool() *mempool.Pool { return n.pool }

// Genesis returns the genesis (nil when embedding without one).
func (n *Node) Genesis() *chain.Genesis { return n.genesis }

// ChainID returns the chain id the node relays for.
func (n *Node) ChainID() string { return n.chainID }

// Config returns the node's configuration, defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// RPCAddr returns the bound JSON-RPC address, host:port ("" when off or
// before Start).
func (n *Node) RPCAddr() string {
	if n.rpc == nil {
		return ""
	}
	return n.rpc.Addr()
}

// RPCCookiePath returns the generated token file ("" when none was made).
func (n *Node) RPCCookiePath() string { return n.cookiePath }

// MetricsAddr returns the bound metrics address ("" when off).
func (n *Node) MetricsAddr() string {
	if n.metrics == nil {
		return ""
	}
	return n.metrics.addr()
}

// Addrs returns the node's listen addresses with /p2p/<id>: what another
// node's Bootstrap takes.
func (n *Node) Addrs() []ma.Multiaddr {
	if n.host == nil {
		return nil
	}
	return fullAddrs(n.host)
}

// MeshPeers returns this node's GossipSub mesh peers for the tx and block
// topics, as the router's own Graft/Prune/peer-down trace reports them (the
// transport's RawTracer). This is the mesh, not PubSub.ListPeers, which
// lists every connected peer subscribed to a topic whether or not it is in
// the mesh.
func (n *Node) MeshPeers() (tx, block []peer.ID) {
	if n.relay == nil {
		return nil, nil
	}
	t, b := n.relay.MeshPeers()
	return libp2pIDs(t), libp2pIDs(b)
}

// Transport returns the transport the relay runs on (nil before Start):
// an embedder's own topics and request protocols share the node's
// GossipSub router, peers and limits through it.
func (n *Node) Transport() transport.Transport {
	if n.transport == nil {
		return nil
	}
	return n.transport
}

// PubSub returns the GossipSub router the relay runs on (nil before
// Start): peer scores, topic peers, other subsystems' topics (given to
// WithGossipTopics).
func (n *Node) PubSub() *pubsub.PubSub {
	if n.transport == nil {
		return nil
	}
	return n.transport.PubSub()
}

// libp2pIDs converts relay peer ids back to libp2p's, dropping any that do
// not parse (none do on the p2p transport).
func libp2pIDs(ps []relay.PeerID) []peer.ID {
	out := make([]peer.ID, 0, len(ps))
	for _, p := range ps {
		if id, ok := p2p.PeerOf(p); ok {
			out = append(out, id)
		}
	}
	return out
}

func (n *Node) meshSnapshot() map[string][]peer.ID {
	tx, block := n.MeshPeers()
	txTopic, blockTopic := n.Topics()
	return map[string][]peer.ID{txTopic: tx, blockTopic: block}
}

// Topics returns the relay's transaction and block topic names.
func (n *Node) Topics() (tx, block string) {
	c := relay.DefaultConfig(n.chainID)
	return c.TxTopic(), c.BlockTopic()
}

// Feed returns the event feed behind the RPC subscriptions (new heads, new
// pending txs), for in-process consumers.
func (n *Node) Feed() *rpc.Feed { return n.feed }
