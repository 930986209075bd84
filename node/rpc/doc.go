// Package rpc is the node's JSON-RPC 2.0 server: HTTP POST at "/" (through
// jrpc2's jhttp bridge) and WebSocket at "/ws" (a jrpc2 server per
// connection over a gorilla/websocket channel adapter, with server push for
// subscriptions).
//
// Methods (positional params): tx_send, tx_get, chain_head, chain_blockByID,
// chain_blockByHeight, account_get, mempool_summary, net_peers, net_mesh,
// net_bans, node_info, measure_firstSeen, measure_stats; over WebSocket also
// subscribe ("newHeads" | "newPendingTxs") and unsubscribe. Notifications use method
// "subscription" with {"subscription": id, "result": event}.
//
// Errors: -32700 parse error (body not JSON), -32600 invalid request (not a
// request object, empty or oversized batch), -32601 method not found,
// -32602 invalid params, -32000 transaction rejected (data: reason name,
// chain reason code, verdict). Transport limits answer in HTTP: 401 without
// the bearer token when one is configured, 403 for a browser origin not
// allowed (CORS is off by default), 405 for non-POST, 415 for a non-JSON
// content type, 413 for a body over the limit.
//
// # Concurrency
//
// A Server is safe for concurrent use. HTTP requests run on net/http's
// goroutines and are executed by the bridge's single jrpc2 server (up to
// NumCPU at once). Each WebSocket client has its own jrpc2 server
// (wsConcurrency workers), a pinger goroutine and one forwarder goroutine per
// subscription; Server.mu guards the session set, wsSession.mu a session's
// subscriptions. Feed.Publish never blocks: it drops a subscriber that falls
// feedBuffer events behind. Close ends every session and waits for all of
// these goroutines.
package rpc
