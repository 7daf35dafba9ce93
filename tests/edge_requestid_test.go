package tests

import (
	"path/filepath"
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
	handle /readyz {
		azen_ready
	}
	handle_errors {
		azen_error
	}
}
`

func TestRequestIDWithoutTheDirective(t *testing.T) {
	up := startUpstream(t, likeAzenBackend())

	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "gateway.db"),
		"AZEN_GATEWAY_SECRET": testenv.GatewaySecret(),
		"UP":                  up.Addr,
	}
	key := testenv.CreateKeyFull(t, env)
	gw := testenv.StartGateway(t, requestIDCaddyfile, env)

	get := func(t *testing.T, path, apiKey, clientID string, want int) string {
		t.Helper()
		var opts []callOption
		if apiKey != "" {
			opts = append(opts, withKey(apiKey))
		}
		if clientID != "" {
			opts = append(opts, withHeader(contract.RequestIDHeader, clientID))
		}
		r := call(t, "GET", gw.URL+path, opts...)
		if r.status != want {
			t.Fatalf("GET %s: status %d, want %d", path, r.status, want)
		}
		ids := r.header.Values(contract.RequestIDHeader)
		if len(ids) != 1 || !contract.SaneRequestID(ids[0]) {
			t.Fatalf("GET %s (%d): X-Request-Id %q, want exactly one", path, want, ids)
		}
		return ids[0]
	}

	t.Run("azen_auth success carries one id, the one the upstream saw", func(t *testing.T) {
		id := get(t, "/api/v1/memory", key.Key, "", 200)
		if !up.SawRequestID(id) {
			t.Errorf("the upstream never saw id %q", id)
		}
	})
	t.Run("azen_auth keeps a sane client id", func(t *testing.T) {
		if id := get(t, "/api/v1/memory", key.Key, "client-42", 200); id != "client-42" {
			t.Errorf("id %q, want the client's", id)
		}
	})
	t.Run("azen_auth refusal carries one id", func(t *testing.T) {
		get(t, "/api/v1/memory", "", "", 401)
		get(t, "/api/v1/memory", "azen_notakey", "", 403)
	})
	t.Run("azen_ready carries one id", func(t *testing.T) {
		get(t, "/readyz", "", "", 200)
	})
	t.Run("azen_ratelimit success and refusal carry one id", func(t *testing.T) {
		get(t, "/limited", "", "", 200)
		if id := get(t, "/limited", "", "client-43", 429); id != "client-43" {
			t.Errorf("id %q, want the client's", id)
		}
	})
}
