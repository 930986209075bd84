package node

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2pconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	// connTrimInterval is how often the connection manager checks whether the
	// node is at its high watermark (libp2p's default "silence period" is
	// 10 s; a seed that every joiner dials first should shed them sooner).
	connTrimInterval = 5 * time.Second
	// resourceFDs is the file-descriptor budget the resource manager scales
	// to: half of a common 4096 soft limit, leaving the rest to Badger's
	// tables and the RPC server. The system FD limit is 90% of it.
	resourceFDs = 2048
	// inboundHeadroom multiplies ConnHighWater into the resource manager's
	// system inbound-connection floor, so connections mid-handshake and
	// those awaiting a trim are not refused before the connection manager
	// gets to choose which to keep (Kubo warns when the connection manager's
	// high watermark exceeds the resource manager's inbound limit).
	inboundHeadroom = 2
)

// UserAgent is what identify tells peers this node runs.
const UserAgent = "rumor/" + Version

// resourceLimits scales libp2p's default limits to cfg.ResourceMemory and
// resourceFDs, then raises the system and transient connection limits, if
// need be, so they clear the connection manager's high watermark.
func resourceLimits(cfg *Config) rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	concrete := scaling.Scale(cfg.ResourceMemory, resourceFDs)
	partial := concrete.ToPartialLimitConfig()
	floor := rcmgr.LimitVal(inboundHeadroom * cfg.ConnHighWater)
	for _, l := range []*rcmgr.LimitVal{&partial.System.ConnsInbound, &partial.System.Conns} {
		if *l > 0 && *l < floor { // > 0: not Unlimited, BlockAll or default
			*l = floor
		}
	}
	return partial.Build(concrete)
}

// newHost builds the node's libp2p host: TCP and QUIC, Noise and TLS, Yamux,
// the resource manager (with the per-IP connection caps), a connection
// manager with the configured watermarks and, if given, a connection gater
// (the seam for bans). limitLoopback applies the per-IP cap to loopback too
// (tests only: a local testnet runs every node on 127.0.0.1).
func newHost(cfg *Config, key crypto.PrivKey, gater connmgr.ConnectionGater, reg prometheus.Registerer, limitLoopback bool) (host.Host, error) {
	addrs := make([]ma.Multiaddr, 0, len(cfg.ListenAddrs))
	for _, s := range cfg.ListenAddrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("listen addr %q: %w", s, err)
		}
		addrs = append(addrs, a)
	}
	cm, err := libp2pconnmgr.NewConnManager(cfg.ConnLowWater, cfg.ConnHighWater,
		libp2pconnmgr.WithGracePeriod(cfg.ConnGracePeriod),
		libp2pconnmgr.WithSilencePeriod(connTrimInterval))
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	rmOpts := connLimitOptions(cfg, limitLoopback)
	if reg == nil {
		rmOpts = append(rmOpts, rcmgr.WithMetricsDisabled())
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(resourceLimits(cfg)), rmOpts...)
	if err != nil {
		cm.Close()
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(addrs...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.UserAgent(UserAgent),
		libp2p.Ping(true),
	}
	if gater != nil {
		opts = append(opts, libp2p.ConnectionGater(gater))
	}
	if reg != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(reg))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, err
	}
	return h, nil
}

// connLimitOptions returns the resource manager's per-IP connection caps:
// cfg.MaxConnsPerIP per IPv4 address and per IPv6 /56, ipv6Per48Factor
// times that per IPv6 /48. The resource manager checks them when a
// connection is opened, before any handshake, so a single host cannot fill
// the node's connection slots. Loopback keeps libp2p's exemption unless
// limitLoopback is set, in which case all of 127.0.0.0/8 (and ::1) share
// one cap.
func connLimitOptions(cfg *Config, limitLoopback bool) []rcmgr.Option {
	per := cfg.MaxConnsPerIP
	if per < 0 {
		per = math.MaxInt
	}
	per48 := per
	if per <= math.MaxInt/ipv6Per48Factor {
		per48 = per * ipv6Per48Factor
	}
	opts := []rcmgr.Option{rcmgr.WithLimitPerSubnet(
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: per}},
		[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: per}, {PrefixLength: 48, ConnCount: per48}},
	)}
	if limitLoopback {
		opts = append(opts, rcmgr.WithNetworkPrefixLimit(
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("127.0.0.0/8"), ConnCount: per}},
			[]rcmgr.NetworkPrefixLimit{{Network: netip.MustParsePrefix("::1/128"), ConnCount: per}},
		))
	}
	return opts
}

// fullAddrs returns h's listen addresses with /p2p/<id> appended: what a
// user pastes into another node's bootstrap list.
func fullAddrs(h host.Host) []ma.Multiaddr {
	out, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		return nil
	}
	return out
}
