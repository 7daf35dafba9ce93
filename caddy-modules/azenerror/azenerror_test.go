package azenerror

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/azen-sh/gateway/internal/contract"
)

// serve runs h on a request carrying a replacer and, when handled is not
// nil, the error handle_errors is rendering.
func serve(t *testing.T, h *Handler, handled error) (*httptest.ResponseRecorder, contract.Error, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	h.logger = zap.New(core)
	r := httptest.NewRequest("PATCH", "/api/v2/things", nil)
	repl := caddy.NewReplacer()
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	if handled != nil {
		ctx = context.WithValue(ctx, caddyhttp.ErrorCtxKey, handled)
	}
	r = r.WithContext(ctx)
	repl.Set("http.request.method", r.Method)
	repl.Set("http.request.uri.path", r.URL.Path)
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, nil); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	var body contract.Error
	var fields map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &fields); err != nil || len(fields) != 3 {
		t.Fatalf("body is not a three-field JSON object: %s", w.Body.String())
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != body.Code {
		t.Errorf("HTTP status %d but code %d", w.Code, body.Code)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	if w.Header().Get(contract.RequestIDHeader) == "" {
		t.Error("no X-Request-Id")
	}
	return w, body, logs
}

func TestAzenErrorInHandleErrors(t *testing.T) {
	tests := []struct {
		name        string
		handled     error
		wantCode    int
		wantMessage string
		wantLogged  bool
	}{
		{"dead upstream 502 becomes generic 500", caddyhttp.Error(502, errors.New("dial tcp 10.0.0.7:8081: connection refused")), 500, contract.MessageUnavailable, true},
		{"503 no upstreams becomes generic 500", caddyhttp.Error(503, errors.New("no upstreams available")), 500, contract.MessageUnavailable, true},
		{"504 timeout becomes generic 500", caddyhttp.Error(504, errors.New("i/o timeout")), 500, contract.MessageUnavailable, true},
		{"internal error hides its detail", caddyhttp.Error(500, errors.New("redis: connection pool timeout")), 500, contract.MessageInternal, true},
		{"public 403 message is shown", caddyhttp.Error(403, contract.Public("API key is disabled.")), 403, "API key is disabled.", false},
		{"public 429 message is shown", caddyhttp.Error(429, contract.Public("Rate limit exceeded.")), 429, "Rate limit exceeded.", false},
		{"private 4xx message is not shown", caddyhttp.Error(400, errors.New("http: request body too large")), 400, contract.DefaultMessage(400), false},
		{"405 becomes 404", caddyhttp.Error(405, nil), 404, contract.DefaultMessage(404), false},
		{"413 becomes 400 that says why", caddyhttp.Error(413, errors.New("http: request body too large")), 400, "Request body is too large.", false},
		{"non-HTTP error is a 500", errors.New("boom"), 500, contract.MessageInternal, true},
		{"a stalled body's public message survives its cause", caddyhttp.Error(400, errors.Join(contract.Public("Request body was not received in time."), os.ErrDeadlineExceeded)), 400, "Request body was not received in time.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body, logs := serve(t, &Handler{}, tt.handled)
			if body.Code != tt.wantCode || body.Message != tt.wantMessage {
				t.Errorf("got %+v, want %d %q", body, tt.wantCode, tt.wantMessage)
			}
			if got := logs.FilterMessage("request failed").Len() > 0; got != tt.wantLogged {
				t.Errorf("logged = %v, want %v", got, tt.wantLogged)
			}
			for _, e := range logs.All() {
				if _, ok := e.ContextMap()["request_id"]; !ok {
					t.Error("log line without request_id")
				}
			}
		})
	}
}

func TestAzenErrorWithArguments(t *testing.T) {
	tests := []struct {
		name        string
		h           Handler
		handled     error
		wantCode    int
		wantMessage string
	}{
		{"status and message", Handler{StatusCode: "404", Message: "Unknown endpoint {http.request.method} {http.request.uri.path}"}, nil, 404, "Unknown endpoint PATCH /api/v2/things"},
		{"status only takes the default message", Handler{StatusCode: "401"}, nil, 401, contract.DefaultMessage(401)},
		{"status overrides the handled error", Handler{StatusCode: "404"}, caddyhttp.Error(502, errors.New("x")), 404, contract.DefaultMessage(404)},
		{"no status and no error is a 500", Handler{}, nil, 500, contract.MessageInternal},
		{"500 with a custom message stays generic", Handler{StatusCode: "500", Message: "db password is hunter2"}, nil, 500, contract.MessageInternal},
		{"unknown placeholder is dropped", Handler{StatusCode: "400", Message: "bad {nope.nope}"}, nil, 400, "bad {nope.nope}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.h
			_, body, _ := serve(t, &h, tt.handled)
			if body.Code != tt.wantCode || body.Message != tt.wantMessage {
				t.Errorf("got %+v, want %d %q", body, tt.wantCode, tt.wantMessage)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, s := range []caddyhttp.WeakString{"200", "302", "600"} {
		if err := (&Handler{StatusCode: s}).Validate(); err == nil {
			t.Errorf("status %s accepted", s)
		}
	}
	for _, s := range []caddyhttp.WeakString{"", "404", "500", "{http.error.status_code}"} {
		if err := (&Handler{StatusCode: s}).Validate(); err != nil {
			t.Errorf("status %q refused: %v", s, err)
		}
	}
}

func TestRequestIDHandler(t *testing.T) {
	var upstreamID string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		upstreamID = r.Header.Get(contract.RequestIDHeader)
		return nil
	})
	repl := caddy.NewReplacer()
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	r.Header.Set(contract.RequestIDHeader, "from-client")
	w := httptest.NewRecorder()
	if err := (RequestID{}).ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	if upstreamID != "from-client" || w.Header().Get(contract.RequestIDHeader) != "from-client" {
		t.Errorf("upstream %q, response %q", upstreamID, w.Header().Get(contract.RequestIDHeader))
	}
	if v, _ := repl.GetString("azen.request_id"); v != "from-client" {
		t.Errorf("placeholder %q", v)
	}
}

// TestEnsureRequestIDOnce: the first call fixes the id; later calls (the
// other azen handlers of the same request) return it unchanged, and the
// response carries exactly that one id even when the upstream echoed it.
func TestEnsureRequestIDOnce(t *testing.T) {
	repl := caddy.NewReplacer()
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	r.Header.Set(contract.RequestIDHeader, "bad id")
	rec := httptest.NewRecorder()
	w1, id := EnsureRequestID(rec, r)
	if !contract.SaneRequestID(id) || id == "bad id" || r.Header.Get(contract.RequestIDHeader) != id {
		t.Fatalf("first call: id %q, request header %q", id, r.Header.Get(contract.RequestIDHeader))
	}
	w2, again := EnsureRequestID(w1, r)
	if again != id || w2 != w1 {
		t.Fatalf("second call: id %q (want %q), writer wrapped again: %v", again, id, w2 != w1)
	}
	if v, _ := repl.GetString(RequestIDPlaceholder); v != id {
		t.Errorf("placeholder %q", v)
	}
	// What reverse_proxy does with an upstream that echoes the id.
	w2.Header().Add(contract.RequestIDHeader, id)
	w2.WriteHeader(http.StatusOK)
	if got := rec.Result().Header.Values(contract.RequestIDHeader); len(got) != 1 || got[0] != id {
		t.Errorf("response X-Request-Id %q, want exactly [%s]", got, id)
	}
}
