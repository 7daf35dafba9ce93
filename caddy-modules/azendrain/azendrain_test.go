package azendrain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// sharedSocket is one listening socket that several servers accept from,
// each through its own fakeClose listener, as Caddy shares a socket between
// the old and the new server of a reload.
type sharedSocket struct {
	ln *net.TCPListener
}

func newSharedSocket(t *testing.T) *sharedSocket {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &sharedSocket{ln: ln.(*net.TCPListener)}
}

// fakeClose is one server's view of the socket: Close stops its Accepts
// without closing the socket. Accept polls, so a closed view notices soon.
type fakeClose struct {
	s      *sharedSocket
	closed atomic.Bool
}

func (f *fakeClose) Accept() (net.Conn, error) {
	for !f.closed.Load() {
		_ = f.s.ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
		c, err := f.s.ln.Accept()
		if err == nil {
			return c, nil // if closed meanwhile, the wrapper hands it on
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return nil, err
		}
	}
	return nil, net.ErrClosed
}

func (f *fakeClose) Close() error {
	f.closed.Store(true)
	return nil
}

func (f *fakeClose) Addr() net.Addr { return f.s.ln.Addr() }

// serve starts an http.Server named name on the socket through the wrapper.
func serve(t *testing.T, s *sharedSocket, name string, wrap bool) *http.Server {
	t.Helper()
	var ln net.Listener = &fakeClose{s: s}
	if wrap {
		ln = (&Wrapper{}).WrapListener(ln)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, name)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return srv
}

// rawClient speaks HTTP/1.1 on one TCP connection and never notices a
// close before it writes, like a client that picks an idle connection from
// its pool at the wrong moment.
type rawClient struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, s *sharedSocket) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, r: bufio.NewReader(c)}
}

func (rc *rawClient) post(body string) (string, error) {
	_ = rc.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(rc.c, "POST /memory HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// reload does what Caddy does: the new server starts on the same socket,
// then the old one shuts down (grace period: in-flight requests finish).
func reload(t *testing.T, s *sharedSocket, old *http.Server, wrap bool) *http.Server {
	t.Helper()
	next := serve(t, s, "new", wrap)
	time.Sleep(20 * time.Millisecond) // the new server is accepting
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return next
}

func TestReloadHandsIdleConnectionsToTheNewServer(t *testing.T) {
	s := newSharedSocket(t)
	old := serve(t, s, "old", true)
	c := dial(t, s)
	if got, err := c.post(`{"text":"a"}`); err != nil || got != "old" {
		t.Fatalf("before the reload: %q %v", got, err)
	}
	reload(t, s, old, true)
	// The connection sat idle through the reload; a client writes its next
	// request on it as if nothing happened.
	for i := range 3 {
		if got, err := c.post(`{"text":"b"}`); err != nil || got != "new" {
			t.Fatalf("request %d on the kept connection: %q %v", i, got, err)
		}
	}
}

// TestWithoutTheWrapperTheIdleConnectionIsCut is the failure the wrapper
// removes: the same client, the same reload, plain listeners.
func TestWithoutTheWrapperTheIdleConnectionIsCut(t *testing.T) {
	s := newSharedSocket(t)
	old := serve(t, s, "old", false)
	c := dial(t, s)
	if got, err := c.post(`{"text":"a"}`); err != nil || got != "old" {
		t.Fatalf("before the reload: %q %v", got, err)
	}
	reload(t, s, old, false)
	if got, err := c.post(`{"text":"b"}`); err == nil {
		t.Fatalf("the cut connection answered %q", got)
	}
}

func TestNoSuccessorClosesAsBefore(t *testing.T) {
	s := newSharedSocket(t)
	old := serve(t, s, "old", true)
	c := dial(t, s)
	if _, err := c.post(`{}`); err != nil {
		t.Fatal(err)
	}
	// The process exits: no new server takes the address.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("the connection stayed open with no server behind it")
	}
}

func TestTLSAndHTTP2AreNotHandedOver(t *testing.T) {
	for name, first := range map[string]string{"TLS handshake": "\x16\x03\x01\x00\x05hello", "HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"} {
		t.Run(name, func(t *testing.T) {
			l := (&Wrapper{}).WrapListener(&fakeClose{s: newSharedSocket(t)}).(*listener)
			next := (&Wrapper{}).WrapListener(&fakeClose{s: &sharedSocket{ln: l.Listener.(*fakeClose).s.ln}}).(*listener)
			defer next.Close()
			a, b := net.Pipe()
			defer b.Close()
			c := &conn{Conn: a, l: l}
			go func() { _, _ = b.Write([]byte(first)) }()
			buf := make([]byte, 64)
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
			_ = l.Close()
			_ = c.Close()
			select {
			case <-next.handoff:
				t.Fatal("handed over")
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := b.Write([]byte("x")); err == nil {
				t.Error("the connection is still open")
			}
		})
	}
}

func TestADroppedRequestIsReplayedToTheNewServer(t *testing.T) {
	s := newSharedSocket(t)
	l := (&Wrapper{}).WrapListener(&fakeClose{s: s}).(*listener)
	next := (&Wrapper{}).WrapListener(&fakeClose{s: s}).(*listener)
	defer next.Close()
	a, b := net.Pipe()
	defer b.Close()
	c := &conn{Conn: a, l: l}
	req := "POST /memory HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
	go func() { _, _ = b.Write([]byte(req)) }()
	buf := make([]byte, 4096)
	n, err := c.Read(buf) // the old server reads the request ...
	if err != nil || string(buf[:n]) != req {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	_ = l.Close() // ... the shutdown begins, and it drops the request
	_ = c.Close()
	select {
	case nc := <-next.handoff:
		got := make([]byte, 4096)
		n, err := nc.Read(got)
		if err != nil || string(got[:n]) != req {
			t.Fatalf("the new server read %q %v, want the dropped request", got[:n], err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("not handed over")
	}
}

func TestAHalfClosedConnectionIsClosed(t *testing.T) {
	s := newSharedSocket(t)
	l := (&Wrapper{}).WrapListener(&fakeClose{s: s}).(*listener)
	next := (&Wrapper{}).WrapListener(&fakeClose{s: s}).(*listener)
	defer next.Close()
	a, b := net.Pipe()
	defer b.Close()
	c := &conn{Conn: a, l: l}
	_ = c.CloseWrite()
	_ = l.Close()
	_ = c.Close()
	select {
	case <-next.handoff:
		t.Fatal("a half-closed connection was handed over")
	case <-time.After(50 * time.Millisecond):
	}
}

func TestUnmarshalCaddyfile(t *testing.T) {
	for input, wantErr := range map[string]string{
		"azen_drain":                  "",
		"azen_drain 5s":               "takes no arguments",
		"azen_drain {\n linger 5s\n}": "takes no block",
	} {
		err := new(Wrapper).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if (wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want %q", input, err, wantErr)
		}
	}
}
