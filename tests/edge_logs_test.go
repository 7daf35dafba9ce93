package tests

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
)

// percentDecode undoes every %XX escape it finds, leaving malformed ones,
// as a reader of the log (or a decoder in the pipeline) would.
func percentDecode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &c); err == nil {
				b.WriteByte(c)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// encodeEvery percent-encodes each byte of s, upper-case hex.
func encodeEvery(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// TestNoKeyInAnyLog sends a real key in every place a client could put it
// by mistake (or to plant it in the logs), plain and percent-encoded,
// through the shipped Caddyfile and a real backend, and then reads every
// log line of both: no line may hold the key, however it was encoded.
func TestNoKeyInAnyLog(t *testing.T) {
	s := startEdgeStack(t)
	gw := s.gateway
	key := s.key.Key
	forms := map[string]string{
		"plain":                        key,
		"first letter %61":             "%61" + key[1:],
		"underscore %5F":               key[:4] + "%5F" + key[5:],
		"underscore %5f":               key[:4] + "%5f" + key[5:],
		"every byte encoded":           encodeEvery(key),
		"body encoded, lower-case hex": key[:5] + strings.ToLower(encodeEvery(key[5:])),
	}

	// raw sends one request as written, so nothing normalises it.
	requests := 0
	raw := func(t *testing.T, method, target, host string, headers ...string) *http.Response {
		t.Helper()
		c := mustDial(t, fmt.Sprintf("127.0.0.1:%d", gw.Port))
		defer c.Close()
		var req strings.Builder
		fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
		for i := 0; i+1 < len(headers); i += 2 {
			fmt.Fprintf(&req, "%s: %s\r\n", headers[i], headers[i+1])
		}
		req.WriteString("\r\n")
		if _, err := io.WriteString(c, req.String()); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s %s (Host %.12s…): %v", method, target, host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(percentDecode(string(body)), key[5:]) {
			// The client sent it; echoing it in a 4xx message is not a
			// log, but the request id must never echo it (below).
			t.Logf("%s %s: the answer quotes what the client sent", method, target)
		}
		requests++
		return resp
	}

	for name, form := range forms {
		t.Run("query string, "+name, func(t *testing.T) {
			// Authenticated, so it reaches the backend (which refuses the
			// unknown parameter); and unauthenticated.
			raw(t, "GET", "/api/v1/memory?key="+form, "localhost", "azen-api-key", key)
			raw(t, "GET", "/api/v1/memory?"+form+"=1", "localhost")
		})
		t.Run("path, "+name, func(t *testing.T) {
			raw(t, "GET", "/api/v1/memory/"+form, "localhost", "azen-api-key", key)
			raw(t, "GET", "/elsewhere/"+form, "localhost")
		})
		t.Run("Host, "+name, func(t *testing.T) {
			raw(t, "GET", "/api/v1/memory", form, "azen-api-key", key)
		})
	}
	t.Run("X-Request-Id is never the key", func(t *testing.T) {
		for _, h := range []string{key, "trace-" + key, strings.ToUpper(key[:5]) + key[5:]} {
			resp := raw(t, "GET", "/api/v1/memory", "localhost", "azen-api-key", key, "X-Request-Id", h)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if id := resp.Header.Get(contract.RequestIDHeader); id == h || strings.Contains(id, key[5:25]) {
				t.Errorf("the key sent as X-Request-Id was kept and echoed: %q", id)
			}
		}
	})
	t.Run("method", func(t *testing.T) {
		raw(t, key, "/api/v1/memory", "localhost")
		raw(t, key[:32], "/api/v1/memory", "localhost")
	})
	t.Run("other headers and cookies", func(t *testing.T) {
		raw(t, "GET", "/api/v1/memory", "localhost", "azen-api-key", key, "X-Api-Key", key, "Cookie", "azen_session="+key,
			"User-Agent", key, "Referer", "https://example.com/?k="+forms["first letter %61"], "Authorization", "Bearer "+key)
	})

	// Every request has its access log line (the gateway logs asynchronously).
	waitFor(t, "an access log line per request", func() bool {
		return strings.Count(gw.Output(), `"logger":"http.log.access`) >= requests
	})
	secret := key[5:25] // 20 characters of the key's random part
	for proc, out := range map[string]string{"azen-gateway": gw.Output(), "azen-backend": s.backend.Output()} {
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		lines := 0
		for sc.Scan() {
			lines++
			line := sc.Text()
			if strings.Contains(line, secret) || strings.Contains(percentDecode(line), secret) ||
				strings.Contains(percentDecode(percentDecode(line)), secret) {
				t.Errorf("%s logged the key: %.300s", proc, line)
			}
		}
		if lines == 0 {
			t.Errorf("%s printed no log line at all", proc)
		}
	}
	if !strings.Contains(gw.Output(), "azen_REDACTED") {
		t.Error("no access log line shows the redaction at work")
	}
}
