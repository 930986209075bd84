// Package rpc is the node's JSON-RPC 2.0 server: HTTP POST at "/" and
// WebSocket at "/ws" (gorilla/websocket, with server push for
// subscriptions). Requests are parsed by jrpc2 and run by the methods in
// methods.go through this package's own dispatch (dispatch.go), which runs
// a batch's calls in order and counts their answers against the response
// cap.
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
// chain reason code, verdict), -32003 response too large (the call's answer
// would take its message's answers past Config.MaxResponseBytes; every
// later call of the batch gets it too and is not run). Transport limits
// answer in HTTP: 401 without the bearer token when one is configured, 403
// for a browser origin not allowed (CORS is off by default), 405 for
// non-POST, 415 for a non-JSON content type, 413 for a body over the limit.
//
// # Concurrency
//
// A Server is safe for concurrent use. HTTP requests run on net/http's
// goroutines, at most NumCPU at once (Server.httpSlots). Each WebSocket
// client has a reader (its upgraded handler's goroutine), which reads a
// message only while fewer than wsMaxPending are unfinished, and
// wsConcurrency workers that run them; a pinger goroutine and one forwarder
// goroutine per subscription. A message's calls run one after another on
// one goroutine, so its response budget needs no lock. Server.mu guards
// the session set, wsSession.mu a session's subscriptions, wsChannel.wmu
// its writes. Feed.Publish never blocks: it drops a subscriber that falls
// feedBuffer events behind. Close ends every session and waits for all of
// these goroutines.
package rpc
