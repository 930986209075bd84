package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strconv"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/handler"

	"github.com/rumor-relay/rumor/chain"
)

// Response limits. The request side was capped (MaxBodyBytes, MaxBatch), the
// response side was not: a batch of 100 chain_blockByHeight calls with full
// transactions made the node build every answer in memory, then the whole
// array, before writing a byte. Now each message's answers are counted as
// they are built and a call whose answer would pass the cap is refused.
const (
	// CodeResponseTooLarge answers a call whose result would take its
	// response (for a batch: the batch's answers so far) past
	// Config.MaxResponseBytes. geth's code and message for its batch cap
	// (errcodeResponseTooLarge, "response too large"), so clients written
	// for geth recognize it.
	CodeResponseTooLarge jrpc2.Code = -32003

	// maxTxJSONBytes bounds one TxJSON as the block methods write it with
	// full=true, plus its comma: five keys and punctuation (about 70
	// bytes), a quoted 64-character hex id and two quoted 64-character
	// addresses (198), three uint64s of at most 20 digits (60) and a
	// payload size (7). TestMaxTxJSONBytes checks it against the largest
	// values.
	maxTxJSONBytes = 340
	// maxBlockJSONBytes bounds chain_blockByID's or chain_blockByHeight's
	// answer for the largest block the wire format allows: chain.MaxBlockTxs
	// (55,188) transactions as objects, plus the header and envelope
	// (under 1 KiB). About 18.8 MB; a genesis's own limit (1 MiB blocks by
	// default, 6,808 txs) makes it about 2.3 MB.
	maxBlockJSONBytes = chain.MaxBlockTxs*maxTxJSONBytes + 1<<10

	// DefaultMaxResponseBytes is the response cap when Config leaves it 0:
	// geth's BatchResponseMaxSize (25,000,000 bytes). It holds the answer
	// for the largest block the wire format allows (maxBlockJSONBytes,
	// checked at compile time below), so every block can be fetched in one
	// call, and the chain's default 1 MiB blocks ten times over. CometBFT
	// has no byte cap: it bounds its list methods by pagination (at most
	// 100 items a page); rumor's list methods are bounded at their source
	// (MaxFirstSeenIDs; net_bans by peers.MaxBans; net_peers and net_mesh
	// by the connection limits).
	DefaultMaxResponseBytes = 25_000_000
)

// The default cap must hold the largest block's answer.
const _ = uint64(DefaultMaxResponseBytes - maxBlockJSONBytes)

// errResponseTooLarge answers a call refused by the response cap.
var errResponseTooLarge = &jrpc2.Error{Code: CodeResponseTooLarge, Message: "response too large"}

// answer is a JSON-RPC response object. ID is the request's id as sent
// (null when it could not be read); exactly one of Result and Error is set.
type answer struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *jrpc2.Error    `json:"error,omitempty"`
}

// envelopeBytes is what an answer adds around its id and result:
// {"jsonrpc":"2.0","id":,"result":}.
const envelopeBytes = len(`{"jsonrpc":"2.0","id":,"result":}`)

// budget is what is left of one message's response cap. A message's
// calls run one after another (as geth runs a batch), so it needs no lock.
// Once a call is refused, every later call of the message is refused
// without running: their answers would not be sent, so their work is
// saved.
type budget struct {
	left    int
	refused bool
}

// newBudget returns the budget of one message under s's cap.
func (s *Server) newBudget() *budget {
	n := s.cfg.MaxResponseBytes
	if n <= 0 {
		n = DefaultMaxResponseBytes
	}
	return &budget{left: int(min(n, math.MaxInt32))}
}

// runMessage runs the requests of one client message (one HTTP body or
// WebSocket message, already parsed and within MaxBatch) in order and
// returns the bytes to send back: one answer, an array of answers for a
// batch, or nil when nothing is to be answered (notifications only).
func (s *Server) runMessage(ctx context.Context, methods handler.Map, reqs []*jrpc2.ParsedRequest) []byte {
	s.prepareTxs(reqs)
	b := s.newBudget()
	var answers [][]byte
	for _, r := range reqs {
		if ctx.Err() != nil {
			return nil // the client left or the server is closing
		}
		if a := s.runOne(ctx, methods, r, b); a != nil {
			answers = append(answers, a)
		}
	}
	switch {
	case len(answers) == 0:
		return nil
	case len(reqs) == 1 && !reqs[0].Batch:
		return answers[0]
	}
	n := 1 + len(answers)
	for _, a := range answers {
		n += len(a)
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	out = append(out, bytes.Join(answers, []byte{','})...)
	return append(out, ']')
}

// prepareTxs hands the transactions of a batch's tx_send calls to the
// backend's PrepareTxs before they run.
func (s *Server) prepareTxs(reqs []*jrpc2.ParsedRequest) {
	if s.backend.PrepareTxs == nil || len(reqs) < 2 {
		return
	}
	var bodies [][]byte
	for _, r := range reqs {
		if r.Error != nil || r.Method != "tx_send" {
			continue
		}
		h, ok := txSendParam(string(r.Params))
		if !ok {
			continue
		}
		if b, err := hexBytes(h, chain.MaxTxSize); err == nil {
			bodies = append(bodies, b)
		}
	}
	if len(bodies) >= 2 {
		s.backend.PrepareTxs(bodies)
	}
}

// runOne runs one request within b and returns its answer, or nil when
// it gets none (a notification).
func (s *Server) runOne(ctx context.Context, methods handler.Map, r *jrpc2.ParsedRequest, b *budget) []byte {
	id := json.RawMessage("null")
	if r.ID != "" {
		id = json.RawMessage(r.ID)
	}
	notify := r.ID == ""
	if r.Error != nil {
		// A request that could not be read is answered (with a null id
		// when it had none) unless it is a well-formed notification with
		// some other fault, as jrpc2 does.
		if notify && r.Error.Code != jrpc2.ParseError && r.Error.Code != jrpc2.InvalidRequest {
			return nil
		}
		return errorAnswer(id, r.Error)
	}
	if r.Method == "" {
		return errorAnswer(id, &jrpc2.Error{Code: jrpc2.InvalidRequest, Message: "empty method name"})
	}
	h := methods[r.Method]
	if h == nil {
		if notify {
			return nil
		}
		return errorAnswer(id, (&jrpc2.Error{Code: jrpc2.MethodNotFound, Message: "method not found"}).WithData(r.Method))
	}
	if b.refused {
		if notify {
			return nil
		}
		return errorAnswer(id, errResponseTooLarge)
	}
	v, err := h(ctx, r.ToRequest())
	if notify {
		return nil
	}
	if err != nil {
		return errorAnswer(id, asRPCError(err))
	}
	res, err := marshalResult(v)
	if err != nil {
		return errorAnswer(id, &jrpc2.Error{Code: jrpc2.InternalError, Message: "encoding result: " + err.Error()})
	}
	size := envelopeBytes + len(id) + len(res)
	if size > b.left {
		b.refused = true
		return errorAnswer(id, errResponseTooLarge)
	}
	b.left -= size
	out := make([]byte, 0, size)
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"result":`...)
	out = append(out, res...)
	return append(out, '}')
}

// marshalResult encodes a method's result. tx_send's, one per accepted
// tx, encodes itself without encoding/json's reflection and check.
func marshalResult(v any) ([]byte, error) {
	if r, ok := v.(txSendResult); ok {
		return r.MarshalJSON()
	}
	return json.Marshal(v)
}

// asRPCError converts a handler's error to a JSON-RPC error object.
func asRPCError(err error) *jrpc2.Error {
	if e, ok := err.(*jrpc2.Error); ok {
		return e
	}
	if c := jrpc2.ErrorCode(err); c != jrpc2.SystemError {
		return &jrpc2.Error{Code: c, Message: err.Error()}
	}
	return &jrpc2.Error{Code: jrpc2.InternalError, Message: err.Error()}
}

// errorAnswer encodes an error answer. Errors are not counted against the
// cap: they are a few hundred bytes at most, and a client must learn why
// its call failed.
func errorAnswer(id json.RawMessage, e *jrpc2.Error) []byte {
	b, err := json.Marshal(answer{JSONRPC: "2.0", ID: id, Error: e})
	if err != nil {
		// Only Data could fail to encode, and WithData checked it.
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":` + strconv.Itoa(int(jrpc2.InternalError)) + `,"message":"encoding error"}}`)
	}
	return b
}
