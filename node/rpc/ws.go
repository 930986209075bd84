package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/creachadair/jrpc2"
	"github.com/creachadair/jrpc2/channel"
	"github.com/gorilla/websocket"
)

// wsMaxPending caps the messages one WebSocket client may have sent that
// await an answer (a request, or a batch holding one). jrpc2 queues what
// it reads without limit and runs wsConcurrency at a time, so a client
// that writes faster than its calls complete grew the node's memory
// without bound. At the cap the channel stops reading: the client's
// writes back up in TCP, which is the backpressure a client should feel.
// 32 is 8x wsConcurrency: queued work for a busy moment, and with
// messages of at most RPCMaxBodyBytes (5 MiB) at most 160 MiB per client.
const wsMaxPending = 32

// wsChannel adapts a WebSocket connection to jrpc2's channel.Channel: one
// text message per JSON-RPC message. jrpc2 serializes its own Sends; wmu
// also serializes the batch-limit errors Recv writes itself.
//
// pending holds a token per message read that awaits an answer: Recv
// takes one before each read (and gives it back when the message is a
// notification, which gets no answer), Send gives one back per answer.
// Server pushes (notifications, carrying a method) give none back.
type wsChannel struct {
	conn     *websocket.Conn
	maxBatch int
	wmu      sync.Mutex
	pending  chan struct{} // capacity wsMaxPending
	closed   chan struct{}
	once     sync.Once
}

func newWSChannel(conn *websocket.Conn, maxBatch int) *wsChannel {
	return &wsChannel{conn: conn, maxBatch: maxBatch, pending: make(chan struct{}, wsMaxPending), closed: make(chan struct{})}
}

// errTooManyPending ends a connection whose client kept wsMaxPending
// messages unanswered for wsPongWait.
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

// inspect reads a client message once for what Recv needs: batch, the
// number of elements when msg is a JSON array (-1 when it is not one, or is
// not valid JSON: the jrpc2 server reports that), and answered, whether
// jrpc2 will answer it: anything but a notification or a batch of
// notifications (undecodable bytes and empty batches get an error answer).
func inspect(msg []byte) (batch int, answered bool) {
	msg = bytes.TrimSpace(msg)
	type probe struct {
		ID json.RawMessage `json:"id"`
	}
	called := func(elem json.RawMessage) bool {
		var p probe
		return json.Unmarshal(elem, &p) != nil || p.ID != nil
	}
	if len(msg) > 0 && msg[0] == '[' {
		var elems []json.RawMessage
		if json.Unmarshal(msg, &elems) != nil {
			return -1, true
		}
		return len(elems), len(elems) == 0 || slices.ContainsFunc(elems, called)
	}
	return -1, called(json.RawMessage(msg))
}

// isAnswer reports whether msg, written by the server, answers a client
// message rather than pushing a notification (which names a method).
func isAnswer(msg []byte) bool {
	msg = bytes.TrimSpace(msg)
	if len(msg) > 0 && msg[0] == '[' {
		return true
	}
	var m struct {
		Method *string `json:"method"`
	}
	return json.Unmarshal(msg, &m) != nil || m.Method == nil
}

var _ channel.Channel = (*wsChannel)(nil)

// Send implements channel.Channel.
func (c *wsChannel) Send(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if isAnswer(msg) {
		c.release()
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

// Recv implements channel.Channel. A batch over the limit is answered here
// with an invalid-request error and never reaches the server.
func (c *wsChannel) Recv() ([]byte, error) {
	for {
		if err := c.acquire(); err != nil {
			return nil, err
		}
		typ, msg, err := c.conn.ReadMessage()
		if err != nil {
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				return nil, io.EOF
			}
			return nil, err
		}
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage {
			c.release()
			continue
		}
		n, answered := inspect(msg)
		if n > c.maxBatch {
			// The error written here is an answer: Send gives the token back.
			if err := c.Send(errorBytes(jrpc2.InvalidRequest, fmt.Sprintf("batch of %d requests exceeds limit %d", n, c.maxBatch))); err != nil {
				return nil, err
			}
			continue
		}
		if !answered {
			c.release()
		}
		return msg, nil
	}
}

// Close implements channel.Channel.
func (c *wsChannel) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.conn.Close()
}

// wsSession is one WebSocket client: its jrpc2 server and subscriptions.
type wsSession struct {
	s    *Server
	conn *websocket.Conn
	ch   *wsChannel // set once the jrpc2 server is about to start
	srv  *jrpc2.Server
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
	ch := newWSChannel(conn, s.cfg.MaxBatch)
	ws.mu.Lock()
	ws.ch = ch
	ws.mu.Unlock()
	ws.srv = jrpc2.NewServer(s.wsMethods(), &jrpc2.ServerOptions{
		AllowPush:   true,
		Concurrency: wsConcurrency,
		NewContext:  func() context.Context { return context.WithValue(ctx, sessionKey{}, ws) },
	})
	ws.srv.Start(ch)

	ws.wg.Add(1)
	go ws.pinger()
	_ = ws.srv.Wait()
	stop()
	ws.unsubscribeAll()
	_ = conn.Close()
	ws.wg.Wait()
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

// close ends the session: closing the connection makes the jrpc2 server's
// Recv fail, which unwinds serveWS.
func (ws *wsSession) close() {
	ws.mu.Lock()
	conn := ws.conn
	ws.mu.Unlock()
	if conn != nil {
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

// forward pushes a subscription's events to the client until the
// subscription ends (unsubscribe, dropped for lagging, session over).
func (ws *wsSession) forward(id string, sub *feedSub) {
	defer ws.wg.Done()
	for v := range sub.ch {
		if err := ws.srv.Notify(ws.ctx, "subscription", subscriptionNotice{Subscription: id, Result: v}); err != nil {
			if !errors.Is(err, jrpc2.ErrConnClosed) && ws.ctx.Err() == nil {
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
		_ = ws.srv.Notify(ws.ctx, "subscription", subscriptionNotice{Subscription: id,
			Error: fmt.Sprintf("subscriber fell %d events behind; subscription ended", feedBuffer)})
	}
}
