package tests

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestReloadKeepsIdleKeepAliveConnections: a client holds a keep-alive
// connection to the gateway (shipped Caddyfile, real backend), the operator
// runs `azen-gateway reload --force`, and the client then writes its next
// POST on that same connection, as any pooled HTTP/1.1 client may at that
// instant. The old server would have closed it (EOF for the client, and a
// POST is not retried); azen_drain hands it to the new server, which
// answers. Twice, so a handed-over connection survives the next reload too.
func TestReloadKeepsIdleKeepAliveConnections(t *testing.T) {
	s := startEdgeStack(t)
	caddyfile := shippedCaddyfile(t)
	c := mustDial(t, fmt.Sprintf("127.0.0.1:%d", s.gateway.Port))
	defer c.Close()
	r := bufio.NewReader(c)
	post := func(text string) (int, error) {
		body := fmt.Sprintf(`{"text":%q}`, text)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(c, "POST /api/v1/memory HTTP/1.1\r\nHost: localhost\r\nazen-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			s.key.Key, len(body), body); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			return resp.StatusCode, fmt.Errorf("the gateway asked to close the connection")
		}
		return resp.StatusCode, nil
	}
	if code, err := post("before any reload"); err != nil || code != 201 {
		t.Fatalf("first create: %d %v", code, err)
	}
	for i := 1; i <= 2; i++ {
		if out, err := s.gateway.ReloadForce(caddyfile); err != nil {
			t.Fatalf("reload %d: %v\n%s", i, err, out)
		}
		time.Sleep(200 * time.Millisecond) // the old server has closed what it closes
		if code, err := post(fmt.Sprintf("after reload %d", i)); err != nil || code != 201 {
			t.Fatalf("create on the kept connection after reload %d: %d %v", i, code, err)
		}
	}
}
