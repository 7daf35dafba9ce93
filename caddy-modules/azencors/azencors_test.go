package azencors

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/contract"
)

func provisioned(t *testing.T, h Handler) *Handler {
	t.Helper()
	if err := h.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	return &h
}

type result struct {
	w       *httptest.ResponseRecorder
	err     error
	reached bool // next (authentication and the rest) ran
}

func serve(t *testing.T, h *Handler, method string, headers ...string) result {
	t.Helper()
	r := httptest.NewRequest(method, "/api/v1/memory", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	var res result
	res.w = httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		res.reached = true
		w.WriteHeader(http.StatusOK)
		return nil
	})
	res.err = h.ServeHTTP(res.w, r, next)
	return res
}

func status(res result) int {
	var he caddyhttp.HandlerError
	if errors.As(res.err, &he) {
		return he.StatusCode
	}
	return res.w.Code
}

func TestPreflight(t *testing.T) {
	h := provisioned(t, Handler{Origins: []string{"https://app.example.com"}, AllowHeaders: []string{"x-trace-id"}})
	const app = "https://app.example.com"
	tests := []struct {
		name        string
		headers     []string
		wantStatus  int
		wantHeaders string // Access-Control-Allow-Headers
		wantMessage string
	}{
		{"allowed origin, the SDK's headers", []string{"Origin", app, "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "azen-api-key, Content-Type, x-stainless-lang, x-stainless-retry-count"},
			204, "azen-api-key, content-type, x-stainless-lang, x-stainless-retry-count", ""},
		{"allowed origin, an extra allowed header", []string{"Origin", app, "Access-Control-Request-Method", "DELETE",
			"Access-Control-Request-Headers", "x-trace-id"}, 204, "x-trace-id", ""},
		{"allowed origin, no headers asked", []string{"Origin", app, "Access-Control-Request-Method", "PATCH"}, 204, "", ""},
		{"origin compared without case", []string{"Origin", "HTTPS://APP.example.com", "Access-Control-Request-Method", "GET"}, 204, "", ""},
		{"origin not listed", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, 403, "", `Origin "https://evil.example" may not call`},
		{"another port is another origin", []string{"Origin", "https://app.example.com:8443", "Access-Control-Request-Method", "POST"}, 403, "", "may not call"},
		{"origin null", []string{"Origin", "null", "Access-Control-Request-Method", "POST"}, 403, "", "may not call"},
		{"method not allowed", []string{"Origin", app, "Access-Control-Request-Method", "TRACE"}, 403, "", `Method "TRACE" is not allowed`},
		{"header not allowed", []string{"Origin", app, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "azen-api-key, x-evil"}, 403, "", `Header "x-evil" is not allowed`},
		{"the bare prefix is not a header", []string{"Origin", app, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "x-stainless-"}, 403, "", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(t, h, http.MethodOptions, tt.headers...)
			if res.reached {
				t.Fatal("a preflight went on to authentication")
			}
			if got := status(res); got != tt.wantStatus {
				t.Fatalf("status %d, want %d (%v)", got, tt.wantStatus, res.err)
			}
			hdr := res.w.Header()
			if hdr.Get(contract.RequestIDHeader) == "" {
				t.Error("no X-Request-Id")
			}
			if !strings.Contains(strings.Join(hdr.Values("Vary"), ","), "Origin") {
				t.Errorf("Vary %q lacks Origin", hdr.Values("Vary"))
			}
			if tt.wantStatus == 204 {
				if hdr.Get("Access-Control-Allow-Origin") != tt.headers[1] || hdr.Get("Access-Control-Allow-Methods") == "" ||
					hdr.Get("Access-Control-Max-Age") != "600" || hdr.Get("Access-Control-Allow-Headers") != tt.wantHeaders {
					t.Errorf("preflight headers %v", hdr)
				}
				if hdr.Get("Access-Control-Allow-Credentials") != "" {
					t.Error("credentials allowed")
				}
				return
			}
			if hdr.Get("Access-Control-Allow-Origin") != "" {
				t.Error("a refused preflight allows the origin")
			}
			if msg, _ := contract.PublicMessage(res.err); !strings.Contains(msg, tt.wantMessage) {
				t.Errorf("message %q, want %q", msg, tt.wantMessage)
			}
		})
	}
}

func TestActualRequests(t *testing.T) {
	h := provisioned(t, Handler{Origins: []string{"https://app.example.com"}})
	t.Run("allowed origin: readable, with the request id and limits exposed", func(t *testing.T) {
		res := serve(t, h, "GET", "Origin", "https://app.example.com")
		hdr := res.w.Header()
		if !res.reached || hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Fatalf("reached %v, headers %v", res.reached, hdr)
		}
		for _, name := range []string{"X-Request-Id", "X-RateLimit-Remaining", "RateLimit", "RateLimit-Policy", "Retry-After"} {
			if !strings.Contains(hdr.Get("Access-Control-Expose-Headers"), name) {
				t.Errorf("%s is not exposed", name)
			}
		}
	})
	t.Run("other origin: served, not readable", func(t *testing.T) {
		res := serve(t, h, "POST", "Origin", "https://evil.example")
		if !res.reached || res.w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("reached %v, headers %v", res.reached, res.w.Header())
		}
	})
	t.Run("no Origin: untouched but for Vary", func(t *testing.T) {
		res := serve(t, h, "GET")
		if !res.reached || res.w.Header().Get("Access-Control-Allow-Origin") != "" || res.w.Header().Get("Vary") != "Origin" {
			t.Fatalf("reached %v, headers %v", res.reached, res.w.Header())
		}
	})
	t.Run("OPTIONS that is no preflight goes on", func(t *testing.T) {
		if res := serve(t, h, http.MethodOptions, "Origin", "https://app.example.com"); !res.reached {
			t.Fatal("not passed on")
		}
	})
}

func TestDefaultAllowsNoOrigin(t *testing.T) {
	h := provisioned(t, Handler{})
	res := serve(t, h, http.MethodOptions, "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST")
	if res.reached || status(res) != 403 {
		t.Fatalf("preflight with no origin configured: reached %v, status %d", res.reached, status(res))
	}
	res = serve(t, h, "GET", "Origin", "https://app.example.com")
	if !res.reached || len(res.w.Header().Values("Vary")) != 0 || res.w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("actual request: reached %v, headers %v", res.reached, res.w.Header())
	}
}

func TestAnyOrigin(t *testing.T) {
	h := provisioned(t, Handler{Origins: []string{"*"}})
	res := serve(t, h, http.MethodOptions, "Origin", "https://anyone.example", "Access-Control-Request-Method", "POST")
	if status(res) != 204 || res.w.Header().Get("Access-Control-Allow-Origin") != "https://anyone.example" {
		t.Fatalf("status %d, headers %v", status(res), res.w.Header())
	}
	if res := serve(t, h, http.MethodOptions, "Origin", "null", "Access-Control-Request-Method", "POST"); status(res) != 403 {
		t.Fatalf("origin null allowed by *: %d", status(res))
	}
}

func TestNormalizeOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":  "https://app.example.com",
		"http://localhost:5173":    "http://localhost:5173",
		"http://[::1]:8080":        "http://[::1]:8080",
		"https://app.example.com/": "",
		"https://":                 "",
		"https:app.example.com":    "",
		"//app.example.com":        "",
		"https://app.example.com:": "",
	} {
		got, err := NormalizeOrigin(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("NormalizeOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
