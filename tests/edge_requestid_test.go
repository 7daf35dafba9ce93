package tests

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// requestIDCaddyfile uses azen_auth and azen_ratelimit without
// azen_request_id, and proxies to an upstream that echoes the id (as
// azen-backend does) without header_down: the modules alone must give
// every response exactly one X-Request-Id (contract §4).
const requestIDCaddyfile = `{
	admin {$AZEN_ADMIN_ADDR}
}
{$AZEN_SITE_ADDRESS} {
	handle /api/v1/* {
		azen_auth {
			database {env.AZEN_DATABASE_URL}
			secret {env.AZEN_GATEWAY_SECRET}
		}
		reverse_proxy {$UP}
	}
	handle /limited {
		azen_ratelimit {
			key {client_ip}
			rate 1/m
		}
		respond "ok"
	}
	handle_errors {
		azen_error
	}
}
`

func TestRequestIDWithoutTheDirective(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	upAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(contract.RequestIDHeader)
		mu.Lock()
		seen[id] = true
		mu.Unlock()
		w.Header().Set(contract.RequestIDHeader, id) // echoed, like azen-backend
		io.WriteString(w, `{"status":"success"}`)
	})}
	go up.Serve(mustListen(t, upAddr))
	t.Cleanup(func() { up.Close() })

	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "gateway.db"),
		"AZEN_GATEWAY_SECRET": testenv.GatewaySecret(),
		"UP":                  upAddr,
	}
	key := testenv.CreateKeyFull(t, env)
	gw := testenv.StartGateway(t, requestIDCaddyfile, env)

	call := func(t *testing.T, path, apiKey, clientID string, want int) string {
		t.Helper()
		req, _ := http.NewRequest("GET", gw.URL+path, nil)
		if apiKey != "" {
			req.Header.Set(contract.APIKeyHeader, apiKey)
		}
		if clientID != "" {
			req.Header.Set(contract.RequestIDHeader, clientID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
		ids := resp.Header.Values(contract.RequestIDHeader)
		if len(ids) != 1 || !contract.SaneRequestID(ids[0]) {
			t.Fatalf("GET %s (%d): X-Request-Id %q, want exactly one", path, want, ids)
		}
		return ids[0]
	}

	t.Run("azen_auth success carries one id, the one the upstream saw", func(t *testing.T) {
		id := call(t, "/api/v1/memory", key.Key, "", 200)
		mu.Lock()
		defer mu.Unlock()
		if !seen[id] {
			t.Errorf("the upstream never saw id %q", id)
		}
	})
	t.Run("azen_auth keeps a sane client id", func(t *testing.T) {
		if id := call(t, "/api/v1/memory", key.Key, "client-42", 200); id != "client-42" {
			t.Errorf("id %q, want the client's", id)
		}
	})
	t.Run("azen_auth refusal carries one id", func(t *testing.T) {
		call(t, "/api/v1/memory", "", "", 401)
		call(t, "/api/v1/memory", "azen_notakey", "", 403)
	})
	t.Run("azen_ratelimit success and refusal carry one id", func(t *testing.T) {
		call(t, "/limited", "", "", 200)
		if id := call(t, "/limited", "", "client-43", 429); id != "client-43" {
			t.Errorf("id %q, want the client's", id)
		}
	})
}
