package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/gorilla/websocket"
)

// wsMaxPending caps the messages one WebSocket client may have sent that
// the node has read and not yet finished (answered, or run when they are
// notifications). The reader reads ahead of the session's wsConcurrency
// workers into a queue; without a cap (jrpc2, which served WebSocket
// before, queued what it read without limit) a client that writes faster
// than its calls complete grew the node's memory without bound. At the
// cap the session stops reading: the client's writes back up in TCP,
// which is the backpressure a client should feel. 32 is 8x wsConcurrency:
// queued work for a busy moment, and with messages of at most
// RPCMaxBodyBytes (5 MiB) at most 160 MiB per client.
const wsMaxPending = 32

// wsChannel is a session's WebSocket connection: one text message per
// JSON-RPC message. wmu serializes writes: answers from the workers,
// pushes from the subscription forwarders.
//
// pending holds a token per message read and not yet finished: read takes
// one before each read, the worker that finishes the message gives it
// back.
type wsChannel struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	pending chan struct{} // capacity wsMaxPending
	closed  chan struct{}
	once    sync.Once
}

func newWSChannel(conn *websocket.Conn) *wsChannel {
	return &wsChannel{conn: conn, pending: make(chan struct{}, wsMaxPending), closed: make(chan struct{})}
}

// errTooManyPending ends a connection whose client kept wsMaxPending
// messages unfinished for wsPongWait.
var errTooManyPending = errors.New("rpc: client kept too many requests unanswered")

// acquire takes a pending token, waiting while wsMaxPending are out.
func (c *wsChannel) acquire() error {
	select {
	case c.pending <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(wsPongWait)
	defer t.Stop()
	select {
	case c.pending <- struct{}{}:
		return nil
	case <-c.closed:
		return io.EOF
	case <-t.C:
		return errTooManyPending
	}
}

// release gives a pending token back, if one is out.
func (c *wsChannel) release() {
	select {
	case <-c.pending:
	default:
	}
}

// send writes one message.
func (c *wsChannel) send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

// read takes a pending token and reads the client's next message; the
// token is the caller's to give back once the message is finished. io.EOF
// means the client or the server closed the connection.
func (c *wsChannel) read() ([]byte, error) {
	if err := c.acquire(); err != nil {
		return nil, err
	}
	_, msg, err := c.conn.ReadMessage()
	if err != nil {
		c.release()
		if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
			return nil, io.EOF
		}
		return nil, err
	}
	return msg, nil
}

// close closes the connection; a read waiting for a token returns.
func (c *wsChannel) close() error {
	c.once.Do(func() { close(c.closed) })
	return c.conn.Close()
}

// wsSession is one WebSocket client: its connection, workers and
// subscriptions.
type wsSession struct {
	s    *Server
	conn *websocket.Conn
	ch   *wsChannel // set once the session is about to serve
	ctx  context.Context
	stop context.CancelFunc

	mu   sync.Mutex
	subs map[string]*feedSub
	wg   sync.WaitGroup // subscription forwarders and the pinger
}

type sessionKey struct{}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccess(w, r) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closing", http.StatusServiceUnavailable)
		return
	}
	if len(s.sessions) >= s.cfg.MaxWSConns {
		s.mu.Unlock()
		http.Error(w, "too many WebSocket clients", http.StatusServiceUnavailable)
		return
	}
	// Reserve the slot before upgrading so concurrent upgrades cannot
	// exceed MaxWSConns.
	ws := &wsSession{s: s, subs: make(map[string]*feedSub)}
	s.sessions[ws] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ws)
		s.mu.Unlock()
	}()

	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader wrote the HTTP error
	}
	conn.SetReadLimit(s.cfg.MaxBodyBytes)
	_ = conn.SetReadDeadline(time.Now().Add(wsPongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(wsPongWait)) })

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ws.mu.Lock()
	ws.conn, ws.ctx, ws.stop = conn, ctx, stop
	ws.mu.Unlock()
	// Close may have snapshotted the sessions before conn was set.
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		_ = conn.Close()
		return
	}
	ch := newWSChannel(conn)
	ws.mu.Lock()
	ws.ch = ch
	ws.mu.Unlock()

	ws.wg.Add(1)
	go ws.pinger()
	ws.serve(context.WithValue(ctx, sessionKey{}, ws))
	stop()
	ws.unsubscribeAll()
	_ = ch.close()
	ws.wg.Wait()
}

// serve reads the client's messages and runs them on wsConcurrency
// workers until the connection ends; it returns once the workers have.
// A message is read only while fewer than wsMaxPending are unfinished, so
// the queue between the reader and the workers never holds more.
func (ws *wsSession) serve(ctx context.Context) {
	queue := make(chan []byte, wsMaxPending)
	var workers sync.WaitGroup
	for range wsConcurrency {
		workers.Go(func() {
			for msg := range queue {
				// Messages still queued when the session ends are dropped.
				if ctx.Err() == nil {
					if out := ws.s.runWSMessage(ctx, msg); out != nil {
						if err := ws.ch.send(out); err != nil {
							ws.close()
						}
					}
				}
				ws.ch.release()
			}
		})
	}
	for {
		msg, err := ws.ch.read()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Debugw("ws session ends", "err", err)
			}
			break
		}
		queue <- msg // never blocks: the queue holds wsMaxPending
	}
	ws.stop()
	close(queue)
	workers.Wait()
}

// runWSMessage answers one WebSocket message: the protocol errors
// serveHTTP answers for a body, then the requests (see runMessage).
func (s *Server) runWSMessage(ctx context.Context, msg []byte) []byte {
	reqs, refusal := s.checkMessage(msg)
	if refusal != nil {
		return refusal
	}
	return s.runMessage(ctx, s.wsMethodMap, reqs)
}

// pinger keeps the read deadline alive on an idle but responsive client.
func (ws *wsSession) pinger() {
	defer ws.wg.Done()
	t := time.NewTicker(wsPingInterval)
	defer t.Stop()
	for {
		select {
		case <-ws.ctx.Done():
			return
		case <-t.C:
			if err := ws.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)); err != nil {
				ws.close()
				return
			}
		}
	}
}

// close ends the session: closing the connection makes the reader's read
// fail (or its wait for a pending token end), which unwinds serveWS.
func (ws *wsSession) close() {
	ws.mu.Lock()
	conn, ch := ws.conn, ws.ch
	ws.mu.Unlock()
	switch {
	case ch != nil:
		_ = ch.close()
	case conn != nil:
		_ = conn.Close()
	}
}

func (ws *wsSession) unsubscribeAll() {
	ws.mu.Lock()
	subs := ws.subs
	ws.subs = make(map[string]*feedSub)
	ws.mu.Unlock()
	for _, sub := range subs {
		ws.s.backend.Feed.unsubscribe(sub)
	}
}

// subscriptionNotice is the params of a "subscription" notification, in
// geth's shape: {"subscription": id, "result": event}; when the client fell
// too far behind, "error" says so and the subscription ends.
type subscriptionNotice struct {
	Subscription string `json:"subscription"`
	Result       any    `json:"result,omitempty"`
	Error        string `json:"error,omitempty"`
}

// subscribe implements the WebSocket-only "subscribe" method.
func (s *Server) subscribe(ctx context.Context, req *jrpc2.Request) (any, error) {
	ws, _ := ctx.Value(sessionKey{}).(*wsSession)
	if ws == nil {
		return nil, &jrpc2.Error{Code: jrpc2.MethodNotFound, Message: "subscribe is only available over WebSocket"}
	}
	var topic string
	if err := positional(req, 1, &topic); err != nil {
		return nil, err
	}
	if topic != TopicNewHeads && topic != TopicNewPendingTxs {
		return nil, invalidParams("unknown subscription %q: want %q or %q", topic, TopicNewHeads, TopicNewPendingTxs)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id := "0x" + hex.EncodeToString(raw[:])

	ws.mu.Lock()
	if len(ws.subs) >= maxSubscriptionsPerConn {
		ws.mu.Unlock()
		return nil, &jrpc2.Error{Code: codeLimit, Message: fmt.Sprintf("at most %d subscriptions per connection", maxSubscriptionsPerConn)}
	}
	sub := s.backend.Feed.subscribe(topic)
	ws.subs[id] = sub
	ws.wg.Add(1)
	ws.mu.Unlock()
	go ws.forward(id, sub)
	return id, nil
}

// unsubscribe implements the WebSocket-only "unsubscribe" method.
func (s *Server) unsubscribe(ctx context.Context, req *jrpc2.Request) (any, error) {
	ws, _ := ctx.Value(sessionKey{}).(*wsSession)
	if ws == nil {
		return nil, &jrpc2.Error{Code: jrpc2.MethodNotFound, Message: "unsubscribe is only available over WebSocket"}
	}
	var id string
	if err := positional(req, 1, &id); err != nil {
		return nil, err
	}
	ws.mu.Lock()
	sub, ok := ws.subs[id]
	delete(ws.subs, id)
	ws.mu.Unlock()
	if ok {
		s.backend.Feed.unsubscribe(sub)
	}
	return ok, nil
}

// pushMessage is a notification the server pushes to a WebSocket client.
type pushMessage struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

// notify pushes a "subscription" notification.
func (ws *wsSession) notify(n subscriptionNotice) error {
	b, err := json.Marshal(pushMessage{JSONRPC: "2.0", Method: "subscription", Params: n})
	if err != nil {
		return err
	}
	return ws.ch.send(b)
}

// forward pushes a subscription's events to the client until the
// subscription ends (unsubscribe, dropped for lagging, session over).
func (ws *wsSession) forward(id string, sub *feedSub) {
	defer ws.wg.Done()
	for v := range sub.ch {
		if err := ws.notify(subscriptionNotice{Subscription: id, Result: v}); err != nil {
			if ws.ctx.Err() == nil {
				log.Debugw("ws notify failed", "err", err)
			}
			ws.close()
			return
		}
	}
	if sub.dropped.Load() {
		ws.mu.Lock()
		delete(ws.subs, id)
		ws.mu.Unlock()
		_ = ws.notify(subscriptionNotice{Subscription: id,
			Error: fmt.Sprintf("subscriber fell %d events behind; subscription ended", feedBuffer)})
	}
}
