//go:build deps

// This file pins the modules that packages still under construction will
// import, so that go mod tidy keeps them. It is never compiled.
package main

import (
	_ "github.com/creachadair/jrpc2"
	_ "github.com/creachadair/jrpc2/jhttp"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/gorilla/websocket"
	_ "github.com/ipfs/go-log/v2"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	_ "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	_ "github.com/libp2p/go-libp2p/p2p/net/mock"
	_ "github.com/libp2p/go-libp2p/x/simlibp2p"
	_ "github.com/marcopolo/simnet"
	_ "github.com/multiformats/go-multiaddr"
	_ "github.com/pelletier/go-toml/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "gonum.org/v1/plot"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg"
)
