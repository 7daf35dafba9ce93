package azenauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	_ "github.com/azen-sh/gateway/caddy-modules/azenratelimit" // azen_ratelimit, for the directive order
	"github.com/azen-sh/gateway/internal/apikey"
)

func TestUnmarshalPermissionsCaddyfile(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		want    []string
		wantErr string
	}{
		{name: "one permission", input: "azen_permissions memory:read", want: []string{"memory:read"}},
		{name: "several are all required, kept in the order given", input: "azen_permissions memory:write keys:read",
			want: []string{"memory:write", "keys:read"}},
		{name: "every known permission", input: "azen_permissions keys:write keys:read memory:write memory:read",
			want: []string{"keys:write", "keys:read", "memory:write", "memory:read"}},
		{name: "none is an error", input: "azen_permissions", wantErr: "needs at least one permission"},
		{name: "unknown permission", input: "azen_permissions memory:admin", wantErr: `unknown permission "memory:admin"`},
		{name: "names are case-sensitive", input: "azen_permissions Memory:Read", wantErr: `unknown permission "Memory:Read"`},
		{name: "commas are not separators", input: "azen_permissions memory:read,memory:write", wantErr: `unknown permission "memory:read,memory:write"`},
		{name: "placeholders are refused", input: "azen_permissions {env.PERMS}", wantErr: `unknown permission "{env.PERMS}"`},
		{name: "repeated permission", input: "azen_permissions memory:read memory:read", wantErr: "memory:read given more than once"},
		{name: "a block is refused", input: "azen_permissions memory:read {\n keys:read\n}", wantErr: "takes no block"},
		{name: "an empty block is refused", input: "azen_permissions memory:read {\n}", wantErr: "takes no block"},
		{name: "a second directive in the segment is refused", input: "azen_permissions memory:read\nazen_permissions keys:read",
			wantErr: `unexpected "azen_permissions"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m Permissions
			err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if !strings.Contains(err.Error(), "Testfile:") {
					t.Errorf("error %q does not name file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Require, c.want) {
				t.Fatalf("require %v, want %v", m.Require, c.want)
			}
		})
	}
}

// FuzzPermissionsCaddyfile: whatever the Caddyfile holds, the parser never
// panics, and what it accepts is a non-empty list of known permissions
// without repeats that Provision accepts too.
func FuzzPermissionsCaddyfile(f *testing.F) {
	for _, s := range []string{
		"azen_permissions memory:read", "azen_permissions memory:read memory:write keys:read keys:write",
		"azen_permissions", "azen_permissions memory:read {\n}", "azen_permissions \"memory:read\"",
		"azen_permissions `keys:write`", "azen_permissions memory:read\nazen_permissions keys:read",
		"azen_permissions {env.X}", "azen_permissions memory:read memory:read", "azen_permissions \\\nmemory:read",
		"azen_permissions memory:read # comment", "azen_permissions <<EOF\nmemory:read\nEOF",
		"azen_permissions <<\x10OF\nmemory:read\nEOF",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Testfile")
		if err != nil {
			return // not a Caddyfile (NewTestDispenser would exit the process)
		}
		var m Permissions
		if err := m.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		if _, err := checkRequired(m.Require); err != nil {
			t.Fatalf("accepted %q as %v: %v", input, m.Require, err)
		}
	})
}

func TestPermissionsProvisionRefusesBadLists(t *testing.T) {
	for _, tc := range []struct {
		require []string
		wantErr string
	}{
		{nil, "needs at least one permission"},
		{[]string{"memory:read", "root"}, `unknown permission "root"`},
		{[]string{"keys:read", "keys:read"}, "given more than once"},
	} {
		m := Permissions{Require: tc.require}
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		err := m.Provision(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "azen_permissions: ") {
			t.Errorf("Provision(%v) = %v, want %q", tc.require, err, tc.wantErr)
		}
	}
}

func newPermissions(t *testing.T, perms ...string) *Permissions {
	t.Helper()
	m := &Permissions{Require: perms}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := m.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return m
}

// throughPermissions runs a request through azen_auth, then m, then an
// upstream that records whether it was reached (status 0).
func throughPermissions(h *Handler, m *Permissions, method string, header http.Header) served {
	req := httptest.NewRequest(method, "/api/v1/memory", nil)
	return serveRequest(h, "192.0.2.10", req, header, func(w http.ResponseWriter, r *http.Request) error {
		reached := false
		err := m.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			reached = true
			return nil
		}))
		if err == nil && !reached {
			return caddyhttp.Error(599, nil) // passed without calling next: a bug
		}
		return err
	})
}

// TestPermissionsAreCheckedFromTheAdmittedCaller is contract §10's table:
// a key or a session lacking a route's permission gets 403 naming it, and
// the check costs no lookup beyond azen_auth's own.
func TestPermissionsAreCheckedFromTheAdmittedCaller(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "1000/m" })
	p := signUp(t, st)
	org := p.org.ID
	_, readOnly := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "bot", Permissions: []string{apikey.MemoryRead}})
	_, defaults := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "bot"})
	_, keysOnly := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "bot", Permissions: []string{apikey.KeysRead, apikey.KeysWrite}})
	read, write := newPermissions(t, apikey.MemoryRead), newPermissions(t, apikey.MemoryWrite)
	both := newPermissions(t, apikey.MemoryRead, apikey.KeysWrite)
	keysWrite := newPermissions(t, apikey.KeysWrite)

	rows := []struct {
		rule    string
		m       *Permissions
		method  string
		header  http.Header
		status  int
		message string
	}{
		{"a read-only key may read", read, "GET", keyHeader(readOnly), 0, ""},
		{"a read-only key may not write", write, "POST", keyHeader(readOnly), 403, "API key lacks permission memory:write"},
		{"a key with the default permissions reads", read, "GET", keyHeader(defaults), 0, ""},
		{"a key with the default permissions writes", write, "POST", keyHeader(defaults), 0, ""},
		{"a key without memory permissions may not read", read, "GET", keyHeader(keysOnly), 403, "API key lacks permission memory:read"},
		{"every listed permission is needed: the first missing is named", both, "GET", keyHeader(defaults), 403, "API key lacks permission keys:write"},
		{"an owner's session has every permission", keysWrite, "POST", merge(cookieHeader(p.ownerCookie), "Sec-Fetch-Site", "same-origin"), 0, ""},
		{"a member's session has the member role's", write, "POST", cookieHeader(p.memberCookie), 0, ""},
		{"a member's session lacks keys:write", keysWrite, "POST", cookieHeader(p.memberCookie), 403, "Your role (member) lacks permission keys:write"},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			serve := func() served {
				hdr := http.Header{}
				for k, v := range row.header {
					hdr[k] = v
				}
				return throughPermissions(h, row.m, row.method, hdr)
			}
			s := serve() // warms the cache
			misses, looked := storeQueries(h), lookups(h)
			s = serve()
			if s.status != row.status || s.message != row.message {
				t.Fatalf("status %d %q (%v), want %d %q", s.status, s.message, s.err, row.status, row.message)
			}
			if storeQueries(h) != misses || lookups(h) != looked+1 {
				t.Errorf("store queries %v → %v, lookups %v → %v: want azen_auth's one cached lookup and nothing more",
					misses, storeQueries(h), looked, lookups(h))
			}
		})
	}
}

func TestPermissionsWithoutACallerIsA500ThatSaysWhy(t *testing.T) {
	m := newPermissions(t, apikey.MemoryRead)
	core, logs := observer.New(zap.ErrorLevel)
	m.logger = zap.New(core)
	req := httptest.NewRequest("GET", "/api/v1/memory", nil)
	ctx := context.WithValue(req.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	reached := false
	for range 3 {
		err := m.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx), caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			reached = true
			return nil
		}))
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != 500 {
			t.Fatalf("err %v, want a 500", err)
		}
	}
	if reached {
		t.Fatal("the request went on without a caller")
	}
	entries := logs.All()
	if len(entries) != 1 || !strings.Contains(entries[0].Message, "put azen_auth before azen_permissions") {
		t.Fatalf("log %v, want one line naming the fix (then quiet for 10 s)", entries)
	}
}

// TestDirectiveOrder: written in any order, a route runs azen_auth, then
// azen_permissions, then basic_auth, then azen_ratelimit, with no `order`
// line in the Caddyfile.
func TestDirectiveOrder(t *testing.T) {
	input := `:8080 {
	azen_ratelimit {
		rate 10/m
	}
	basic_auth {
		bob $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
	@write method POST
	azen_permissions @write memory:write
	azen_permissions memory:read
	azen_auth {
		secret {env.AZEN_GATEWAY_SECRET}
	}
	respond 200
}`
	adapter := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}
	out, _, err := adapter.Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []map[string]any `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			order = append(order, findHandlers(r.Handle)...)
		}
	}
	order = slices.DeleteFunc(order, func(s string) bool { return s == "subroute" })
	want := []string{"azen_auth", "azen_permissions", "azen_permissions", "authentication", "azen_ratelimit", "static_response"}
	if !slices.Equal(order, want) {
		t.Fatalf("handler order %v, want %v", order, want)
	}
	// Source order is kept among azen_permissions lines, each with its matcher.
	if i, j := strings.Index(string(out), `"memory:write"`), strings.Index(string(out), `"memory:read"`); i < 0 || j < i {
		t.Fatalf("azen_permissions lines out of order: %s", out)
	}
}

// storeQueries counts the lookups of h that asked the store.
func storeQueries(h *Handler) float64 { return counterValue(h.metrics.cache[cacheMiss]) }
