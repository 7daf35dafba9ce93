package tests

import (
	"strings"
	"testing"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// errorsCaddyfile routes /up to a live upstream, /down to a port where
// nothing listens, and everything else to the JSON 404.
const errorsCaddyfile = `{
	admin {$AZEN_ADMIN_ADDR}
}
{$AZEN_SITE_ADDRESS} {
	azen_request_id
	handle /up {
		reverse_proxy {$UP}
	}
	handle /down {
		reverse_proxy {$DOWN}
	}
	handle /teapot {
		azen_error 429 "Slow down, {http.request.method}."
	}
	handle {
		azen_error 404 "Unknown endpoint {http.request.method} {http.request.uri.path}"
	}
	handle_errors {
		azen_error
	}
}
`

func TestGatewayErrorsAreContractBodies(t *testing.T) {
	up := startUpstream(t)
	gw := testenv.StartGateway(t, errorsCaddyfile, map[string]string{
		"UP": up.Addr,
		// Port 1 needs root to bind and nothing serves it, so no other
		// test's server can take it over (a once-free port can be reused).
		"DOWN": "127.0.0.1:1",
	})

	t.Run("unknown path is a JSON 404", func(t *testing.T) {
		e := wantAPIError(t, call(t, "GET", gw.URL+"/nowhere"), 404)
		if !strings.Contains(e.Message, "GET /nowhere") {
			t.Errorf("message %q does not name the endpoint", e.Message)
		}
	})
	t.Run("unknown method is a JSON 404", func(t *testing.T) {
		wantAPIError(t, call(t, "DELETE", gw.URL+"/nowhere"), 404)
	})
	t.Run("dead upstream is a generic JSON 500", func(t *testing.T) {
		r := call(t, "GET", gw.URL+"/down")
		e := wantAPIError(t, r, 500)
		if e.Message != contract.MessageUnavailable {
			t.Errorf("message %q, want the generic %q", e.Message, contract.MessageUnavailable)
		}
		waitForLog(t, gw.Process, r.header.Get("X-Request-Id"))
	})
	t.Run("azen_error with arguments expands placeholders", func(t *testing.T) {
		e := wantAPIError(t, call(t, "PUT", gw.URL+"/teapot"), 429)
		if e.Message != "Slow down, PUT." {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("a sane client request id is kept and passed upstream", func(t *testing.T) {
		r := call(t, "GET", gw.URL+"/up", withHeader("X-Request-Id", "client-id-42"))
		if got := r.header.Get("X-Request-Id"); got != "client-id-42" {
			t.Errorf("response X-Request-Id %q", got)
		}
		if seen := up.Last().Header.Get("X-Request-Id"); seen != "client-id-42" {
			t.Errorf("upstream saw X-Request-Id %q", seen)
		}
	})
	t.Run("an insane client request id is replaced", func(t *testing.T) {
		r := call(t, "GET", gw.URL+"/up", withHeader("X-Request-Id", "bad id with spaces\t"))
		got := r.header.Get("X-Request-Id")
		if seen := up.Last().Header.Get("X-Request-Id"); !contract.SaneRequestID(got) || got != seen {
			t.Errorf("response id %q, upstream id %q", got, seen)
		}
	})
}

func TestGatewayBinaryHasOurModules(t *testing.T) {
	out := testenv.Command(t, nil, "list-modules")
	for _, id := range []string{"http.handlers.azen_auth", "http.handlers.azen_ratelimit", "http.handlers.azen_error", "http.handlers.azen_cors", "http.handlers.reverse_proxy"} {
		if !strings.Contains(out, id+"\n") {
			t.Errorf("list-modules lacks %s", id)
		}
	}
}
