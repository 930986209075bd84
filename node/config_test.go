package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-relay/rumor/peers"
	"github.com/rumor-relay/rumor/relay"
)

func TestConfigValidate(t *testing.T) {
	g := testGenesis(time.Second)
	base := func() Config {
		c := DefaultConfig()
		c.DataDir = "/tmp/rumor-x"
		c.Genesis = g
		return c
	}
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	peerAddr := "/ip4/1.2.3.4/tcp/4141/p2p/" + pid.String()
	cases := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"in memory without data dir", func(c *Config) { c.DataDir = ""; c.InMemory = true }, ""},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data dir"},
		{"bad listen addr", func(c *Config) { c.ListenAddrs = []string{"/ip4/1.2.3.4/tcpx/1"} }, "listen addr"},
		{"bootstrap ok", func(c *Config) { c.Bootstrap = []string{peerAddr} }, ""},
		{"bootstrap without peer id", func(c *Config) { c.Bootstrap = []string{"/ip4/1.2.3.4/tcp/4141"} }, "/p2p/"},
		{"bootstrap garbage", func(c *Config) { c.Bootstrap = []string{"seed.example.com:4141"} }, "bootstrap"},
		{"watermarks inverted", func(c *Config) { c.ConnLowWater, c.ConnHighWater = 50, 40 }, "watermarks"},
		{"watermarks equal", func(c *Config) { c.ConnLowWater, c.ConnHighWater = 40, 40 }, "watermarks"},
		{"high water below low plus mesh", func(c *Config) { c.ConnLowWater, c.ConnHighWater = 10, 16 }, "protects"},
		{"high water at low plus mesh", func(c *Config) { c.ConnLowWater, c.ConnHighWater = 4, 4+meshProtected }, ""},
		{"mesh degree 4", func(c *Config) { c.MeshDegree = 4 }, ""},
		{"mesh degree 2", func(c *Config) { c.MeshDegree = 2 }, "mesh_degree"},
		{"mesh degree 9", func(c *Config) { c.MeshDegree = 9 }, "mesh_degree"},
		// Degree 8 protects 2 topics × 16 mesh peers: 4 + 24 is too few.
		{"high water below low plus a wider mesh", func(c *Config) { c.MeshDegree, c.ConnLowWater, c.ConnHighWater = 8, 4, 4+meshProtected }, "protects"},
		{"default watermarks fit the widest mesh", func(c *Config) { c.MeshDegree = 8 }, ""},
		{"mesh degree 3", func(c *Config) { c.MeshDegree = 3 }, "mesh_degree"},
		{"target reaches high water", func(c *Config) { c.TargetPeers = 64 }, "target_peers"},
		{"target above low water", func(c *Config) { c.TargetPeers, c.ConnLowWater = 40, 20 }, ""},
		{"negative target", func(c *Config) { c.TargetPeers = -1 }, "target_peers"},
		{"negative grace", func(c *Config) { c.ConnGracePeriod = -time.Second }, "grace"},
		{"negative resource memory", func(c *Config) { c.ResourceMemory = -1 }, "resource_memory"},
		{"bad block relay", func(c *Config) { c.BlockRelay = "flood" }, "block_relay"},
		{"pull block relay", func(c *Config) { c.BlockRelay = relay.BlockPull }, ""},
		{"rpc off", func(c *Config) { c.RPCAddr = "" }, ""},
		{"rpc no port", func(c *Config) { c.RPCAddr = "127.0.0.1" }, "rpc_addr"},
		{"rpc bad port", func(c *Config) { c.RPCAddr = "127.0.0.1:http-x" }, "rpc_addr"},
		{"rpc public with data dir", func(c *Config) { c.RPCAddr = "0.0.0.0:8545" }, ""},
		{"rpc public without data dir or token", func(c *Config) {
			c.RPCAddr, c.DataDir, c.InMemory = "0.0.0.0:8545", "", true
		}, "not loopback"},
		{"rpc public with token", func(c *Config) {
			c.RPCAddr, c.DataDir, c.InMemory, c.RPCToken = ":8545", "", true, "s3cret"
		}, ""},
		{"negative body limit", func(c *Config) { c.RPCMaxBodyBytes = -1 }, "rpc_max_body_bytes"},
		{"negative batch", func(c *Config) { c.RPCMaxBatch = -1 }, "rpc_max_batch"},
		{"empty origin", func(c *Config) { c.RPCAllowedOrigins = []string{""} }, "origin"},
		{"metrics bad", func(c *Config) { c.MetricsAddr = "localhost" }, "metrics_addr"},
		{"metrics ok", func(c *Config) { c.MetricsAddr = "127.0.0.1:0" }, ""},
		{"producer key short", func(c *Config) { c.ProducerKey = make(ed25519.PrivateKey, 10) }, "producer key"},
		{"producer key ok", func(c *Config) { c.ProducerKey = authorityKey() }, ""},
		{"bad genesis", func(c *Config) { gg := *g; gg.ChainID = ""; c.Genesis = &gg }, "genesis"},
		{"bad mempool", func(c *Config) { c.Mempool.MaxTxs = -5 }, "mempool"},
		{"positive ban threshold", func(c *Config) { c.BanThreshold = 10 }, "ban_threshold"},
		{"NaN ban threshold", func(c *Config) { c.BanThreshold = math.NaN() }, "ban_threshold"},
		{"infinite ban threshold", func(c *Config) { c.BanThreshold = math.Inf(-1) }, "ban_threshold"},
		{"custom ban threshold", func(c *Config) { c.BanThreshold = -500 }, ""},
		{"negative ban duration", func(c *Config) { c.BanDuration = -time.Hour }, "ban_duration"},
		{"negative half-life", func(c *Config) { c.ScoreHalfLife = -time.Minute }, "score_half_life"},
		{"pings off", func(c *Config) { c.PingInterval = -1 }, ""},
		{"ping interval too fine", func(c *Config) { c.PingInterval = time.Microsecond }, "ping_interval"},
		{"negative ping timeout", func(c *Config) { c.PingTimeout = -time.Second }, "ping_timeout"},
		{"no per-IP cap", func(c *Config) { c.MaxConnsPerIP = -1 }, ""},
		{"negative serve budget", func(c *Config) { c.ServeBudget.RequestBurst = -1 }, "serve_budget"},
		{"byte burst below a block", func(c *Config) { c.ServeBudget.ByteBurst = 1 << 20 }, "byte_burst"},
		{"byte burst fits a block", func(c *Config) { c.ServeBudget.ByteBurst = 32 << 20 }, ""},
		{"byte burst of the peers default fits a block", func(c *Config) { c.ServeBudget.ByteBurst = 16 << 20 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("want error containing %q, got nil", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("want error containing %q, got %v", tc.wantErr, err)
			case err != nil && !errors.Is(err, ErrConfig):
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestConfigValidateFillsZeroTunables(t *testing.T) {
	c := Config{InMemory: true}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.TargetPeers != DefaultTargetPeers || c.ConnLowWater != DefaultConnLowWater ||
		c.ConnHighWater != DefaultConnHighWater || c.ConnGracePeriod != DefaultConnGracePeriod ||
		c.RPCMaxBodyBytes != DefaultRPCMaxBodyBytes || c.RPCMaxBatch != DefaultRPCMaxBatch ||
		c.ResourceMemory != DefaultResourceMemory || c.BlockRelay != relay.BlockCompact {
		t.Fatalf("zero tunables not defaulted: %+v", c)
	}
}

func TestConfigPeerDefaults(t *testing.T) {
	c := Config{InMemory: true}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.BanThreshold != peers.DefaultBanThreshold || c.BanDuration != peers.DefaultBanDuration ||
		c.ScoreHalfLife != peers.DefaultHalfLife || c.PingInterval != peers.DefaultPingInterval ||
		c.PingTimeout != peers.DefaultPingTimeout || c.MaxConnsPerIP != DefaultMaxConnsPerIP {
		t.Fatalf("peer tunables not defaulted: %+v", c)
	}
	// Colocation: auto is off on an all-loopback node, on otherwise;
	// explicit values stay.
	for _, tc := range []struct {
		listen []string
		set    int
		want   int
	}{
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}, 0, -1},
		{[]string{"/ip4/127.0.0.1/tcp/0", "/ip4/0.0.0.0/tcp/0"}, 0, DefaultColocationThreshold},
		{DefaultListenAddrs(), 0, DefaultColocationThreshold},
		{nil, 0, DefaultColocationThreshold},
		{[]string{"/ip4/127.0.0.1/tcp/0"}, 3, 3},
		{DefaultListenAddrs(), -1, -1},
	} {
		c := Config{InMemory: true, ListenAddrs: tc.listen, ColocationThreshold: tc.set}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if c.ColocationThreshold != tc.want {
			t.Errorf("listen %v, set %d: colocation threshold %d, want %d", tc.listen, tc.set, c.ColocationThreshold, tc.want)
		}
	}
	// A short ping interval pulls the timeout down with it.
	c = Config{InMemory: true, PingInterval: time.Second}
	if err := c.Validate(); err != nil || c.PingTimeout != time.Second {
		t.Fatalf("ping timeout %v (%v)", c.PingTimeout, err)
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8545": true, "127.8.9.1:1": true, "[::1]:8545": true, "localhost:8545": true,
		"0.0.0.0:8545": false, ":8545": false, "[::]:8545": false, "10.0.0.1:8545": false, "example.com:1": false,
	} {
		if got := isLoopbackAddr(addr); got != want {
			t.Errorf("isLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestConfigDefaultsFollowMeshDegree: the dial target and the high
// watermark leave GossipSub spare peers beyond a wider mesh.
func TestConfigDefaultsFollowMeshDegree(t *testing.T) {
	for _, tc := range []struct{ degree, target, high int }{
		{0, DefaultTargetPeers, DefaultConnHighWater},
		{4, DefaultTargetPeers, DefaultConnHighWater},
		{8, 10, DefaultConnHighWater},
	} {
		c := DefaultConfig() // TargetPeers as DefaultConfig sets it, as the CLI does
		c.InMemory, c.MeshDegree = true, tc.degree
		if err := c.Validate(); err != nil {
			t.Fatalf("degree %d: %v", tc.degree, err)
		}
		if c.TargetPeers != tc.target || c.ConnHighWater != tc.high {
			t.Errorf("degree %d: target %d high water %d, want %d and %d", tc.degree, c.TargetPeers, c.ConnHighWater, tc.target, tc.high)
		}
	}
}
