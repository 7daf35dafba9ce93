package tests

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// tap sits between gateway and backend and keeps a copy of every request
// the gateway forwards: what an attacker on that network would capture.
type tap struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (tp *tap) last(t *testing.T, method, path string) *http.Request {
	t.Helper()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for i := len(tp.seen) - 1; i >= 0; i-- {
		if tp.seen[i].Method == method && tp.seen[i].URL.Path == path {
			return tp.seen[i]
		}
	}
	t.Fatalf("the tap saw no %s %s", method, path)
	return nil
}

// replay sends a captured request's headers to the backend again, with
// another query and body.
func replay(t *testing.T, backendURL string, captured *http.Request, rawQuery string, body []byte) int {
	t.Helper()
	u := backendURL + captured.URL.Path
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	sameHeaders := func(r *request) { r.header = captured.Header.Clone() }
	return call(t, captured.Method, u, sameHeaders, withBody(bytes.NewReader(body))).status
}

// TestCapturedSignaturesCannotBeReplayedWithAnotherQueryOrBody: the
// signature covers the raw query and the body's SHA-256 (contract §4), so
// headers captured between gateway and backend are worth nothing for any
// other request within their 60 s.
func TestCapturedSignaturesCannotBeReplayedWithAnotherQueryOrBody(t *testing.T) {
	pg := testenv.StartPostgres(t)
	env := map[string]string{
		"AZEN_DATABASE_URL":    pg.CreateDatabase(t),
		"AZEN_GATEWAY_SECRET":  testenv.GatewaySecret(),
		"AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1"),
	}
	backend := testenv.StartBackend(t, env)
	target, _ := url.Parse(backend.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	tp := &tap{}
	tapSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		tp.mu.Lock()
		tp.seen = append(tp.seen, r.Clone(r.Context()))
		tp.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		proxy.ServeHTTP(w, r)
	}))
	defer tapSrv.Close()
	gwEnv := map[string]string{"AZEN_BACKENDS": strings.TrimPrefix(tapSrv.URL, "http://")}
	for k, v := range env {
		gwEnv[k] = v
	}
	gw := testenv.StartGateway(t, shippedCaddyfile(t), gwEnv)
	key := testenv.CreateKeyFull(t, env, "--user", "bob")

	if r := sysCall(t, "POST", gw.URL+"/api/v1/memory", key.Key, map[string]any{"text": "a harmless note"}); r.status != 201 {
		t.Fatalf("create: %v", r)
	}
	post := tp.last(t, "POST", "/api/v1/memory")
	if code := sysCall(t, "GET", gw.URL+"/api/v1/memory?per=1", key.Key, nil).status; code != 200 {
		t.Fatalf("list: %d", code)
	}
	list := tp.last(t, "GET", "/api/v1/memory")

	t.Run("a captured POST replayed with new bodies creates nothing", func(t *testing.T) {
		for _, forged := range []string{`{"text":"forged 1"}`, `{"text":"forged 2"}`, `{"text":"forged 3"}`} {
			if code := replay(t, backend.URL, post, "", []byte(forged)); code != 401 {
				t.Fatalf("replayed with body %s: %d, want 401", forged, code)
			}
		}
		if n := sysCall(t, "GET", gw.URL+"/api/v1/memory?per=100", key.Key, nil).page().TotalCount; n != 1 {
			t.Fatalf("the organization holds %v memories, want 1", n)
		}
	})
	t.Run("a captured list replayed with another query is refused", func(t *testing.T) {
		if code := replay(t, backend.URL, list, "per=100&userId=alice", nil); code != 401 {
			t.Fatalf("?per=100&userId=alice: %d, want 401", code)
		}
		if code := replay(t, backend.URL, list, "", nil); code != 401 {
			t.Fatalf("query dropped: %d, want 401", code)
		}
	})
	t.Run("the same request with the same body still verifies", func(t *testing.T) {
		// The signature binds a request to its content, not to one use.
		if code := replay(t, backend.URL, list, "per=1", nil); code != 200 {
			t.Fatalf("exact replay: %d", code)
		}
	})
}
