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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/handler"
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
	// writeTimeout bounds writing a response; a response is at most
	// MaxResponseBytes (25 MB by default), which takes 30 s only below
	// 1 MB/s.
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
	// MaxResponseBytes caps the answers to one request body or WebSocket
	// message, counted as they are built: a call whose answer would pass
	// it gets CodeResponseTooLarge instead, and so does every later call
	// of its batch. 0 means DefaultMaxResponseBytes.
	MaxResponseBytes int64
}

// Server serves JSON-RPC 2.0 over HTTP POST at "/" and WebSocket at "/ws".
//
// Goroutines: the http.Server's (one per connection), which run HTTP
// requests themselves, at most httpSlots at once; per WebSocket client, a
// reader (the upgraded handler's goroutine), wsConcurrency workers, a
// pinger, and one forwarder per subscription. mu guards the set of live
// WebSocket sessions, which Close ends before waiting for their goroutines
// (wg).
type Server struct {
	cfg     Config
	backend Backend
	methods handler.Map // HTTP's
	// wsMethodMap is methods plus the WebSocket-only subscribe and
	// unsubscribe.
	wsMethodMap handler.Map
	httpSrv     *http.Server
	ln          net.Listener
	// httpSlots holds a token per HTTP message being run: the bridge to
	// jrpc2 this replaced ran at most NumCPU calls at once, and so does
	// this.
	httpSlots chan struct{}

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
	if cfg.MaxResponseBytes < 0 {
		return nil, errors.New("rpc: MaxResponseBytes must not be negative")
	}
	s := &Server{cfg: cfg, backend: b, sessions: make(map[*wsSession]struct{}),
		httpSlots: make(chan struct{}, runtime.NumCPU())}
	s.methods = s.methodMap()
	s.wsMethodMap = s.wsMethods()
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
	})
	return err
}

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
	reqs, refusal := s.checkMessage(body)
	if refusal != nil {
		writeJSON(w, refusal)
		return
	}
	select {
	case s.httpSlots <- struct{}{}:
	case <-r.Context().Done():
		return // the client left
	}
	out := s.runMessage(r.Context(), s.methods, reqs)
	<-s.httpSlots
	if out == nil {
		w.WriteHeader(http.StatusNoContent) // notifications only
		return
	}
	writeJSON(w, out)
}

// checkMessage parses one client message (an HTTP body or a WebSocket
// message). When it cannot be run at all (not JSON, an empty batch, a
// batch over MaxBatch) it returns the error answer to send instead.
func (s *Server) checkMessage(msg []byte) ([]*jrpc2.ParsedRequest, []byte) {
	reqs, plain := parsePlain(msg)
	var err error
	if !plain {
		reqs, err = jrpc2.ParseRequests(msg)
	}
	switch {
	case err != nil:
		return nil, errorBytes(jrpc2.ParseError, "parse error: message is not a JSON object or array")
	case len(reqs) == 0:
		return nil, errorBytes(jrpc2.InvalidRequest, "empty batch")
	case len(reqs) > s.cfg.MaxBatch:
		return nil, errorBytes(jrpc2.InvalidRequest, fmt.Sprintf("batch of %d requests exceeds limit %d", len(reqs), s.cfg.MaxBatch))
	}
	return reqs, nil
}

// errorBytes encodes an answer carrying only an error, with a null id: the
// message it answers could not be read.
func errorBytes(code jrpc2.Code, msg string) []byte {
	return errorAnswer(json.RawMessage("null"), &jrpc2.Error{Code: code, Message: msg})
}

// writeJSON writes a JSON-RPC answer with HTTP 200, as JSON-RPC over HTTP
// clients expect also for errors.
func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4 << 10,
	WriteBufferSize: 4 << 10,
	// Origins are checked by checkAccess before the upgrade.
	CheckOrigin: func(*http.Request) bool { return true },
}
