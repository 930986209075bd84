package rpc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/handler"
	"github.com/creachadair/jrpc2/jhttp"
	"github.com/gorilla/websocket"
	golog "github.com/ipfs/go-log/v2"
)

var log = golog.Logger("rumor/rpc")

// Server limits and timeouts that are not configurable. Each says why.
const (
	// readHeaderTimeout bounds a client's request line and headers
	// (slowloris); net/http has no default.
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole request: 5 MiB at 1 MiB/s.
	readTimeout = 30 * time.Second
	// writeTimeout bounds writing a response; a response is at most a batch
	// of full blocks, megabytes, on a local link.
	writeTimeout = 30 * time.Second
	// idleTimeout closes idle keep-alive connections (nginx's default 75 s,
	// rounded up).
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes caps request headers (net/http's default is 1 MiB;
	// a JSON-RPC request needs a few hundred bytes of headers).
	maxHeaderBytes = 64 << 10
	// wsWriteTimeout bounds one WebSocket write; a client that cannot take
	// a message in this long is disconnected.
	wsWriteTimeout = 10 * time.Second
	// wsPingInterval and wsPongWait keep idle WebSocket connections honest:
	// a client that stops answering pings is dropped after wsPongWait
	// (geth pings every 30 s and waits 30 s more).
	wsPingInterval = 30 * time.Second
	wsPongWait     = 60 * time.Second
	// wsConcurrency caps the requests one WebSocket client has running at
	// once: a client can queue more, but not hog every core.
	wsConcurrency = 4
	// maxSubscriptionsPerConn caps one WebSocket client's subscriptions;
	// each holds a buffer of feedBuffer events.
	maxSubscriptionsPerConn = 16
	// shutdownTimeout bounds Close's wait for in-flight HTTP requests.
	shutdownTimeout = 5 * time.Second
)

// Config configures the RPC server.
type Config struct {
	// Addr is the listen address, host:port (port 0 = any free port).
	Addr string
	// Token, when non-empty, must be presented as "Authorization: Bearer
	// <token>" on every HTTP request and WebSocket upgrade.
	Token string
	// AllowedOrigins lists browser origins allowed to call the server; "*"
	// allows any. Requests with another Origin header are refused (403).
	AllowedOrigins []string
	// MaxBodyBytes caps a request body or WebSocket message (> 0).
	MaxBodyBytes int64
	// MaxBatch caps the requests in one batch (> 0).
	MaxBatch int
	// MaxWSConns caps concurrent WebSocket connections (> 0).
	MaxWSConns int
}

// Server serves JSON-RPC 2.0 over HTTP POST at "/" and WebSocket at "/ws".
//
// Goroutines: the http.Server's (one per connection); per WebSocket client,
// its jrpc2 server's reader and workers, a pinger, and one forwarder per
// subscription. mu guards the set of live WebSocket sessions, which Close
// ends before waiting for their goroutines (wg).
type Server struct {
	cfg     Config
	backend Backend
	methods handler.Map
	bridge  jhttp.Bridge
	httpSrv *http.Server
	ln      net.Listener

	mu       sync.Mutex
	sessions map[*wsSession]struct{}
	closed   bool
	wg       sync.WaitGroup
	once     sync.Once
}

// New builds a server for backend. It does not listen until Start.
func New(cfg Config, b Backend) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 || cfg.MaxBatch <= 0 || cfg.MaxWSConns <= 0 {
		return nil, errors.New("rpc: MaxBodyBytes, MaxBatch and MaxWSConns must be positive")
	}
	if b.Relay == nil || b.Tip == nil {
		return nil, errors.New("rpc: backend needs Relay and Tip")
	}
	if b.Feed == nil {
		b.Feed = NewFeed()
	}
	s := &Server{cfg: cfg, backend: b, sessions: make(map[*wsSession]struct{})}
	s.methods = s.methodMap()
	s.bridge = jhttp.NewBridge(s.methods, &jhttp.BridgeOptions{
		// The body was read, limited and parsed by serveHTTP; hand the
		// bridge what it parsed instead of reading the body again.
		ParseRequest: func(r *http.Request) ([]*jrpc2.ParsedRequest, error) {
			reqs, _ := r.Context().Value(parsedKey{}).([]*jrpc2.ParsedRequest)
			return reqs, nil
		},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/", s.serveHTTP)
	s.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	return s, nil
}

// Start listens on cfg.Addr and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("rpc: %w", err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("rpc server stopped", "err", err)
		}
	}()
	log.Infow("JSON-RPC listening", "http", "http://"+ln.Addr().String()+"/", "ws", "ws://"+ln.Addr().String()+"/ws", "auth", s.cfg.Token != "")
	return nil
}

// Addr returns the bound host:port ("" before Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Handler returns the server's HTTP handler, for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.httpSrv.Handler }

// Close stops accepting, ends WebSocket sessions, waits for in-flight
// requests (up to shutdownTimeout) and for every goroutine the server
// started. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		sessions := make([]*wsSession, 0, len(s.sessions))
		for ws := range s.sessions {
			sessions = append(sessions, ws)
		}
		s.mu.Unlock()
		for _, ws := range sessions {
			ws.close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if s.ln != nil {
			err = s.httpSrv.Shutdown(ctx)
			if err != nil {
				s.httpSrv.Close()
			}
		}
		s.wg.Wait()
		s.bridge.Close()
	})
	return err
}

type parsedKey struct{}

// checkAccess applies CORS and authentication. It writes the response and
// returns false when the request must not proceed.
func (s *Server) checkAccess(w http.ResponseWriter, r *http.Request) bool {
	if origin := r.Header.Get("Origin"); origin != "" {
		if !s.originAllowed(origin) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return false
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		if r.Method == http.MethodOptions { // preflight
			w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return false
		}
	}
	if s.cfg.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="rumor"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return false
		}
	}
	return true
}

func (s *Server) originAllowed(origin string) bool {
	return slices.Contains(s.cfg.AllowedOrigins, "*") || slices.Contains(s.cfg.AllowedOrigins, origin)
}

// serveHTTP handles a JSON-RPC request or batch over HTTP POST. Transport
// problems get HTTP statuses (401, 403, 405, 413, 415); problems with the
// JSON-RPC message itself get a JSON-RPC error object with HTTP 200, as
// JSON-RPC over HTTP clients expect.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if !s.checkAccess(w, r) {
		return
	}
	w.Header().Set("Accept-Post", "application/json")
	if r.Method != http.MethodPost {
		http.Error(w, "JSON-RPC requests must be POSTed", http.StatusMethodNotAllowed)
		return
	}
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		http.Error(w, "content-type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		http.Error(w, "charset must be utf-8", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body exceeds %d bytes", s.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	reqs, err := jrpc2.ParseRequests(body)
	switch {
	case err != nil:
		writeError(w, jrpc2.ParseError, "parse error: body is not a JSON object or array")
		return
	case len(reqs) == 0:
		writeError(w, jrpc2.InvalidRequest, "empty batch")
		return
	case len(reqs) > s.cfg.MaxBatch:
		writeError(w, jrpc2.InvalidRequest, fmt.Sprintf("batch of %d requests exceeds limit %d", len(reqs), s.cfg.MaxBatch))
		return
	}
	ctx := context.WithValue(r.Context(), parsedKey{}, reqs)
	s.bridge.ServeHTTP(w, r.WithContext(ctx))
}

// errorResponse is a JSON-RPC response carrying only an error.
type errorResponse struct {
	JSONRPC string       `json:"jsonrpc"`
	ID      *string      `json:"id"` // always null: the request could not be read
	Error   *jrpc2.Error `json:"error"`
}

func writeError(w http.ResponseWriter, code jrpc2.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(errorResponse{JSONRPC: "2.0", Error: &jrpc2.Error{Code: code, Message: msg}})
}

func errorBytes(code jrpc2.Code, msg string) []byte {
	b, _ := json.Marshal(errorResponse{JSONRPC: "2.0", Error: &jrpc2.Error{Code: code, Message: msg}})
	return b
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4 << 10,
	WriteBufferSize: 4 << 10,
	// Origins are checked by checkAccess before the upgrade.
	CheckOrigin: func(*http.Request) bool { return true },
}
