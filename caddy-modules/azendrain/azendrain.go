// Package azendrain is the azen_drain listener wrapper: on a config reload,
// the idle HTTP/1.1 keep-alive connections of the old server are handed to
// the new server instead of being cut.
//
// Why: Go's http.Server.Shutdown, which Caddy calls on the old server of a
// reload, closes every idle keep-alive connection at once, and drops a
// request it reads after the shutdown began. HTTP/1.1 cannot tell a client
// first, so a client that writes its next request onto such a connection in
// that instant gets EOF or a reset, and a POST is not retried by most
// clients (Go's retries only requests it knows to be idempotent). During a
// reload the listening socket stays open for the new server, which can just
// as well serve these connections: the wrapper keeps the bytes of a request
// the old server read but will not answer, and gives the connection, with
// those bytes replayed, to the new server of the same address. Connections
// the old server is still answering finish there (the grace period), with
// `Connection: close`. TLS and HTTP/2 connections are closed as before
// (HTTP/2 tells its clients with GOAWAY, and they retry); so are all
// connections when no new server takes the address over (the process
// exits, or the address left the config).
package azendrain

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(Wrapper{})
}

// Wrapper is the listener wrapper. Put it before `tls` in a server's
// listener_wrappers, so it sees the connections as accepted.
type Wrapper struct{}

// CaddyModule returns the Caddy module information.
func (Wrapper) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.listeners.azen_drain",
		New: func() caddy.Module { return new(Wrapper) },
	}
}

// UnmarshalCaddyfile reads `azen_drain`, which takes no options.
func (*Wrapper) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the wrapper name
	if d.NextArg() {
		return d.Errf("azen_drain takes no arguments, got %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("azen_drain takes no block, found %q", d.Val())
	}
	return nil
}

// WrapListener wraps ln and makes it the successor of any earlier listener
// of the same address.
func (*Wrapper) WrapListener(ln net.Listener) net.Listener {
	l := &listener{
		Listener: ln,
		key:      ln.Addr().Network() + " " + ln.Addr().String(),
		accepted: make(chan acceptResult),
		handoff:  make(chan net.Conn, handoffQueue),
		done:     make(chan struct{}),
	}
	successors.Lock()
	successors.m[l.key] = l
	successors.Unlock()
	go l.acceptLoop()
	return l
}

// handoffQueue bounds the connections waiting for the new server's Accept.
const handoffQueue = 256

// successors maps an address to its newest listener: the one a stopping
// listener of that address hands its connections to.
var successors = struct {
	sync.Mutex
	m map[string]*listener
}{m: map[string]*listener{}}

type acceptResult struct {
	c   net.Conn
	err error
}

type listener struct {
	net.Listener
	key      string
	accepted chan acceptResult // from acceptLoop
	handoff  chan net.Conn     // from a predecessor
	done     chan struct{}     // closed by Close
	once     sync.Once
}

// acceptLoop accepts from the socket, so that Accept can also take
// connections handed over from the previous server.
func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				l.release(&conn{Conn: c, l: l})
			}
			return
		}
		if err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case r := <-l.accepted:
		if r.err != nil {
			return nil, r.err
		}
		return &conn{Conn: r.c, l: l}, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops the listener: from now on, the connections its server closes
// (or drops a request on) go to the successor when they can.
func (l *listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		successors.Lock()
		if successors.m[l.key] == l {
			delete(successors.m, l.key)
		}
		successors.Unlock()
		// Connections handed to this listener that its server never took.
		for {
			select {
			case c := <-l.handoff:
				l.release(c.(*conn))
				continue
			default:
			}
			break
		}
	})
	return l.Listener.Close()
}

func (l *listener) stopping() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// successor is the newest listener of the same address, if it is not l and
// still running.
func (l *listener) successor() *listener {
	successors.Lock()
	defer successors.Unlock()
	s := successors.m[l.key]
	if s == nil || s == l || s.stopping() {
		return nil
	}
	return s
}

// release hands c to the successor, or closes it if there is none.
func (l *listener) release(c *conn) {
	if s := l.successor(); s != nil && c.plainHTTP1() {
		nc := &conn{Conn: c.Conn, l: s, replay: c.unanswered()}
		select {
		case s.handoff <- nc:
			return
		default: // the new server is not taking connections fast enough
		}
	}
	_ = c.Conn.Close()
}

// Connection states.
const (
	open = iota
	handingOff
	closed
)

// maxUnanswered bounds the bytes kept of a request not yet answered; a
// request larger than that was being served, not dropped.
const maxUnanswered = 64 << 10

// keptCap is the largest buffer a connection keeps between requests.
const keptCap = 4 << 10

type conn struct {
	net.Conn
	l *listener

	mu         sync.Mutex
	state      int
	reading    int // Reads in progress on the socket
	readDone   chan struct{}
	proto      byte   // first byte received, 0 before any
	replay     []byte // bytes to return before reading the socket
	unansw     []byte // bytes read since the last Write: a request not yet answered
	overflowed bool   // unansw went past maxUnanswered
	halfClosed bool   // the server called CloseWrite: it is done with it
}

func (c *conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.state != open {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		c.keep(p[:n])
		c.mu.Unlock()
		return n, nil
	}
	c.reading++
	c.mu.Unlock()

	n, err := c.Conn.Read(p)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading--
	if n > 0 {
		if c.proto == 0 {
			c.proto = p[0] | 0x80*b2u(n >= 4 && string(p[:4]) == "PRI ")
		}
		c.keep(p[:n])
	}
	if c.state == handingOff {
		// The old server must not see these bytes: they go with the
		// connection to the new server.
		if c.reading == 0 && c.readDone != nil {
			close(c.readDone)
			c.readDone = nil
		}
		return 0, net.ErrClosed
	}
	return n, err
}

// keep remembers bytes of a request not yet answered.
func (c *conn) keep(b []byte) {
	if c.overflowed {
		return
	}
	if len(c.unansw)+len(b) > maxUnanswered {
		c.overflowed = true
		c.unansw = nil
		return
	}
	c.unansw = append(c.unansw, b...)
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.state != open {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if cap(c.unansw) > keptCap {
		c.unansw = nil // an idle connection keeps no large buffer
	} else {
		c.unansw = c.unansw[:0]
	}
	c.overflowed = false
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// plainHTTP1 reports whether the connection carries cleartext HTTP/1.x
// (not a TLS handshake, not the HTTP/2 preface), or nothing yet.
func (c *conn) plainHTTP1() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proto != 0x16 && c.proto&0x80 == 0 && !c.overflowed
}

// unanswered returns a copy of the bytes read since the last answer.
func (c *conn) unanswered() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.unansw...)
}

// Close closes the connection, unless its listener is stopping: then the
// connection is between answers (idle, just answered, or holding a request
// the old server dropped), and it goes to the new server once the old one
// has stopped reading it. A client that was told `Connection: close` just
// closes its end. A connection the old server half-closed (an unread body,
// an error answer) is closed.
func (c *conn) Close() error {
	c.mu.Lock()
	if c.state != open {
		c.mu.Unlock()
		return nil
	}
	plain := c.proto != 0x16 && c.proto&0x80 == 0 && !c.overflowed
	if !c.l.stopping() || c.halfClosed || !plain || c.l.successor() == nil {
		c.state = closed
		c.mu.Unlock()
		return c.Conn.Close()
	}
	c.state = handingOff
	var wait chan struct{}
	if c.reading > 0 {
		wait = make(chan struct{})
		c.readDone = wait
	}
	c.mu.Unlock()
	if wait != nil {
		// Wake the old server's read of the next request; whatever it
		// brings stays here.
		_ = c.Conn.SetReadDeadline(time.Now())
	}
	go func() {
		if wait != nil {
			<-wait
		}
		_ = c.Conn.SetReadDeadline(time.Time{})
		c.l.release(c)
	}()
	return nil
}

// CloseWrite half-closes a TCP connection, as http.Server does without the
// wrapper, unless the connection is being handed over.
func (c *conn) CloseWrite() error {
	c.mu.Lock()
	state := c.state
	if state == open {
		c.halfClosed = true
	}
	c.mu.Unlock()
	if state != open {
		return nil
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// The old server's deadlines must not reach a connection it handed over.
func (c *conn) SetDeadline(t time.Time) error      { return c.setDeadline(c.Conn.SetDeadline, t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.setDeadline(c.Conn.SetReadDeadline, t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.setDeadline(c.Conn.SetWriteDeadline, t) }

func (c *conn) setDeadline(set func(time.Time) error, t time.Time) error {
	c.mu.Lock()
	state := c.state
	c.mu.Unlock()
	if state != open {
		return os.ErrDeadlineExceeded
	}
	return set(t)
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Interface guards.
var (
	_ caddy.ListenerWrapper = (*Wrapper)(nil)
	_ caddyfile.Unmarshaler = (*Wrapper)(nil)
)
