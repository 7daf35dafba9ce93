package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// consoleSystem is the shipped Caddyfile on real gateways in front of real
// backends, with one database and (optionally) one Redis.
type consoleSystem struct {
	gws      []*testenv.Gateway
	backends []*testenv.Backend
	env      map[string]string
}

// consoleCaddyfile is the shipped Caddyfile with usage written every
// 200 ms instead of 10 s, so tests see counts at once.
func consoleCaddyfile(t *testing.T) string {
	t.Helper()
	raw := shippedCaddyfile(t)
	out := strings.Replace(raw, "\t\t\tmax_body 1MiB\n", "\t\t\tmax_body 1MiB\n\t\t\tusage_flush 200ms\n", 1)
	if out == raw {
		t.Fatal("the shipped Caddyfile has no `max_body 1MiB` line to put usage_flush after")
	}
	return out
}

// startConsoleSystem starts n backends and n gateways on dbURL and
// redisURL ("" for none).
func startConsoleSystem(t *testing.T, n int, dbURL, redisURL string) *consoleSystem {
	t.Helper()
	s := &consoleSystem{env: map[string]string{
		"AZEN_DATABASE_URL":        dbURL,
		"AZEN_GATEWAY_SECRET":      testenv.GatewaySecret(),
		"AZEN_ENCRYPTION_KEYS":     testenv.EncryptionKeys("k1"),
		"AZEN_BACKEND_DRAIN_DELAY": "0s",
	}}
	if redisURL != "" {
		s.env["AZEN_REDIS_URL"] = redisURL
	}
	var addrs []string
	for range n {
		b := testenv.StartBackend(t, s.env)
		s.backends = append(s.backends, b)
		addrs = append(addrs, b.Addr)
	}
	gwEnv := map[string]string{"AZEN_BACKENDS": strings.Join(addrs, " ")}
	for k, v := range s.env {
		if k != "AZEN_ENCRYPTION_KEYS" {
			gwEnv[k] = v
		}
	}
	caddyfile := consoleCaddyfile(t)
	for range n {
		s.gws = append(s.gws, testenv.StartGateway(t, caddyfile, gwEnv))
	}
	for _, g := range s.gws {
		waitConsoleReachable(t, g)
	}
	return s
}

// waitConsoleReachable waits until g serves the console's sign-in page,
// that is, until its health checks found a backend.
func waitConsoleReachable(t *testing.T, g *testenv.Gateway) {
	t.Helper()
	waitFor(t, "the gateway to reach a healthy backend", func() bool {
		r, err := tryCall("GET", g.URL+"/console/sign-in")
		return err == nil && r.status == 200
	})
}

// person is a browser-like client: a cookie jar (shared by every gateway
// on 127.0.0.1, as cookies ignore the port) and no redirects followed.
type person struct {
	t      *testing.T
	client *http.Client
	email  string
}

func newPerson(t *testing.T) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, client: &http.Client{Jar: jar, Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends method url with a JSON body ("" for none) and extra headers in
// pairs, with the person's cookies.
func (p *person) do(method, url, body string, headers ...string) reply {
	p.t.Helper()
	opts := []callOption{via(p.client), withHeaders(headers...)}
	if body != "" {
		opts = append(opts, withJSON(body))
	}
	return call(p.t, method, url, opts...)
}

// must is do that expects a status.
func (p *person) must(status int, method, url, body string, headers ...string) reply {
	p.t.Helper()
	r := p.do(method, url, body, headers...)
	if r.status != status {
		p.t.Fatalf("%s %s: status %d, want %d: %s", method, url, r.status, status, r.raw)
	}
	return r
}

// signUp creates an account and an organization through gw.
func (p *person) signUp(base, orgName string) (userID, orgID string) {
	p.t.Helper()
	p.email = fmt.Sprintf("p%d@example.com", time.Now().UnixNano())
	r := p.must(201, "POST", base+"/auth/sign-up", fmt.Sprintf(`{"email":%q,"password":"a long password","name":"Tester"}`, p.email))
	userID = r.session().User.ID
	r = p.must(201, "POST", base+"/console/api/organizations", fmt.Sprintf(`{"name":%q}`, orgName))
	return userID, r.organizationID()
}

// createKey creates a key through the console API and returns id and secret.
func (p *person) createKey(base, body string) (id, secret string) {
	p.t.Helper()
	k := p.must(201, "POST", base+"/console/api/keys", body).key()
	return k.ID, k.Key
}

// cookie is the session cookie the jar holds for 127.0.0.1.
func (p *person) cookie(base string) string {
	req, _ := http.NewRequest("GET", base+"/", nil)
	for _, c := range p.client.Jar.Cookies(req.URL) {
		if c.Name == account.CookieName {
			return c.Value
		}
	}
	return ""
}

// statusWithCookie calls url with only the given session cookie.
func statusWithCookie(t *testing.T, method, url, cookie string) int {
	t.Helper()
	return call(t, method, url, withCookie(cookie)).status
}

// statusWithKey calls url with an API key and a JSON body ("" for none).
func statusWithKey(t *testing.T, method, url, key, body string) int {
	t.Helper()
	opts := []callOption{withKey(key)}
	if body != "" {
		opts = append(opts, withJSON(body))
	}
	return call(t, method, url, opts...).status
}

// within polls call until it returns want, failing after limit; it returns
// how long it took.
func within(t *testing.T, what string, limit time.Duration, want int, call func() int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := call()
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: still %d after %s, want %d", what, got, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantError checks a contract error body.
func wantError(t *testing.T, r reply, code int, message string) {
	t.Helper()
	var fields map[string]any
	_ = json.Unmarshal(r.raw, &fields)
	var e contract.Error
	_ = json.Unmarshal(r.raw, &e)
	if r.status != code || r.header.Get("Content-Type") != "application/json" || len(fields) != 3 ||
		e.Status != contract.StatusText(code) || e.Code != code || (message != "" && e.Message != message) {
		t.Fatalf("got %d %s, want %d %q", r.status, r.raw, code, message)
	}
}
