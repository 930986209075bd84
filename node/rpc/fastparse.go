package rpc

import (
	"encoding/json"

	"github.com/creachadair/jrpc2"
)

// parsePlain reads a client message in the plain shape that tx senders
// write, an object or a non-empty array of objects each holding exactly
// "jsonrpc":"2.0", an integer or plain string "id", a plain "method" and
// "params" as an array of plain strings, with JSON whitespace anywhere
// JSON allows it. It returns what jrpc2.ParseRequests returns for the same
// message, or false for anything else (escapes, other value types, missing
// or repeated or extra keys, trailing bytes), which the caller then hands
// to jrpc2.ParseRequests. The general parser decodes the message twice
// (once into raw messages, once each into a map) after validating it;
// this one reads it once, which was most of a busy node's JSON-RPC cost.
// FuzzParsePlain checks the agreement.
//
// "Plain" strings hold printable ASCII other than '"' and '\\', so their
// raw bytes are their value.
func parsePlain(msg []byte) ([]*jrpc2.ParsedRequest, bool) {
	p := plainParser{b: msg}
	p.space()
	var out []*jrpc2.ParsedRequest
	switch p.peek() {
	case '{':
		r, ok := p.request()
		if !ok {
			return nil, false
		}
		out = []*jrpc2.ParsedRequest{r}
	case '[':
		p.i++
		for {
			p.space()
			r, ok := p.request()
			if !ok {
				return nil, false
			}
			r.Batch = true
			out = append(out, r)
			p.space()
			if p.eat(']') {
				break
			}
			if !p.eat(',') {
				return nil, false
			}
		}
	default:
		return nil, false
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false
	}
	return out, true
}

// plainParser is parsePlain's cursor over one message.
type plainParser struct {
	b []byte
	i int
}

// peek returns the byte at the cursor, or 0 at the end.
func (p *plainParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// eat advances past c if it is at the cursor.
func (p *plainParser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// space skips JSON whitespace.
func (p *plainParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// str reads a plain string at the cursor and returns its contents.
func (p *plainParser) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// raw returns the message's bytes from start to the cursor.
func (p *plainParser) raw(start int) []byte { return p.b[start:p.i] }

// id reads an id: an integer (JSON's grammar: no leading zeros, no
// fraction or exponent) or a plain string, returned as written.
func (p *plainParser) id() ([]byte, bool) {
	start := p.i
	if p.peek() == '"' {
		if _, ok := p.str(); !ok {
			return nil, false
		}
		return p.raw(start), true
	}
	p.eat('-')
	switch c := p.peek(); {
	case c == '0':
		p.i++
	case '1' <= c && c <= '9':
		for c := p.peek(); '0' <= c && c <= '9'; c = p.peek() {
			p.i++
		}
	default:
		return nil, false
	}
	switch p.peek() {
	case '.', 'e', 'E':
		return nil, false
	}
	return p.raw(start), true
}

// params reads an array of plain strings, returned as written.
func (p *plainParser) params() ([]byte, bool) {
	start := p.i
	if !p.eat('[') {
		return nil, false
	}
	p.space()
	if p.eat(']') {
		return p.raw(start), true
	}
	for {
		if _, ok := p.str(); !ok {
			return nil, false
		}
		p.space()
		if p.eat(']') {
			return p.raw(start), true
		}
		if !p.eat(',') {
			return nil, false
		}
		p.space()
	}
}

// request reads one request object.
func (p *plainParser) request() (*jrpc2.ParsedRequest, bool) {
	if !p.eat('{') {
		return nil, false
	}
	var (
		r                           jrpc2.ParsedRequest
		version, id, method, params bool
	)
	for {
		p.space()
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if !p.eat(':') {
			return nil, false
		}
		p.space()
		switch string(key) {
		case "jsonrpc":
			v, ok := p.str()
			if !ok || version || string(v) != jrpc2.Version {
				return nil, false
			}
			version = true
		case "id":
			v, ok := p.id()
			if !ok || id {
				return nil, false
			}
			r.ID, id = string(v), true
		case "method":
			v, ok := p.str()
			if !ok || method || len(v) == 0 {
				return nil, false
			}
			r.Method, method = string(v), true
		case "params":
			v, ok := p.params()
			if !ok || params {
				return nil, false
			}
			r.Params, params = json.RawMessage(v), true
		default:
			return nil, false
		}
		p.space()
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, false
		}
	}
	if !version || !id || !method || !params {
		return nil, false
	}
	return &r, true
}
