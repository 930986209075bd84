package rpc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/handler"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/rumor-relay/rumor/chain"
	"github.com/rumor-relay/rumor/chain/store"
	"github.com/rumor-relay/rumor/mempool"
	"github.com/rumor-relay/rumor/relay"
)

// Application error codes (JSON-RPC reserves -32768..-32000 for the
// protocol; -32000..-32099 is "server error", which geth and others use for
// application errors the same way).
const (
	// CodeTxRejected: tx_send's transaction was not taken. Data carries
	// {"reason": name, "code": chain reason number (0 if the reason is a
	// pool policy, not a chain rule), "verdict": "invalid"|"ignored"}.
	CodeTxRejected jrpc2.Code = -32000
	// codeLimit: a per-connection limit was hit (subscriptions).
	codeLimit jrpc2.Code = -32005
)

// MaxFirstSeenIDs caps the ids one measure_firstSeen call may ask about,
// txs and blocks together.
const MaxFirstSeenIDs = 10_000

// ChainReader is the read side of the block store the chain methods need
// (*store.Store implements it).
type ChainReader interface {
	Tip() (*chain.Header, chain.Hash)
	Block(id chain.Hash) (*chain.Block, bool)
	BlockIDAt(height uint64) (chain.Hash, bool)
	TxLocation(id chain.Hash) (store.TxLocation, bool)
	Account(a chain.Address) chain.Account
}

// PoolReader is the read side of the mempool (*mempool.Pool implements it).
type PoolReader interface {
	Get(id chain.Hash) (*chain.Tx, bool)
	Stats() mempool.Stats
	PendingNonce(a chain.Address) uint64
}

// Relay is what the server needs of the relay (*relay.Relay implements it).
type Relay interface {
	SubmitTx(body []byte) (relay.ID, relay.Verdict, error)
	FirstSeen(id relay.ID) (time.Time, bool)
}

// Backend is what the methods read. Chain and Pool are nil when the node
// runs a caller-supplied chain: the chain_*, tx_get, account_get and
// mempool_summary methods are then not offered (method not found).
type Backend struct {
	ChainID    string
	Version    string
	BlockRelay string
	Host       host.Host
	Relay      Relay
	// Tip returns the best block's height and id (for node_info).
	Tip func() (uint64, chain.Hash)
	// Stats returns the relay's counters for measure_stats.
	Stats func() any
	// Mesh returns this node's GossipSub mesh peers per topic (net_mesh).
	Mesh  func() map[string][]peer.ID
	Chain ChainReader
	Pool  PoolReader
	Feed  *Feed
	// PeerScore returns a peer's score for net_peers; nil reports zero
	// scores and no offenses.
	PeerScore func(peer.ID) PeerScore
	// Bans lists the bans in force for net_bans; nil answers [].
	Bans func() []Ban
	// OwnTx reports the delivery state of a transaction this node
	// accepted over tx_send and still tracks (tx_get's own, seen_by and
	// confirmed); false when it does not track id. Nil: no tx is own.
	// It is called from the RPC goroutines concurrently.
	OwnTx func(id chain.Hash) (OwnTxStatus, bool)
	// PrepareTxs, when set, is given the transactions of a message's
	// tx_send calls (a JSON-RPC batch of two or more) before they run, so
	// that the backend can check their signatures together; the calls
	// then run one by one as usual. Bodies that do not decode as hex are
	// left out (their calls fail as usual). It is called from the RPC
	// goroutines concurrently.
	PrepareTxs func(bodies [][]byte)
}

// OwnTxStatus is what tx_get reports of a transaction this node accepted
// over tx_send, until it is mined or leaves the pool.
type OwnTxStatus struct {
	// SeenBy is how many distinct peers are known to hold it (they
	// announced it to this node, or fetched it from it), counted up to
	// the number that confirms delivery.
	SeenBy int
	// Confirmed is true once enough peers hold it (delivery confirmed):
	// the node no longer re-announces it.
	Confirmed bool
}

// PeerScore is what net_peers reports of a peer's standing.
type PeerScore struct {
	// Score is the node's score-book score (0 = fresh; the peer is banned
	// at the node's ban threshold, -200 by default).
	Score float64
	// Offenses counts the offenses behind Score, by name.
	Offenses map[string]uint32
	// GossipScore is GossipSub's peer score (the score-book score times
	// its weight plus GossipSub's own components); the peer is graylisted
	// below -2500.
	GossipScore float64
}

// Ban is one ban in force, as net_bans reports it.
type Ban struct {
	Peer   peer.ID   `json:"peer"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// Errors a SubmitTx error may implement to refine tx_send's answer.
type (
	// queuedError marks a transaction the pool holds but does not announce
	// yet (nonce gap): tx_send succeeds with "queued": true.
	queuedError interface{ Queued() bool }
	// rejectReasoner names a pool-policy rejection (pool full, ...).
	rejectReasoner interface{ RejectReason() string }
)

func (s *Server) methodMap() handler.Map {
	b := s.backend
	m := handler.Map{
		"tx_send":           s.txSend,
		"net_peers":         s.netPeers,
		"net_mesh":          s.netMesh,
		"net_bans":          s.netBans,
		"node_info":         s.nodeInfo,
		"measure_firstSeen": s.measureFirstSeen,
		"measure_stats":     s.measureStats,
	}
	if b.Chain != nil {
		m["chain_head"] = s.chainHead
		m["chain_blockByID"] = s.blockByID
		m["chain_blockByHeight"] = s.blockByHeight
	}
	if b.Chain != nil && b.Pool != nil {
		m["tx_get"] = s.txGet
		m["account_get"] = s.accountGet
		m["mempool_summary"] = s.mempoolSummary
	}
	return m
}

// wsMethods adds the WebSocket-only methods to the shared ones.
func (s *Server) wsMethods() handler.Map {
	m := make(handler.Map, len(s.methods)+2)
	for k, v := range s.methods {
		m[k] = v
	}
	m["subscribe"] = s.subscribe
	m["unsubscribe"] = s.unsubscribe
	return m
}

// --- parameters ---

func invalidParams(format string, args ...any) *jrpc2.Error {
	return &jrpc2.Error{Code: jrpc2.InvalidParams, Message: "invalid params: " + fmt.Sprintf(format, args...)}
}

// positional decodes a positional parameter array into dst: at least
// required values, at most len(dst). Absent params count as [].
func positional(req *jrpc2.Request, required int, dst ...any) error {
	var raw []json.RawMessage
	if req.HasParams() {
		if err := req.UnmarshalParams(&raw); err != nil {
			return invalidParams("params must be an array")
		}
	}
	if len(raw) < required || len(raw) > len(dst) {
		if required == len(dst) {
			return invalidParams("want %d params, got %d", required, len(raw))
		}
		return invalidParams("want %d to %d params, got %d", required, len(dst), len(raw))
	}
	for i, r := range raw {
		if err := json.Unmarshal(r, dst[i]); err != nil {
			return invalidParams("param %d: %v", i, err)
		}
	}
	return nil
}

// oneHexParam reads params of exactly the shape a client sends to
// tx_send, one JSON string of hex digits in an array (`["0xab01"]`, with
// any JSON whitespace), without a JSON decoder: at tens of thousands of
// tx_send calls a second, decoding the same params generically (once as
// an array, once per element, again for a batch's signature check) was
// several percent of a node's CPU. Hex digits need no escapes, so the
// string's bytes are its value. Anything else returns false, and the
// caller decodes in full, which also words the errors.
func oneHexParam(params string) (string, bool) {
	p := strings.TrimLeft(params, jsonSpace)
	if !strings.HasPrefix(p, "[") {
		return "", false
	}
	p = strings.TrimLeft(p[1:], jsonSpace)
	if !strings.HasPrefix(p, `"`) {
		return "", false
	}
	p = p[1:]
	end := strings.IndexByte(p, '"')
	if end < 0 {
		return "", false
	}
	h := p[:end]
	for i := range len(h) {
		if !isHexParamByte(h[i]) {
			return "", false
		}
	}
	if strings.Trim(p[end+1:], jsonSpace) != "]" {
		return "", false
	}
	return h, true
}

// txSendParam returns tx_send's one string param, read by oneHexParam
// when it has the plain shape and decoded as a JSON array of one string
// otherwise; false when it is neither.
func txSendParam(params string) (string, bool) {
	if h, ok := oneHexParam(params); ok {
		return h, true
	}
	var v []string
	if json.Unmarshal([]byte(params), &v) != nil || len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// isHexParamByte reports whether c may appear in a hex param: digits,
// letters a-f in either case, and the x of a 0x prefix.
func isHexParamByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == 'x' || c == 'X'
}

// hexBytes decodes hex with an optional 0x prefix, refusing more than max
// bytes before decoding.
func hexBytes(s string, max int) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) > 2*max {
		return nil, fmt.Errorf("%d hex characters exceeds %d bytes", len(s), max)
	}
	return hex.DecodeString(s)
}

// --- JSON shapes ---

// HeaderJSON is a block header as the RPC methods return it.
type HeaderJSON struct {
	Height    uint64        `json:"height"`
	ID        chain.Hash    `json:"id"`
	Parent    chain.Hash    `json:"parent"`
	TimeMs    int64         `json:"time_ms"`
	TxRoot    chain.Hash    `json:"tx_root"`
	Proposer  chain.Address `json:"proposer"`
	Signature string        `json:"signature"`
}

// NewHeaderJSON converts a header whose id is id.
func NewHeaderJSON(h *chain.Header, id chain.Hash) HeaderJSON {
	return HeaderJSON{Height: h.Height, ID: id, Parent: h.Parent, TimeMs: h.Time, TxRoot: h.TxRoot,
		Proposer: h.Proposer, Signature: hex.EncodeToString(h.Sig[:])}
}

// TxJSON is a transaction's fields. Amounts are JSON numbers (exact for
// Go, JavaScript and Python clients up to 2^53; testnet balances are 2^40).
type TxJSON struct {
	ID          chain.Hash    `json:"id"`
	From        chain.Address `json:"from"`
	To          chain.Address `json:"to"`
	Amount      uint64        `json:"amount"`
	Fee         uint64        `json:"fee"`
	Nonce       uint64        `json:"nonce"`
	PayloadSize int           `json:"payload_size"`
}

func newTxJSON(tx *chain.Tx, id chain.Hash) TxJSON {
	return TxJSON{ID: id, From: tx.From, To: tx.To, Amount: tx.Amount, Fee: tx.Fee, Nonce: tx.Nonce, PayloadSize: len(tx.Payload)}
}

// --- methods ---

type txSendResult struct {
	ID     chain.Hash `json:"id"`
	Queued bool       `json:"queued,omitempty"`
}

// MarshalJSON writes what encoding/json writes for r, without reflection:
// every accepted tx gets one (TestTxSendResultJSON).
func (r txSendResult) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(`{"id":"","queued":true}`)+2*chain.HashSize)
	b = append(b, `{"id":"`...)
	b = hex.AppendEncode(b, r.ID[:])
	b = append(b, '"')
	if r.Queued {
		b = append(b, `,"queued":true`...)
	}
	return append(b, '}'), nil
}

type txRejectData struct {
	Reason  string `json:"reason"`
	Code    int    `json:"code"`
	Verdict string `json:"verdict"`
}

func (s *Server) txSend(_ context.Context, req *jrpc2.Request) (any, error) {
	h, ok := oneHexParam(req.ParamString())
	if !ok {
		if err := positional(req, 1, &h); err != nil {
			return nil, err
		}
	}
	body, err := hexBytes(h, chain.MaxTxSize)
	if err != nil {
		return nil, invalidParams("tx: %v", err)
	}
	id, v, err := s.backend.Relay.SubmitTx(body)
	switch v {
	case relay.Accepted, relay.Known:
		return txSendResult{ID: chain.Hash(id)}, nil
	}
	var q queuedError
	if errors.As(err, &q) && q.Queued() {
		return txSendResult{ID: chain.Hash(id), Queued: true}, nil
	}
	if v != relay.Invalid && v != relay.Ignored {
		return nil, &jrpc2.Error{Code: jrpc2.InternalError, Message: fmt.Sprintf("submit: verdict %v: %v", v, err)}
	}
	data := txRejectData{Reason: v.String(), Verdict: v.String()}
	var rr rejectReasoner
	if r, ok := chain.ReasonOf(err); ok {
		data.Reason, data.Code = r.String(), int(r)
	} else if errors.As(err, &rr) {
		data.Reason = rr.RejectReason()
	}
	msg := "transaction rejected"
	if err != nil {
		msg += ": " + err.Error()
	}
	return nil, (&jrpc2.Error{Code: CodeTxRejected, Message: msg}).WithData(data)
}

type txGetResult struct {
	ID      chain.Hash  `json:"id"`
	Status  string      `json:"status"` // "pending" or "included"
	BlockID *chain.Hash `json:"block_id,omitempty"`
	Height  *uint64     `json:"height,omitempty"`
	Index   *int        `json:"index,omitempty"`
	Tx      TxJSON      `json:"tx"`
	Raw     string      `json:"raw"`
	// Own: this node accepted it over tx_send and tracks its delivery
	// (until it is mined or leaves the pool).
	Own bool `json:"own"`
	// SeenBy is OwnTxStatus.SeenBy, for own txs only.
	SeenBy *int `json:"seen_by,omitempty"`
	// Confirmed: included in a block, or an own tx whose delivery is
	// confirmed. A pending tx the node does not track (it came from a
	// peer) is reported unconfirmed: this node cannot tell.
	Confirmed bool `json:"confirmed"`
}

// withOwn fills r's delivery fields from the backend's own-tx tracking.
func (s *Server) withOwn(r txGetResult) txGetResult {
	r.Confirmed = r.Status == "included"
	if s.backend.OwnTx == nil {
		return r
	}
	if st, ok := s.backend.OwnTx(r.ID); ok {
		seen := st.SeenBy
		r.Own, r.SeenBy = true, &seen
		r.Confirmed = r.Confirmed || st.Confirmed
	}
	return r
}

func (s *Server) txGet(_ context.Context, req *jrpc2.Request) (any, error) {
	var id chain.Hash
	if err := positional(req, 1, &id); err != nil {
		return nil, err
	}
	if loc, ok := s.backend.Chain.TxLocation(id); ok {
		if b, ok := s.backend.Chain.Block(loc.Block); ok && loc.Index >= 0 && loc.Index < len(b.Txs) {
			tx := b.Txs[loc.Index]
			return s.withOwn(txGetResult{ID: id, Status: "included", BlockID: &loc.Block, Height: &loc.Height, Index: &loc.Index,
				Tx: newTxJSON(tx, id), Raw: hex.EncodeToString(tx.Encode())}), nil
		}
	}
	if tx, ok := s.backend.Pool.Get(id); ok {
		return s.withOwn(txGetResult{ID: id, Status: "pending", Tx: newTxJSON(tx, id), Raw: hex.EncodeToString(tx.Encode())}), nil
	}
	return nil, nil // unknown: null, as geth answers
}

type chainHeadResult struct {
	Height   uint64        `json:"height"`
	ID       chain.Hash    `json:"id"`
	Parent   chain.Hash    `json:"parent"`
	TimeMs   int64         `json:"time_ms"`
	Proposer chain.Address `json:"proposer"`
}

func (s *Server) chainHead(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	h, id := s.backend.Chain.Tip()
	return chainHeadResult{Height: h.Height, ID: id, Parent: h.Parent, TimeMs: h.Time, Proposer: h.Proposer}, nil
}

type blockResult struct {
	Header HeaderJSON `json:"header"`
	ID     chain.Hash `json:"id"`
	Size   int        `json:"size"`
	Txs    []any      `json:"txs"` // ids, or TxJSON when full
}

func blockJSON(b *chain.Block, full bool) blockResult {
	id := b.ID()
	out := blockResult{Header: NewHeaderJSON(&b.Header, id), ID: id, Size: b.Size(), Txs: make([]any, len(b.Txs))}
	for i, tx := range b.Txs {
		if full {
			out.Txs[i] = newTxJSON(tx, tx.ID())
		} else {
			out.Txs[i] = tx.ID()
		}
	}
	return out
}

func (s *Server) blockByID(_ context.Context, req *jrpc2.Request) (any, error) {
	var id chain.Hash
	var full bool
	if err := positional(req, 1, &id, &full); err != nil {
		return nil, err
	}
	b, ok := s.backend.Chain.Block(id)
	if !ok {
		return nil, nil
	}
	return blockJSON(b, full), nil
}

func (s *Server) blockByHeight(_ context.Context, req *jrpc2.Request) (any, error) {
	var height uint64
	var full bool
	if err := positional(req, 1, &height, &full); err != nil {
		return nil, err
	}
	id, ok := s.backend.Chain.BlockIDAt(height)
	if !ok {
		return nil, nil
	}
	b, ok := s.backend.Chain.Block(id)
	if !ok {
		return nil, nil
	}
	return blockJSON(b, full), nil
}

type accountResult struct {
	Address      chain.Address `json:"address"`
	Balance      uint64        `json:"balance"`
	Nonce        uint64        `json:"nonce"`
	PendingNonce uint64        `json:"pending_nonce"`
}

func (s *Server) accountGet(_ context.Context, req *jrpc2.Request) (any, error) {
	var a chain.Address
	if err := positional(req, 1, &a); err != nil {
		return nil, err
	}
	acct := s.backend.Chain.Account(a)
	return accountResult{Address: a, Balance: acct.Balance, Nonce: acct.Nonce,
		PendingNonce: max(acct.Nonce, s.backend.Pool.PendingNonce(a))}, nil
}

type mempoolResult struct {
	Count   int `json:"count"`
	Bytes   int `json:"bytes"`
	Queued  int `json:"queued"`
	Senders int `json:"senders"`
}

func (s *Server) mempoolSummary(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	st := s.backend.Pool.Stats()
	return mempoolResult{Count: st.Count, Bytes: st.Bytes, Queued: st.Queued, Senders: st.Senders}, nil
}

type peerResult struct {
	ID          peer.ID           `json:"id"`
	Addrs       []string          `json:"addrs"`
	Direction   string            `json:"direction"` // "inbound" or "outbound"
	LatencyMs   float64           `json:"latency_ms"`
	Score       float64           `json:"score"`
	Offenses    map[string]uint32 `json:"offenses"` // never null
	GossipScore float64           `json:"gossip_score"`
}

func (s *Server) netPeers(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	h := s.backend.Host
	out := []peerResult{}
	for _, p := range h.Network().Peers() {
		conns := h.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		r := peerResult{ID: p, Addrs: make([]string, 0, len(conns)), Direction: "outbound", Offenses: map[string]uint32{},
			LatencyMs: float64(h.Peerstore().LatencyEWMA(p)) / float64(time.Millisecond)}
		if conns[0].Stat().Direction == network.DirInbound {
			r.Direction = "inbound"
		}
		for _, c := range conns {
			r.Addrs = append(r.Addrs, c.RemoteMultiaddr().String())
		}
		if s.backend.PeerScore != nil {
			ps := s.backend.PeerScore(p)
			r.Score, r.GossipScore = ps.Score, ps.GossipScore
			for k, v := range ps.Offenses {
				r.Offenses[k] = v
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Server) netBans(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	out := []Ban{}
	if s.backend.Bans != nil {
		out = append(out, s.backend.Bans()...)
	}
	return out, nil
}

func (s *Server) netMesh(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	out := map[string][]peer.ID{}
	if s.backend.Mesh != nil {
		for topic, ps := range s.backend.Mesh() {
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			out[topic] = ps
		}
	}
	return out, nil
}

type nodeInfoResult struct {
	PeerID      peer.ID  `json:"peer_id"`
	ListenAddrs []string `json:"listen_addrs"`
	Version     string   `json:"version"`
	ChainID     string   `json:"chain_id"`
	Height      uint64   `json:"height"`
	BlockRelay  string   `json:"block_relay"`
}

func (s *Server) nodeInfo(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	h := s.backend.Host
	addrs := []string{}
	full, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	for _, a := range full {
		addrs = append(addrs, a.String())
	}
	height, _ := s.backend.Tip()
	return nodeInfoResult{PeerID: h.ID(), ListenAddrs: addrs, Version: s.backend.Version, ChainID: s.backend.ChainID,
		Height: height, BlockRelay: s.backend.BlockRelay}, nil
}

// FirstSeenQuery is measure_firstSeen's parameter.
type FirstSeenQuery struct {
	Txs    []chain.Hash `json:"txs"`
	Blocks []chain.Hash `json:"blocks"`
}

// FirstSeenResult maps each known id to when this node first saw it, in
// Unix microseconds.
type FirstSeenResult struct {
	Txs    map[string]int64 `json:"txs"`
	Blocks map[string]int64 `json:"blocks"`
}

func (s *Server) measureFirstSeen(_ context.Context, req *jrpc2.Request) (any, error) {
	var q FirstSeenQuery
	if err := positional(req, 1, &q); err != nil {
		return nil, err
	}
	if n := len(q.Txs) + len(q.Blocks); n > MaxFirstSeenIDs {
		return nil, invalidParams("%d ids exceeds limit %d per call", n, MaxFirstSeenIDs)
	}
	out := FirstSeenResult{Txs: make(map[string]int64, len(q.Txs)), Blocks: make(map[string]int64, len(q.Blocks))}
	for _, id := range q.Txs {
		if t, ok := s.backend.Relay.FirstSeen(relay.ID(id)); ok {
			out.Txs[id.String()] = t.UnixMicro()
		}
	}
	for _, id := range q.Blocks {
		if t, ok := s.backend.Relay.FirstSeen(relay.ID(id)); ok {
			out.Blocks[id.String()] = t.UnixMicro()
		}
	}
	return out, nil
}

func (s *Server) measureStats(_ context.Context, req *jrpc2.Request) (any, error) {
	if err := positional(req, 0); err != nil {
		return nil, err
	}
	if s.backend.Stats == nil {
		return struct{}{}, nil
	}
	return s.backend.Stats(), nil
}
