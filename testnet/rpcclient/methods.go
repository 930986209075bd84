package rpcclient

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/rumor-relay/rumor/chain"
)

// MaxFirstSeenIDs is the most ids one measure_firstSeen call may carry
// (the server's limit, fixed by the RPC contract).
const MaxFirstSeenIDs = 10000

// NodeInfo is the result of node_info.
type NodeInfo struct {
	PeerID      string   `json:"peer_id"`
	ListenAddrs []string `json:"listen_addrs"` // full multiaddrs ending in /p2p/<peer id>
	Version     string   `json:"version"`
	ChainID     string   `json:"chain_id"`
	Height      uint64   `json:"height"`
	BlockRelay  string   `json:"block_relay"`
}

// Head is the result of chain_head.
type Head struct {
	Height   uint64        `json:"height"`
	ID       chain.Hash    `json:"id"`
	Parent   chain.Hash    `json:"parent"`
	TimeMs   int64         `json:"time_ms"`
	Proposer chain.Address `json:"proposer"`
}

// Peer is one entry of net_peers.
type Peer struct {
	ID        string   `json:"id"`
	Addrs     []string `json:"addrs"`
	Direction string   `json:"direction"`
	LatencyMs float64  `json:"latency_ms"`
}

// BlockHeader is the header object inside chain_blockBy* results. Only the
// fields the testnet reads are decoded; unknown fields are ignored so the
// server may add more.
type BlockHeader struct {
	Height   uint64        `json:"height"`
	Parent   chain.Hash    `json:"parent"`
	TimeMs   int64         `json:"time_ms"`
	Proposer chain.Address `json:"proposer"`
}

// BlockSummary is a chain_blockBy* result with full=false: tx ids only.
type BlockSummary struct {
	Header BlockHeader  `json:"header"`
	ID     chain.Hash   `json:"id"`
	Size   int          `json:"size"`
	Txs    []chain.Hash `json:"txs"`
}

// TxStatus is the result of tx_get (the raw and decoded tx are kept raw).
type TxStatus struct {
	ID      chain.Hash      `json:"id"`
	Status  string          `json:"status"` // "pending" or "included"
	BlockID *chain.Hash     `json:"block_id,omitempty"`
	Height  *uint64         `json:"height,omitempty"`
	Index   *int            `json:"index,omitempty"`
	Tx      json.RawMessage `json:"tx,omitempty"`
	Raw     string          `json:"raw,omitempty"`
	// Own, SeenBy and Confirmed are the delivery state of a tx the node
	// accepted over its own RPC (absent from older nodes).
	Own       bool `json:"own,omitempty"`
	SeenBy    int  `json:"seen_by,omitempty"`
	Confirmed bool `json:"confirmed,omitempty"`
}

// AccountInfo is the result of account_get.
type AccountInfo struct {
	Address      chain.Address `json:"address"`
	Balance      uint64        `json:"balance"`
	Nonce        uint64        `json:"nonce"`
	PendingNonce uint64        `json:"pending_nonce"`
}

// FirstSeen maps ids to first-seen times in Unix microseconds; ids the
// node never saw (or forgot) are absent.
type FirstSeen struct {
	Txs    map[chain.Hash]int64 `json:"txs"`
	Blocks map[chain.Hash]int64 `json:"blocks"`
}

// UnmarshalJSON accepts the times as JSON numbers or numeric strings.
func (f *FirstSeen) UnmarshalJSON(b []byte) error {
	var raw struct {
		Txs    map[chain.Hash]json.Number `json:"txs"`
		Blocks map[chain.Hash]json.Number `json:"blocks"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	conv := func(in map[chain.Hash]json.Number) (map[chain.Hash]int64, error) {
		out := make(map[chain.Hash]int64, len(in))
		for k, v := range in {
			n, err := strconv.ParseInt(v.String(), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("first-seen time of %s: %w", k.Short(), err)
			}
			out[k] = n
		}
		return out, nil
	}
	var err error
	if f.Txs, err = conv(raw.Txs); err != nil {
		return err
	}
	f.Blocks, err = conv(raw.Blocks)
	return err
}

// NodeInfo calls node_info.
func (c *Client) NodeInfo(ctx context.Context) (*NodeInfo, error) {
	var r NodeInfo
	return &r, c.Call(ctx, "node_info", nil, &r)
}

// ChainHead calls chain_head.
func (c *Client) ChainHead(ctx context.Context) (*Head, error) {
	var r Head
	return &r, c.Call(ctx, "chain_head", nil, &r)
}

// Peers calls net_peers.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var r []Peer
	return r, c.Call(ctx, "net_peers", nil, &r)
}

// Mesh calls net_mesh: each GossipSub topic's mesh peers.
func (c *Client) Mesh(ctx context.Context) (map[string][]string, error) {
	var r map[string][]string
	return r, c.Call(ctx, "net_mesh", nil, &r)
}

// BlockByHeight calls chain_blockByHeight with full=false.
func (c *Client) BlockByHeight(ctx context.Context, height uint64) (*BlockSummary, error) {
	var r BlockSummary
	return &r, c.Call(ctx, "chain_blockByHeight", []any{height, false}, &r)
}

// SendResult is the result of tx_send.
type SendResult struct {
	ID chain.Hash `json:"id"`
	// Queued is set when the node holds the tx but cannot execute it yet
	// (its nonce is ahead of the sender's next one); it is not relayed
	// until the gap fills.
	Queued bool `json:"queued,omitempty"`
}

// SendTx submits an encoded transaction with tx_send.
func (c *Client) SendTx(ctx context.Context, encoded []byte) (SendResult, error) {
	var r SendResult
	err := c.Call(ctx, "tx_send", []any{hex.EncodeToString(encoded)}, &r)
	return r, err
}

// SendTxs submits encoded transactions as one JSON-RPC batch of tx_send
// calls: one HTTP request, whose signatures the node checks together. It
// returns one result and one error per tx, in order, as SendTx would. err
// is set when the batch as a whole failed (transport, HTTP status, a reply
// that is not an answer to each call): then nothing is known of any tx.
func (c *Client) SendTxs(ctx context.Context, encoded [][]byte) ([]SendResult, []error, error) {
	if len(encoded) == 0 {
		return nil, nil, nil
	}
	first := c.nextID.Add(uint64(len(encoded))) - uint64(len(encoded)) + 1 // ids first, first+1, ...
	body := appendTxSendBatch(nil, first, encoded)
	at := make(map[string]int, len(encoded)) // quoted id -> index
	for i := range encoded {
		at[strconv.Quote(strconv.FormatUint(first+uint64(i), 10))] = i
	}
	data, resp, err := c.post(ctx, "tx_send batch", body)
	if err != nil {
		return nil, nil, err
	}
	var answers []response
	if err := json.Unmarshal(data, &answers); err != nil {
		var one response // a whole-batch refusal is one error object
		if json.Unmarshal(data, &one) == nil && one.Error != nil {
			return nil, nil, one.Error
		}
		return nil, nil, fmt.Errorf("tx_send batch: HTTP %s, reply is no batch answer: %w", resp.Status, err)
	}
	results := make([]SendResult, len(encoded))
	errs := make([]error, len(encoded))
	seen := make([]bool, len(encoded))
	for _, a := range answers {
		i, ok := at[string(a.ID)]
		if !ok || seen[i] {
			return nil, nil, fmt.Errorf("tx_send batch: answer with unknown or repeated id %s", a.ID)
		}
		seen[i] = true
		switch {
		case a.Error != nil:
			errs[i] = a.Error
		case len(a.Result) == 0:
			errs[i] = errors.New("tx_send: reply has neither result nor error")
		default:
			if err := json.Unmarshal(a.Result, &results[i]); err != nil {
				errs[i] = fmt.Errorf("tx_send: decode result: %w", err)
			}
		}
	}
	for i, ok := range seen {
		if !ok {
			return nil, nil, fmt.Errorf("tx_send batch: no answer for call %d of %d", i, len(encoded))
		}
	}
	return results, errs, nil
}

// appendTxSendBatch appends a JSON-RPC batch of one tx_send call per
// encoded tx, with string ids first, first+1, ...: what encoding/json
// writes for the same requests (TestTxSendBatchIsJSON), written directly
// because a load generator sends thousands a second.
func appendTxSendBatch(b []byte, first uint64, encoded [][]byte) []byte {
	n := 2
	for _, e := range encoded {
		n += 2*len(e) + len(`{"jsonrpc":"2.0","id":"18446744073709551615","method":"tx_send","params":[""]},`)
	}
	b = slices.Grow(b, n)
	b = append(b, '[')
	for i, e := range encoded {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"jsonrpc":"2.0","id":"`...)
		b = strconv.AppendUint(b, first+uint64(i), 10)
		b = append(b, `","method":"tx_send","params":["`...)
		b = hex.AppendEncode(b, e)
		b = append(b, `"]}`...)
	}
	return append(b, ']')
}

// GetTx calls tx_get.
func (c *Client) GetTx(ctx context.Context, id chain.Hash) (*TxStatus, error) {
	var r TxStatus
	return &r, c.Call(ctx, "tx_get", []any{id}, &r)
}

// Account calls account_get.
func (c *Client) Account(ctx context.Context, a chain.Address) (*AccountInfo, error) {
	var r AccountInfo
	return &r, c.Call(ctx, "account_get", []any{a}, &r)
}

// FirstSeenTimes calls measure_firstSeen, splitting the ids into batches of
// at most MaxFirstSeenIDs, and merges the results.
func (c *Client) FirstSeenTimes(ctx context.Context, txs, blocks []chain.Hash) (*FirstSeen, error) {
	out := &FirstSeen{Txs: make(map[chain.Hash]int64), Blocks: make(map[chain.Hash]int64)}
	for len(txs) > 0 || len(blocks) > 0 {
		room := MaxFirstSeenIDs
		bt := txs[:min(len(txs), room)]
		txs = txs[len(bt):]
		room -= len(bt)
		bb := blocks[:min(len(blocks), room)]
		blocks = blocks[len(bb):]
		q := struct {
			Txs    []chain.Hash `json:"txs"`
			Blocks []chain.Hash `json:"blocks"`
		}{Txs: bt, Blocks: bb}
		if q.Txs == nil {
			q.Txs = []chain.Hash{}
		}
		if q.Blocks == nil {
			q.Blocks = []chain.Hash{}
		}
		var r FirstSeen
		if err := c.Call(ctx, "measure_firstSeen", []any{q}, &r); err != nil {
			return nil, err
		}
		for k, v := range r.Txs {
			out.Txs[k] = v
		}
		for k, v := range r.Blocks {
			out.Blocks[k] = v
		}
	}
	return out, nil
}

// Stats calls measure_stats and returns the raw JSON object; the testnet
// reads the counters it knows by name (see testnet.ParseStats).
func (c *Client) Stats(ctx context.Context) (json.RawMessage, error) {
	var r json.RawMessage
	return r, c.Call(ctx, "measure_stats", nil, &r)
}
