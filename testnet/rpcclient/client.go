// Package rpcclient is a small JSON-RPC 2.0 client for rumor's HTTP
// endpoint, with typed helpers for the methods the CLI and the testnet use.
//
// Why not jrpc2's client: its HTTP channel stops the whole client on the
// first transport failure (one timed-out POST, one non-200 reply), after
// which every later call fails. A load generator that sends thousands of
// calls to nodes that may be slow or restarting needs each call to fail on
// its own. This client does one HTTP POST per call and keeps no state but
// the request id counter, so it is safe for concurrent use.
package rpcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// MaxResponseBytes bounds what one reply may make the client read. The
// largest replies rumor sends are measure_firstSeen for 10000 ids (about
// 1 MB of JSON) and a full block (MaxBlockSize 8 MiB as hex, 16 MiB, plus
// JSON framing); 64 MiB leaves room and still stops a runaway server.
const MaxResponseBytes = 64 << 20

// DefaultTimeout is the per-call timeout applied when the caller's context
// has no deadline. Every rumor method answers from memory or one disk read;
// ten seconds only fires on a stuck or overloaded node.
const DefaultTimeout = 10 * time.Second

// maxIdleConnsPerHost keeps enough keep-alive connections per node for the
// testnet's bounded in-flight submissions (testnet.DefaultConcurrency) so
// that steady load does not open a new TCP connection per call.
const maxIdleConnsPerHost = 256

// Error is a JSON-RPC error object returned by the server. Application
// errors from rumor use code -32000 (ErrCodeApp) with Data carrying the
// chain's reason, e.g. {"reason":"nonce too low","code":7}.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// ErrCodeApp is the JSON-RPC code rumor uses for application errors, such
// as a transaction the chain rejects.
const ErrCodeApp = -32000

// Error formats the code, message and data.
func (e *Error) Error() string {
	s := fmt.Sprintf("rpc error %d: %s", e.Code, e.Message)
	if len(e.Data) > 0 && string(e.Data) != "null" {
		s += " " + string(e.Data)
	}
	return s
}

// Reason returns the chain reason carried in an application error's data
// ({"reason": "..."}), or "" when there is none.
func (e *Error) Reason() string {
	var d struct {
		Reason string `json:"reason"`
	}
	if len(e.Data) == 0 || json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	return d.Reason
}

// Client calls one rumor node. The zero value is not usable; use New.
type Client struct {
	url    string
	hc     *http.Client
	nextID atomic.Uint64
}

// sharedTransport is used by clients created with a nil *http.Client, so
// that many clients (one per testnet node) share one connection pool.
var sharedTransport = &http.Transport{
	Proxy:               nil, // rumor RPC is local; never route it via HTTP_PROXY
	MaxIdleConns:        0,   // no global cap; per-host cap below
	MaxIdleConnsPerHost: maxIdleConnsPerHost,
	IdleConnTimeout:     90 * time.Second,
}

// New returns a client for endpoint, which may be a URL ("http://host:port/")
// or a bare "host:port" (http is assumed). hc nil uses a shared transport
// with keep-alive sized for load generation.
func New(endpoint string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: sharedTransport}
	}
	return &Client{url: NormalizeURL(endpoint), hc: hc}
}

// URL returns the endpoint the client posts to.
func (c *Client) URL() string { return c.url }

// NormalizeURL turns "host:port" into "http://host:port/" and leaves full
// URLs alone.
func NormalizeURL(endpoint string) string {
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	if !strings.HasSuffix(endpoint, "/") && strings.Count(endpoint, "/") == 2 {
		endpoint += "/"
	}
	return endpoint
}

type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      string `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
}

// Call invokes method with positional params and decodes the result into
// result (which may be nil to discard it, or a *json.RawMessage to keep it
// raw). A server-side error is returned as *Error; transport and decoding
// failures as other errors.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	id := strconv.FormatUint(c.nextID.Add(1), 10)
	body, err := json.Marshal(request{JSONRPC: "2.0", ID: id, Method: method, Params: params})
	if err != nil {
		return fmt.Errorf("%s: encode params: %w", method, err)
	}
	data, resp, err := c.post(ctx, method, body)
	if err != nil {
		return err
	}
	var r response
	if err := json.Unmarshal(data, &r); err != nil {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %s", method, resp.Status)
		}
		return fmt.Errorf("%s: decode reply: %w", method, err)
	}
	if r.Error != nil {
		return r.Error
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s", method, resp.Status)
	}
	if string(r.ID) != strconv.Quote(id) {
		return fmt.Errorf("%s: reply id %s does not match request id %q", method, r.ID, id)
	}
	if result == nil {
		return nil
	}
	if len(r.Result) == 0 {
		return fmt.Errorf("%s: reply has neither result nor error", method)
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("%s: decode result: %w", method, err)
	}
	return nil
}

// post sends one JSON-RPC message (a request or a batch) and returns the
// reply's bytes, at most MaxResponseBytes, within DefaultTimeout when ctx
// has no deadline. what names the call in errors.
func (c *Client) post(ctx context.Context, what string, body []byte) ([]byte, *http.Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read reply: %w", what, err)
	}
	if len(data) > MaxResponseBytes {
		return nil, nil, fmt.Errorf("%s: reply larger than %d bytes", what, MaxResponseBytes)
	}
	return data, resp, nil
}

// IsAppError reports whether err is a server-side application error (the
// request reached the node and was refused, e.g. an invalid tx), as opposed
// to a transport failure whose effect on the node is unknown.
func IsAppError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == ErrCodeApp
}
