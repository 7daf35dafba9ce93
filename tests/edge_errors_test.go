package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// getJSONError asserts a contract error body and returns it.
func getJSONError(t *testing.T, resp *http.Response, wantCode int) contract.Error {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, wantCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatalf("body is not JSON: %s", body)
	}
	if len(fields) != 3 {
		t.Errorf("body has %d fields, want exactly status, message, code: %s", len(fields), body)
	}
	var e contract.Error
	_ = json.Unmarshal(body, &e)
	if e.Code != wantCode || e.Status != contract.StatusText(wantCode) || e.Message == "" {
		t.Errorf("body %s does not match status %d", body, wantCode)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the error response")
	}
	return e
}

func TestGatewayErrorsAreContractBodies(t *testing.T) {
	var seenRequestID string
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenRequestID = r.Header.Get("X-Request-Id")
		io.WriteString(w, "ok")
	})}
	upAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	ln := mustListen(t, upAddr)
	go upstream.Serve(ln)
	t.Cleanup(func() { upstream.Close() })

	gw := testenv.StartGateway(t, errorsCaddyfile, map[string]string{
		"UP": upAddr,
		// Port 1 needs root to bind and nothing serves it, so no other
		// test's server can take it over (a once-free port can be reused).
		"DOWN": "127.0.0.1:1",
	})

	t.Run("unknown path is a JSON 404", func(t *testing.T) {
		resp, err := http.Get(gw.URL + "/nowhere")
		if err != nil {
			t.Fatal(err)
		}
		e := getJSONError(t, resp, 404)
		if !strings.Contains(e.Message, "GET /nowhere") {
			t.Errorf("message %q does not name the endpoint", e.Message)
		}
	})
	t.Run("unknown method is a JSON 404", func(t *testing.T) {
		req, _ := http.NewRequest("DELETE", gw.URL+"/nowhere", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		getJSONError(t, resp, 404)
	})
	t.Run("dead upstream is a generic JSON 500", func(t *testing.T) {
		resp, err := http.Get(gw.URL + "/down")
		if err != nil {
			t.Fatal(err)
		}
		e := getJSONError(t, resp, 500)
		if e.Message != contract.MessageUnavailable {
			t.Errorf("message %q, want the generic %q", e.Message, contract.MessageUnavailable)
		}
		waitForLog(t, gw.Process, resp.Header.Get("X-Request-Id"))
	})
	t.Run("azen_error with arguments expands placeholders", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", gw.URL+"/teapot", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e := getJSONError(t, resp, 429)
		if e.Message != "Slow down, PUT." {
			t.Errorf("message %q", e.Message)
		}
	})
	t.Run("a sane client request id is kept and passed upstream", func(t *testing.T) {
		req, _ := http.NewRequest("GET", gw.URL+"/up", nil)
		req.Header.Set("X-Request-Id", "client-id-42")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Request-Id"); got != "client-id-42" {
			t.Errorf("response X-Request-Id %q", got)
		}
		if seenRequestID != "client-id-42" {
			t.Errorf("upstream saw X-Request-Id %q", seenRequestID)
		}
	})
	t.Run("an insane client request id is replaced", func(t *testing.T) {
		req, _ := http.NewRequest("GET", gw.URL+"/up", nil)
		req.Header.Set("X-Request-Id", "bad id with spaces\t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if !contract.SaneRequestID(got) || got != seenRequestID {
			t.Errorf("response id %q, upstream id %q", got, seenRequestID)
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
