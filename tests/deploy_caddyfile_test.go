package tests

// The shipped Caddyfile, checked through the real azen-gateway binary:
// `validate` accepts it in both upstream modes, `adapt` shows no secret and
// produces the routing of contract §6, `fmt` finds nothing to change, and a
// running gateway routes through auth to every backend, drops an unready
// one, survives a dead one without losing a request, and logs the key id
// but never the key.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// Distinctive secret values: none of them may appear in any output.
const (
	deploySecret      = "deploy-test-secret-4f1c2b7e9a0d3c5b8e6f1a2d4c7b9e0f"
	deployDBPassword  = "pgPassw0rdThatMustNotLeak"
	deployRedisPasswd = "redisPassw0rdThatMustNotLeak"
)

func deployShippedCaddyfile(t *testing.T) string {
	t.Helper()
	return filepath.Join(testenv.RepoRoot(t), "Caddyfile")
}

// deployProductionEnv points the gateway at a PostgreSQL and a Redis that do
// not exist: validate and adapt must not need them.
func deployProductionEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"AZEN_DATABASE_URL":   fmt.Sprintf("postgres://azen:%s@127.0.0.1:%d/azen?sslmode=disable", deployDBPassword, testenv.FreePort(t)),
		"AZEN_REDIS_URL":      fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", deployRedisPasswd, testenv.FreePort(t)),
		"AZEN_GATEWAY_SECRET": deploySecret,
		"AZEN_BACKENDS":       "10.1.0.1:8081 10.1.0.2:8081 10.1.0.3:9000",
	}
}

func deployWithEnv(base map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func deployAssertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{deploySecret, deployDBPassword, deployRedisPasswd} {
		if strings.Contains(text, s) {
			t.Errorf("%s shows a secret (%.8s…)", what, s)
		}
	}
}

func TestShippedCaddyfileValidates(t *testing.T) {
	sqlite := "sqlite:" + filepath.Join(t.TempDir(), "validate.db")
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"embedded default", map[string]string{"AZEN_DATABASE_URL": sqlite, "AZEN_GATEWAY_SECRET": deploySecret}},
		{"production stores, unreachable", deployProductionEnv(t)},
		{"dns discovery", deployWithEnv(deployProductionEnv(t), "AZEN_BACKENDS_DISCOVERY", "dns")},
		{"domain site address", deployWithEnv(deployProductionEnv(t), "AZEN_SITE_ADDRESS", "api.example.com")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := testenv.TryCommand(t, tc.env, "validate", "--config", deployShippedCaddyfile(t), "--adapter", "caddyfile")
			if err != nil {
				t.Fatalf("validate rejected the shipped Caddyfile: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out+errOut, "Valid configuration") {
				t.Errorf("validate did not say the configuration is valid:\n%s%s", out, errOut)
			}
			deployAssertNoSecret(t, "validate", out+errOut)
		})
	}
}

func TestShippedCaddyfileIsFormatted(t *testing.T) {
	// An unformatted Caddyfile makes every start log a warning.
	out, errOut, err := testenv.TryCommand(t, nil, "fmt", deployShippedCaddyfile(t))
	if err != nil {
		t.Fatalf("`azen-gateway fmt Caddyfile` would change it (run it with --overwrite): %v\n%s", err, errOut)
	}
	_ = out
}

// adaptShipped adapts the shipped Caddyfile with env and decodes the JSON.
func deployAdapt(t *testing.T, env map[string]string) (map[string]any, string) {
	t.Helper()
	out, errOut, err := testenv.TryCommand(t, env, "adapt", "--config", deployShippedCaddyfile(t), "--adapter", "caddyfile")
	if err != nil {
		t.Fatalf("adapt failed: %v\n%s", err, errOut)
	}
	deployAssertNoSecret(t, "adapt", out+errOut)
	var cfg map[string]any
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("adapt output is not JSON: %v\n%s", err, out)
	}
	return cfg, out
}

// dig walks decoded JSON by object keys and array indexes.
func deployDig(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("want an object holding %q, have %T", k, v)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("want an array of more than %d items, have %v", k, v)
			}
			v = a[k]
		}
	}
	return v
}

// handlersOf lists the handler names of a route, looking into subroutes.
func deployHandlers(t *testing.T, route any) []any {
	t.Helper()
	var out []any
	for _, h := range deployDig(t, route, "handle").([]any) {
		if deployDig(t, h, "handler") == "subroute" {
			for _, r := range deployDig(t, h, "routes").([]any) {
				out = append(out, deployHandlers(t, r)...)
			}
			continue
		}
		out = append(out, h)
	}
	return out
}

func deployHandlerNames(t *testing.T, hs []any) []string {
	t.Helper()
	var names []string
	for _, h := range hs {
		names = append(names, deployDig(t, h, "handler").(string))
	}
	return names
}

// routeFor finds the route whose path matcher is exactly path; "" finds
// the last route without a matcher (the catch-all `handle`).
func deployRoute(t *testing.T, routes []any, path string) any {
	t.Helper()
	for i := range routes {
		r := routes[len(routes)-1-i]
		m, _ := r.(map[string]any)["match"].([]any)
		if path == "" && len(m) == 0 {
			return r
		}
		if len(m) == 1 {
			if ps, _ := deployDig(t, m[0], "path").([]any); slices.Contains(ps, any(path)) {
				return r
			}
		}
	}
	t.Fatalf("no route for %q", path)
	return nil
}

func TestShippedCaddyfileAdapt(t *testing.T) {
	env := deployWithEnv(deployProductionEnv(t), "AZEN_SITE_ADDRESS", ":18443", "AZEN_ADMIN_ADDR", "127.0.0.1:12019")
	cfg, raw := deployAdapt(t, env)

	t.Run("secrets stay placeholders", func(t *testing.T) {
		// The modules expand these at provision time; adapt shows the names.
		for _, p := range []string{"{env.AZEN_GATEWAY_SECRET}", "{env.AZEN_DATABASE_URL}", "{env.AZEN_REDIS_URL}"} {
			if !strings.Contains(raw, p) {
				t.Errorf("adapt output does not carry %s", p)
			}
		}
	})
	t.Run("admin and metrics", func(t *testing.T) {
		if got := deployDig(t, cfg, "admin", "listen"); got != "127.0.0.1:12019" {
			t.Errorf("admin listen %v, want AZEN_ADMIN_ADDR", got)
		}
		if _, ok := deployDig(t, cfg, "apps", "http").(map[string]any)["metrics"]; !ok {
			t.Error("HTTP metrics are off; the admin /metrics endpoint would have no request metrics")
		}
	})

	srv := deployDig(t, cfg, "apps", "http", "servers", "srv0")
	if got := deployDig(t, srv, "listen", 0); got != ":18443" {
		t.Errorf("listen %v, want AZEN_SITE_ADDRESS", got)
	}
	routes := deployDig(t, srv, "routes").([]any)

	t.Run("healthz is open", func(t *testing.T) {
		names := deployHandlerNames(t, deployHandlers(t, deployRoute(t, routes, "/healthz")))
		if slices.Contains(names, "azen_auth") || !slices.Contains(names, "static_response") {
			t.Errorf("/healthz handlers %v, want a static response without auth", names)
		}
	})
	api := deployHandlers(t, deployRoute(t, routes, "/api/v1/*"))
	t.Run("api goes through CORS, auth (which bounds the body), permissions, then limits, then the proxy", func(t *testing.T) {
		names := deployHandlerNames(t, api)
		if !slices.Equal(names, []string{"azen_cors", "azen_auth", "azen_permissions", "azen_permissions", "azen_permissions", "azen_ratelimit", "reverse_proxy"}) {
			t.Errorf("/api/v1/* handlers %v", names)
		}
	})
	rp := api[len(api)-1]
	t.Run("proxy to every backend with health checks and retries", func(t *testing.T) {
		var dials []string
		for _, u := range deployDig(t, rp, "upstreams").([]any) {
			dials = append(dials, deployDig(t, u, "dial").(string))
		}
		if !slices.Equal(dials, strings.Fields(env["AZEN_BACKENDS"])) {
			t.Errorf("upstreams %v, want every address of AZEN_BACKENDS", dials)
		}
		if got := deployDig(t, rp, "load_balancing", "selection_policy", "policy"); got != "least_conn" {
			t.Errorf("selection policy %v", got)
		}
		if d, _ := deployDig(t, rp, "load_balancing", "try_duration").(float64); d <= 0 {
			t.Error("no lb_try_duration: a request to a dead replica would fail instead of moving on")
		}
		if got := deployDig(t, rp, "health_checks", "active", "uri"); got != "/readyz" {
			t.Errorf("active health check uri %v", got)
		}
		if d, _ := deployDig(t, rp, "health_checks", "passive", "fail_duration").(float64); d <= 0 {
			t.Error("no passive health checks (fail_duration)")
		}
	})
	t.Run("everything else is a JSON 404", func(t *testing.T) {
		h := deployHandlers(t, deployRoute(t, routes, ""))
		if len(h) != 1 || deployDig(t, h[0], "handler") != "azen_error" || deployDig(t, h[0], "status_code") != float64(404) {
			t.Errorf("catch-all handlers %v", h)
		}
	})
	t.Run("errors go through azen_error", func(t *testing.T) {
		var names []string
		for _, r := range deployDig(t, srv, "errors", "routes").([]any) {
			names = append(names, deployHandlerNames(t, deployHandlers(t, r))...)
		}
		if !slices.Equal(names, []string{"azen_error"}) {
			t.Errorf("error handlers %v", names)
		}
	})
	t.Run("access log drops the key and records the key id", func(t *testing.T) {
		logName := deployDig(t, srv, "logs", "default_logger_name").(string)
		fields := deployDig(t, cfg, "logging", "logs", logName, "encoder", "fields").(map[string]any)
		if deployDig(t, fields, "request>headers", "filter") != "delete" {
			t.Error("the access log keeps request headers, where a key may be")
		}
		if deployDig(t, fields, "request>uri", "filter") != "regexp" {
			t.Error("the access log keeps keys sent in the query string")
		}
		if deployDig(t, cfg, "logging", "logs", logName, "encoder", "wrap", "format") != "json" {
			t.Error("the access log is not JSON")
		}
		appended := false
		for _, r := range routes {
			for _, h := range deployHandlers(t, r) {
				if deployDig(t, h, "handler") == "log_append" && deployDig(t, h, "key") == "key_id" && deployDig(t, h, "value") == "{azen.key_id}" {
					appended = true
				}
			}
		}
		if !appended {
			t.Error("no log_append key_id {azen.key_id}")
		}
	})

	t.Run("dns discovery resolves a name", func(t *testing.T) {
		cfg, _ := deployAdapt(t, deployWithEnv(env, "AZEN_BACKENDS_DISCOVERY", "dns",
			"AZEN_BACKENDS_DNS_NAME", "backend.internal", "AZEN_BACKENDS_DNS_PORT", "9001"))
		routes := deployDig(t, cfg, "apps", "http", "servers", "srv0", "routes").([]any)
		api := deployHandlers(t, deployRoute(t, routes, "/api/v1/*"))
		rp := api[len(api)-1]
		dyn := deployDig(t, rp, "dynamic_upstreams")
		if deployDig(t, dyn, "source") != "a" || deployDig(t, dyn, "name") != "backend.internal" || deployDig(t, dyn, "port") != "9001" {
			t.Errorf("dynamic upstreams %v", dyn)
		}
		if rp.(map[string]any)["upstreams"] != nil {
			t.Error("dns mode still lists static upstreams")
		}
		// Everything else about the proxy is shared by both modes.
		if deployDig(t, rp, "load_balancing", "selection_policy", "policy") != "least_conn" || deployDig(t, rp, "health_checks", "passive") == nil {
			t.Error("dns mode lost the shared proxy settings")
		}
	})
	t.Run("an unknown discovery mode is refused", func(t *testing.T) {
		_, errOut, err := testenv.TryCommand(t, deployWithEnv(env, "AZEN_BACKENDS_DISCOVERY", "consul"),
			"adapt", "--config", deployShippedCaddyfile(t), "--adapter", "caddyfile")
		if err == nil || !strings.Contains(errOut, "backends_consul") {
			t.Errorf("adapt accepted AZEN_BACKENDS_DISCOVERY=consul or did not name it: %v\n%s", err, errOut)
		}
	})
}

// deployStub is a stand-in backend replica: /readyz answers with a status
// the test sets, /api/v1/* checks the gateway's signature and answers 200.
type deployStub struct {
	addr      string
	keepAlive bool
	signer    *contract.Signer
	srv       *http.Server
	ready     atomic.Int32 // status of /readyz
	readyz    atomic.Int64 // /readyz requests seen
	unready   atomic.Int64 // /readyz requests answered with a non-2xx
	api       atomic.Int64 // API requests served
	badSig    atomic.Int64 // API requests whose signature did not verify
}

// startDeployStub starts a replica. Without keep-alives, stopping it leaves
// no idle connection behind and every request is a fresh dial the gateway
// can retry elsewhere; with them, it behaves like the real backend.
func startDeployStub(t *testing.T, signer *contract.Signer, keepAlive bool) *deployStub {
	t.Helper()
	s := &deployStub{addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), signer: signer, keepAlive: keepAlive}
	s.ready.Store(http.StatusOK)
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

func (s *deployStub) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			s.readyz.Add(1)
			status := int(s.ready.Load())
			if status/100 != 2 {
				s.unready.Add(1)
			}
			w.WriteHeader(status)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if _, _, err := s.signer.Verify(r, time.Now()); err != nil {
			s.badSig.Add(1)
		}
		s.api.Add(1)
		// Like the real backend, echo the request id.
		w.Header().Set("X-Request-Id", r.Header.Get("X-Request-Id"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"success"}`)
	})}
	s.srv.SetKeepAlivesEnabled(s.keepAlive)
	go func() { _ = s.srv.Serve(ln) }()
}

func (s *deployStub) stop() { _ = s.srv.Close() }

type deployKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

func createDeployKey(t *testing.T, env map[string]string, extra ...string) deployKey {
	t.Helper()
	args := append([]string{"keys", "create", "--org", "0b5f9c1e-3d2a-4c6b-8e7f-1a2b3c4d5e6f", "--user", "deploy-test", "--json"}, extra...)
	out := testenv.Command(t, env, args...)
	var k deployKey
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || k.Key == "" {
		t.Fatalf("keys create --json printed %q: %v", out, err)
	}
	return k
}

// deployAPIRequest sends method url with key ("" for none), with a JSON
// body for POST.
func deployAPIRequest(t *testing.T, method, url, key string) reply {
	t.Helper()
	var opts []callOption
	if method == http.MethodPost {
		opts = append(opts, withJSON(`{"text":"deploy test"}`))
	}
	if key != "" {
		opts = append(opts, withKey(key))
	}
	return call(t, method, url, opts...)
}

func deployExpectOK(t *testing.T, r reply) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: %d %s", r.method, r.url, r.status, r.raw)
	}
	if ids := r.header.Values("X-Request-Id"); len(ids) != 1 || ids[0] == "" {
		t.Errorf("X-Request-Id %q, want exactly one", ids)
	}
}

func TestShippedCaddyfileServes(t *testing.T) {
	secret := testenv.GatewaySecret()
	signer, err := contract.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	a, b := startDeployStub(t, signer, false), startDeployStub(t, signer, false)
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "gateway.db"),
		"AZEN_GATEWAY_SECRET": secret,
		"AZEN_BACKENDS":       a.addr + " " + b.addr,
	}
	key := createDeployKey(t, env)
	gw := testenv.StartGateway(t, string(deployRepoFile(t, "Caddyfile")), env)
	api := gw.URL + "/api/v1/memory"

	t.Run("healthz answers without a key", func(t *testing.T) {
		r := call(t, "GET", gw.URL+"/healthz")
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" || string(r.raw) != `{"status":"ok"}` {
			t.Errorf("/healthz: %d %q %s", r.status, r.header.Get("Content-Type"), r.raw)
		}
	})
	t.Run("unknown path is a JSON 404", func(t *testing.T) {
		wantAPIError(t, call(t, "GET", gw.URL+"/v2/anything"), http.StatusNotFound)
	})
	t.Run("api without a key is a JSON 401 and reaches no backend", func(t *testing.T) {
		before := a.api.Load() + b.api.Load()
		wantAPIError(t, deployAPIRequest(t, http.MethodGet, api, ""), http.StatusUnauthorized)
		if a.api.Load()+b.api.Load() != before {
			t.Error("an unauthenticated request reached a backend")
		}
	})
	t.Run("every replica is health-checked on /readyz", func(t *testing.T) {
		waitFor(t, "a /readyz probe on both replicas", func() bool { return a.readyz.Load() > 0 && b.readyz.Load() > 0 })
	})
	t.Run("requests spread over both replicas, signed", func(t *testing.T) {
		for range 20 {
			deployExpectOK(t, deployAPIRequest(t, http.MethodGet, api, key.Key))
		}
		if a.api.Load() == 0 || b.api.Load() == 0 {
			t.Errorf("requests per replica: %d and %d, want both used", a.api.Load(), b.api.Load())
		}
		if n := a.badSig.Load() + b.badSig.Load(); n != 0 {
			t.Errorf("%d requests reached a backend without a valid gateway signature", n)
		}
	})
	t.Run("an unready replica gets no traffic", func(t *testing.T) {
		b.ready.Store(http.StatusServiceUnavailable)
		// Two failed probes: the first one's verdict has certainly been
		// applied by the time the second is asked.
		waitFor(t, "two failed /readyz probes", func() bool { return b.unready.Load() >= 2 })
		before := b.api.Load()
		for range 10 {
			deployExpectOK(t, deployAPIRequest(t, http.MethodGet, api, key.Key))
		}
		if got := b.api.Load() - before; got != 0 {
			t.Errorf("the unready replica served %d requests", got)
		}
		b.ready.Store(http.StatusOK)
	})
	t.Run("a dead replica loses no request, POST included", func(t *testing.T) {
		a.stop() // connections to it are now refused
		for range 10 {
			deployExpectOK(t, deployAPIRequest(t, http.MethodPost, api, key.Key))
		}
	})
	t.Run("the access log names the key id, never the key", func(t *testing.T) {
		// A key in the wrong place (query string, another header) is refused
		// and must not be logged either.
		_, _ = tryCall(http.MethodGet, api+"?apikey="+key.Key+"&Azen-Api-Key="+key.Key,
			withHeader("X-Api-Key", key.Key), withHeader("X-Request-Id", "misplaced-key"))
		waitForLog(t, gw.Process, `"uri":"/api/v1/memory"`)
		waitForLog(t, gw.Process, `"request_id":"misplaced-key"`)
		out := gw.Output()
		if strings.Contains(out, key.Key) {
			t.Fatal("the gateway log contains the plaintext API key")
		}
		found := false
		sc := bufio.NewScanner(strings.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				Logger  string `json:"logger"`
				UserID  string `json:"user_id"`
				KeyID   string `json:"key_id"`
				Request struct {
					URI     string              `json:"uri"`
					Headers map[string][]string `json:"headers"`
				} `json:"request"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil || !strings.HasPrefix(line.Logger, "http.log.access") {
				continue
			}
			if _, ok := line.Request.Headers["Azen-Api-Key"]; ok {
				t.Error("an access log line carries the Azen-Api-Key header")
			}
			if line.Request.URI == "/api/v1/memory" && line.KeyID == key.ID {
				found = true
				if line.UserID != key.ID {
					t.Errorf("access log user_id %q, want the key id %q", line.UserID, key.ID)
				}
			}
		}
		if !found {
			t.Errorf("no access log line with key_id %q:\n%s", key.ID, out)
		}
	})
	t.Run("metrics on the admin endpoint", func(t *testing.T) {
		resp, err := http.Get("http://" + gw.AdminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, m := range []string{"caddy_http_requests_total", "caddy_reverse_proxy_upstreams_healthy"} {
			if !strings.Contains(string(body), m) {
				t.Errorf("admin /metrics lacks %s", m)
			}
		}
	})
}

func TestShippedCaddyfileDNSDiscoveryServes(t *testing.T) {
	secret := testenv.GatewaySecret()
	signer, err := contract.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	stub := startDeployStub(t, signer, false)
	_, port, _ := net.SplitHostPort(stub.addr)
	env := map[string]string{
		"AZEN_DATABASE_URL":       "sqlite:" + filepath.Join(t.TempDir(), "gateway.db"),
		"AZEN_GATEWAY_SECRET":     secret,
		"AZEN_BACKENDS_DISCOVERY": "dns",
		// An IP literal resolves to itself: no DNS server needed.
		"AZEN_BACKENDS_DNS_NAME": "127.0.0.1",
		"AZEN_BACKENDS_DNS_PORT": port,
	}
	key := createDeployKey(t, env)
	gw := testenv.StartGateway(t, string(deployRepoFile(t, "Caddyfile")), env)
	for range 3 {
		deployExpectOK(t, deployAPIRequest(t, http.MethodPost, gw.URL+"/api/v1/memory", key.Key))
	}
	if stub.api.Load() != 3 || stub.badSig.Load() != 0 {
		t.Errorf("the resolved backend served %d signed requests (%d unsigned), want 3", stub.api.Load(), stub.badSig.Load())
	}
}

// TestShippedCaddyfileDrainedReplicaLosesNothing is the shutdown sequence
// docs/deploy.md asks of a backend replica, under steady POST load through
// the shipped Caddyfile: on SIGTERM the replica first answers /readyz with
// 503 while it keeps serving, and closes (finishing what is in flight) only
// once the gateway's health check has seen it. No request may fail.
// Without the readiness step a plain graceful shutdown closes idle
// keep-alive connections under the gateway's feet, and a POST written on
// one at that moment fails with "broken pipe" and is not retried.
func TestShippedCaddyfileDrainedReplicaLosesNothing(t *testing.T) {
	secret := testenv.GatewaySecret()
	signer, err := contract.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	a, b := startDeployStub(t, signer, true), startDeployStub(t, signer, true)
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "gateway.db"),
		"AZEN_GATEWAY_SECRET": secret,
		"AZEN_BACKENDS":       a.addr + " " + b.addr,
	}
	key := createDeployKey(t, env, "--rate", "100000/s", "--burst", "100000")
	gw := testenv.StartGateway(t, string(deployRepoFile(t, "Caddyfile")), env)
	waitFor(t, "a /readyz probe on both replicas", func() bool { return a.readyz.Load() > 0 && b.readyz.Load() > 0 })

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	done := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	const workers = 8
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				r, err := tryCall(http.MethodPost, gw.URL+"/api/v1/memory", via(client), withKey(key.Key), withJSON(`{"text":"steady"}`))
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				if r.status != http.StatusOK {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, r.String())
				}
			}
		}()
	}
	// Steady load on both replicas first.
	waitFor(t, "both replicas under load", func() bool { return a.api.Load() > 200 && b.api.Load() > 200 })

	// SIGTERM on replica a: unready first, keep serving ...
	a.ready.Store(http.StatusServiceUnavailable)
	waitFor(t, "two failed /readyz probes", func() bool { return a.unready.Load() >= 2 })
	// ... then the graceful close: listener first, in-flight requests finish.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Errorf("graceful shutdown: %v", err)
	}
	cancel()
	afterStop := b.api.Load()
	waitFor(t, "load carried on by the other replica", func() bool { return b.api.Load() > afterStop+200 })
	close(stop)
	for range workers {
		<-done
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed while a replica drained; first: %v", n, sent.Load(), firstFailure.Load())
	}
	t.Logf("%d POSTs, %d failed; replica a served %d, b %d", sent.Load(), failed.Load(), a.api.Load(), b.api.Load())
}
