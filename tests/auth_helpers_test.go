package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// authCaddyfile puts azen_auth in front of a test upstream. Non-secret
// knobs come in as {$NAME}; the secret and URLs as {env.NAME}, as in the
// shipped Caddyfile.
const authCaddyfile = `{
	admin {$AZEN_ADMIN_ADDR}
	metrics
	servers {
		trusted_proxies static {$TRUSTED}
	}
}
{$AZEN_SITE_ADDRESS} {
	azen_request_id
	log {
		output stderr
		format filter {
			wrap json
			fields {
				request>headers>Azen-Api-Key delete
			}
		}
	}
	handle /api/v1/* {
		azen_auth {
			database        {env.AZEN_DATABASE_URL}
			redis           {env.AZEN_REDIS_URL}
			secret          {env.AZEN_GATEWAY_SECRET}
			cache_ttl       {$CACHE_TTL}
			failed_attempts {$FAILED}
		}
		reverse_proxy {$UP}
	}
	handle {
		azen_error 404
	}
	handle_errors {
		azen_error
	}
}
`

// authEnv is the environment of one gateway of the auth tests.
func authEnv(base map[string]string, overrides ...string) map[string]string {
	env := map[string]string{"TRUSTED": "127.0.0.1/32", "CACHE_TTL": "30s", "FAILED": "1000/m"}
	for k, v := range base {
		env[k] = v
	}
	for i := 0; i+1 < len(overrides); i += 2 {
		env[overrides[i]] = overrides[i+1]
	}
	return env
}

// authUpstream is a real HTTP server standing in for the backend: it
// verifies the gateway's signature with the shared contract code and
// reports what it saw.
type authUpstream struct {
	Addr   string
	signer *contract.Signer
	mu     sync.Mutex
	last   authUpstreamSaw
}

type authUpstreamSaw struct {
	Identity  contract.Identity
	Verified  error
	APIKey    string
	AzenNames []string
}

func startAuthUpstream(t *testing.T, secret string) *authUpstream {
	t.Helper()
	signer, err := contract.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	u := &authUpstream{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), signer: signer}
	srv := &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 5 * time.Second}
	ln := mustListen(t, u.Addr)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *authUpstream) serve(w http.ResponseWriter, r *http.Request) {
	id, _, err := u.signer.Verify(r, time.Now())
	saw := authUpstreamSaw{Identity: id, Verified: err, APIKey: r.Header.Get(contract.APIKeyHeader)}
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "azen-") {
			saw.AzenNames = append(saw.AzenNames, name)
		}
	}
	u.mu.Lock()
	u.last = saw
	u.mu.Unlock()
	if err != nil {
		contract.WriteError(w, contract.NewError(401, "bad signature: "+err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(id)
}

func (u *authUpstream) Last() authUpstreamSaw {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// authCall sends GET path to gw with the key (none when key is nil) and extra
// headers in pairs.
func authCall(t *testing.T, gwURL string, key *string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", gwURL+"/api/v1/memory", nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		req.Header[contract.APIKeyHeader] = []string{*key}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// authStatus returns the response's status and closes it.
func authStatus(resp *http.Response) int {
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// expectAuth calls gw with key and checks the status and, for errors, the
// contract body and message.
func expectAuth(t *testing.T, gwURL, key string, code int, message string, headers ...string) {
	t.Helper()
	resp := authCall(t, gwURL, &key, headers...)
	if code == 200 {
		if got := authStatus(resp); got != 200 {
			t.Fatalf("status %d, want 200", got)
		}
		return
	}
	e := getJSONError(t, resp, code)
	if message != "" && e.Message != message {
		t.Fatalf("message %q, want %q", e.Message, message)
	}
}

// authEventually polls gw with key until it answers code, for at most within.
// It returns how long that took.
func authEventually(t *testing.T, gwURL, key string, code int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := authStatus(authCall(t, gwURL, &key))
		if got == code {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s still answers %d after %s, want %d", gwURL, got, within, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
