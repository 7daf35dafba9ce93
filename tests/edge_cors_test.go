package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestBrowserCORSThroughTheGateway is the SDK in a web page, through the
// shipped Caddyfile and a real backend: a preflight is answered before
// authentication for the origins in AZEN_CORS_ORIGINS, the actual answers
// (errors included) are readable by that page with the request id and the
// rate-limit headers exposed, and by default no origin is allowed.
func TestBrowserCORSThroughTheGateway(t *testing.T) {
	const app = "https://app.example.com"
	s := startEdgeStack(t, "AZEN_CORS_ORIGINS", app+" http://localhost:5173")
	api := s.gateway.URL + "/api/v1"
	send := func(t *testing.T, base, method, path, body string, headers ...string) (*http.Response, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	preflight := func(t *testing.T, base, origin string) (*http.Response, string) {
		t.Helper()
		// What a browser sends before the SDK's POST /memory.
		return send(t, base, "OPTIONS", "/memory", "", "Origin", origin, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "azen-api-key,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout")
	}

	t.Run("preflight from an allowed origin is answered without a key", func(t *testing.T) {
		resp, body := preflight(t, api, app)
		if resp.StatusCode != 204 {
			t.Fatalf("preflight: %d %s", resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Access-Control-Allow-Origin") != app || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "azen-api-key") ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "x-stainless-retry-count") || h.Get("Access-Control-Max-Age") == "" {
			t.Errorf("preflight headers: %v", h)
		}
		if h.Get("X-Request-Id") == "" {
			t.Error("preflight without X-Request-Id")
		}
	})
	t.Run("the actual request is readable, with id and limits exposed", func(t *testing.T) {
		resp, body := send(t, api, "POST", "/memory", `{"text":"from a browser"}`, "Origin", app,
			"azen-api-key", s.key.Key, "Content-Type", "application/json", "x-stainless-lang", "js")
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		h := resp.Header
		if h.Get("Access-Control-Allow-Origin") != app {
			t.Errorf("Access-Control-Allow-Origin %q", h.Get("Access-Control-Allow-Origin"))
		}
		for _, name := range []string{"X-Request-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy", "Retry-After"} {
			if !strings.Contains(h.Get("Access-Control-Expose-Headers"), name) {
				t.Errorf("%s not exposed: %q", name, h.Get("Access-Control-Expose-Headers"))
			}
		}
		if h.Get("X-RateLimit-Limit") == "" {
			t.Error("the rate-limit headers are missing")
		}
	})
	t.Run("an error is readable too", func(t *testing.T) {
		resp, body := send(t, api, "GET", "/memory", "", "Origin", app)
		if resp.StatusCode != 401 || !strings.Contains(body, `"unauthorized"`) {
			t.Fatalf("no key: %d %s", resp.StatusCode, body)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != app {
			t.Errorf("401 not readable cross-origin: %v", resp.Header)
		}
	})
	t.Run("preflight from another origin is a 403, not a 401", func(t *testing.T) {
		resp, body := preflight(t, api, "https://evil.example")
		if resp.StatusCode != 403 || !strings.Contains(body, "may not call this API from a browser") || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight: %d %s %v", resp.StatusCode, body, resp.Header)
		}
	})
	t.Run("the default allows no origin", func(t *testing.T) {
		gw := s.startGateway(t)
		resp, body := preflight(t, gw.URL+"/api/v1", app)
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight with no AZEN_CORS_ORIGINS: %d %s", resp.StatusCode, body)
		}
		resp, _ = send(t, gw.URL+"/api/v1", "GET", "/memory", "", "Origin", app, "azen-api-key", s.key.Key)
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("actual request with no AZEN_CORS_ORIGINS: %d %v", resp.StatusCode, resp.Header)
		}
	})
}
