package azenauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/usage"
)

const testSecret = "test-secret-0123456789abcdef-0123456789"

// testStores are the tables a test handler's runtime uses, opened
// separately, as the CLI or the console would.
type testStores struct {
	db       *sqldb.DB
	keys     *apikey.Store
	accounts *account.Store
	usage    *usage.Store
}

// newTestHandler provisions azen_auth on a fresh SQLite store, as Caddy
// would, and returns it with the stores.
func newTestHandler(t testing.TB, mutate func(*Handler)) (*Handler, *testStores) {
	t.Helper()
	url := "sqlite:" + filepath.Join(t.TempDir(), "keys.db")
	h := &Handler{Database: url, Secret: testSecret, FailedAttempts: "5/m"}
	if mutate != nil {
		mutate(h)
	}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	if err := h.Provision(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Cleanup()
		cancel()
	})
	db, err := sqldb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &testStores{db: db, keys: apikey.NewStore(db), accounts: account.NewStore(db), usage: usage.NewStore(db)}
	st.accounts.PasswordCost = bcrypt.MinCost
	for _, m := range []interface{ Migrate(context.Context) error }{st.keys, st.accounts, st.usage} {
		if err := m.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return h, st
}

type served struct {
	status   int    // 0 when next was called
	message  string // client-facing message of the error
	err      error
	upstream *http.Request
	repl     *caddy.Replacer
	header   http.Header
}

func serve(h *Handler, clientIP string, header http.Header) served {
	return serveRequest(h, clientIP, httptest.NewRequest("POST", "/api/v1/memory?x=1", nil), header, nil)
}

// serveRequest runs req (with header added) through h; next, when given,
// is the upstream.
func serveRequest(h *Handler, clientIP string, req *http.Request, header http.Header, next caddyhttp.HandlerFunc) served {
	for k, v := range header {
		req.Header[k] = v
	}
	repl := caddy.NewReplacer()
	ctx := context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: clientIP})
	req = req.WithContext(ctx)
	w := httptest.NewRecorder()
	var s served
	upstream := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		s.upstream = r
		if next != nil {
			return next(w, r)
		}
		return nil
	})
	s.err = h.ServeHTTP(w, req, upstream)
	s.repl, s.header = repl, w.Header()
	if s.err != nil {
		var he caddyhttp.HandlerError
		if errors.As(s.err, &he) {
			s.status = he.StatusCode
		}
		s.message, _ = contract.PublicMessage(s.err)
	}
	return s
}

func keyHeader(vals ...string) http.Header {
	return http.Header{contract.APIKeyHeader: vals}
}

func insertRaw(t *testing.T, st *testStores, plain string, org, user any, enabled bool, expires any) string {
	t.Helper()
	id := ids.New()
	_, err := st.db.Exec(st.db.Rebind(`INSERT INTO api_keys (id, key_hash, prefix, organization_id, user_id, enabled, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), id, apikey.HashOf(plain).Hex(), apikey.DisplayPrefix(plain), org, user, enabled, expires, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCheckOrderAndStatuses(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "1000/m" })
	ctx := context.Background()
	org := "0b0e7a4c-1111-4a4a-8a8a-000000000001"
	good, goodKey := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "alice", Tier: "pro", RateLimit: "120/m burst 20"})
	disabled, disabledKey := mustCreate(t, st, apikey.NewKey{OrganizationID: org, UserID: "alice"})
	if err := st.keys.SetEnabled(ctx, "", disabled.ID, false); err != nil {
		t.Fatal(err)
	}
	expiredKey, _ := apikey.Generate()
	insertRaw(t, st, expiredKey, org, "alice", true, time.Now().Add(-time.Minute).UTC())
	noOrg, _ := apikey.Generate()
	insertRaw(t, st, noOrg, nil, "alice", true, nil)
	noUser, _ := apikey.Generate()
	insertRaw(t, st, noUser, org, nil, true, nil)
	blankUser, _ := apikey.Generate()
	insertRaw(t, st, blankUser, org, "  ", true, nil)
	badOrg, _ := apikey.Generate()
	insertRaw(t, st, badOrg, "acme", "alice", true, nil)
	newlineUser, _ := apikey.Generate()
	insertRaw(t, st, newlineUser, org, "alice\r\nX-Evil: 1", true, nil)
	disabledAndExpired, _ := apikey.Generate()
	insertRaw(t, st, disabledAndExpired, org, "alice", false, time.Now().Add(-time.Minute).UTC())
	unknown, _ := apikey.Generate()
	badChecksum := goodKey[:len(goodKey)-1] + string("01"[0+btoi(goodKey[len(goodKey)-1] == '0')])

	rows := []struct {
		rule    string
		header  http.Header
		status  int
		message string
	}{
		{"header missing is 401", http.Header{}, 401, msgMissing},
		{"key in another header is missing", http.Header{"Authorization": {"Bearer " + goodKey}}, 401, msgMissing},
		{"empty header is 401", keyHeader(""), 401, msgBlank},
		{"only spaces is 401", keyHeader("   \t "), 401, msgBlank},
		{"malformed key is 403", keyHeader("hello"), 403, msgMalformed},
		{"bad checksum is 403", keyHeader(badChecksum), 403, msgMalformed},
		{"two key headers are 403", keyHeader(goodKey, goodKey), 403, msgSeveral},
		{"unknown key is 403", keyHeader(unknown), 403, msgUnknown},
		{"disabled key is 403", keyHeader(disabledKey), 403, msgDisabled},
		{"expired key is 403", keyHeader(expiredKey), 403, msgExpired},
		{"disabled is reported before expired", keyHeader(disabledAndExpired), 403, msgDisabled},
		{"key without organization is 403", keyHeader(noOrg), 403, msgIncomplete},
		{"key without user is 403", keyHeader(noUser), 403, msgIncomplete},
		{"key with a blank user is 403", keyHeader(blankUser), 403, msgIncomplete},
		{"key whose organization is not a UUID is 403", keyHeader(badOrg), 403, msgIncomplete},
		{"key whose user cannot travel in a header is 403", keyHeader(newlineUser), 403, msgIncomplete},
		{"valid key passes", keyHeader(goodKey), 0, ""},
		{"surrounding spaces are ignored", keyHeader("  " + goodKey + " "), 0, ""},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			before := lookups(h)
			s := serve(h, "203.0.113.1", row.header)
			if noLookup := row.status == 401 || row.message == msgMalformed || row.message == msgSeveral; noLookup && lookups(h) != before {
				t.Fatal("refused without a key, yet looked one up")
			}
			if s.status != row.status || s.message != row.message {
				t.Fatalf("got %d %q (err %v), want %d %q", s.status, s.message, s.err, row.status, row.message)
			}
			if row.status == 0 && s.upstream == nil {
				t.Fatal("next was not called")
			}
			if row.status != 0 && s.upstream != nil {
				t.Fatal("next was called on a refusal")
			}
		})
	}

	t.Run("success forwards a signed identity and strips client Azen headers", func(t *testing.T) {
		hdr := keyHeader(goodKey)
		hdr.Set("Azen-User-Id", "mallory")
		hdr.Set("Azen-Organization-Id", "ffffffff-ffff-4fff-8fff-ffffffffffff")
		hdr.Set("Azen-Whatever", "x")
		s := serve(h, "203.0.113.1", hdr)
		if s.upstream == nil {
			t.Fatalf("refused: %v", s.err)
		}
		r := s.upstream
		if r.Header.Get(contract.APIKeyHeader) != "" || r.Header.Get("Azen-Whatever") != "" {
			t.Fatal("client headers reached the upstream")
		}
		signer, _ := contract.NewSigner(testSecret)
		id, _, err := signer.Verify(r, time.Now())
		if err != nil {
			t.Fatalf("upstream cannot verify: %v", err)
		}
		if id != (contract.Identity{OrganizationID: org, UserID: "alice", KeyID: good.ID, Credential: contract.CredentialKey}) {
			t.Fatalf("identity %+v", id)
		}
		for name, want := range map[string]string{
			"azen.key_id": good.ID, "azen.org_id": org, "azen.user_id": "alice", "azen.tier": "pro",
			"azen.rate_limit": "120/m burst 20", "http.auth.user.id": good.ID, "azen.credential": "key",
		} {
			if got, _ := s.repl.GetString(name); got != want {
				t.Errorf("placeholder {%s} = %q, want %q", name, got, want)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func mustCreateTB(t testing.TB, st *testStores) (apikey.Key, string) {
	t.Helper()
	k, plain, err := st.keys.Create(context.Background(), apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k, plain
}

func mustCreate(t *testing.T, st *testStores, nk apikey.NewKey) (apikey.Key, string) {
	t.Helper()
	k, plain, err := st.keys.Create(context.Background(), nk, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k, plain
}

func TestExpiryIsHonouredForCachedKeys(t *testing.T) {
	h, st := newTestHandler(t, nil)
	_, plain := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u", ExpiresAt: time.Now().Add(10 * time.Minute)})
	if s := serve(h, "203.0.113.1", keyHeader(plain)); s.status != 0 {
		t.Fatalf("fresh key refused: %v", s.err)
	}
	// Eleven minutes later the entry is still in the cache (TTL measured
	// from the cache's own clock), but the key has expired.
	h.now = func() time.Time { return time.Now().Add(11 * time.Minute) }
	h.rt.keys.ttl = time.Hour
	if s := serve(h, "203.0.113.1", keyHeader(plain)); s.status != 403 || s.message != msgExpired {
		t.Fatalf("expired cached key: %d %q", s.status, s.message)
	}
}

func TestFailedAttemptsAreLimitedPerClient(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "3/m" })
	_, good := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	unknown, _ := apikey.Generate()
	for i := 0; i < 3; i++ {
		if s := serve(h, "198.51.100.7", keyHeader(unknown)); s.status != 403 {
			t.Fatalf("attempt %d: %d", i, s.status)
		}
	}
	misses := cacheMisses(h)
	s := serve(h, "198.51.100.7", keyHeader(unknown))
	if s.status != 429 || !strings.HasPrefix(s.message, "Too many failed API key attempts") {
		t.Fatalf("past the limit: %d %q", s.status, s.message)
	}
	if ra, _ := strconv.Atoi(s.header.Get("Retry-After")); ra < 1 || ra > 20 {
		t.Fatalf("Retry-After %q", s.header.Get("Retry-After"))
	}
	if s := serve(h, "198.51.100.7", keyHeader(good)); s.status != 429 {
		t.Fatalf("a blocked address with a good key: %d (the limit applies to the address)", s.status)
	}
	if cacheMisses(h) != misses {
		t.Fatal("a blocked attempt looked the key up")
	}
	if s := serve(h, "198.51.100.8", keyHeader(good)); s.status != 0 {
		t.Fatalf("another address is refused: %d", s.status)
	}
	// Missing and empty headers are 401s, not failed key attempts.
	if s := serve(h, "198.51.100.7", http.Header{}); s.status != 401 {
		t.Fatalf("missing header from a blocked address: %d", s.status)
	}
}

func cacheMisses(h *Handler) int {
	p, n := h.rt.keys.Len()
	return p + n
}

func TestProvisionRefusesBadSettings(t *testing.T) {
	t.Setenv("AZEN_TEST_SECRET", testSecret)
	t.Setenv("AZEN_TEST_SHORT", "short")
	cases := []struct {
		name    string
		h       Handler
		wantErr string
	}{
		{"secret missing", Handler{}, "secret is required"},
		{"secret from an unset variable", Handler{Secret: "{env.AZEN_TEST_UNSET}"}, "secret is required"},
		{"secret too short", Handler{Secret: "{env.AZEN_TEST_SHORT}"}, "at least 32 bytes"},
		{"bad database URL", Handler{Secret: testSecret, Database: "mysql://x"}, "database"},
		{"bad redis URL", Handler{Secret: testSecret, Database: "sqlite:x.db", Redis: "http://x"}, "redis"},
		{"bad failed_attempts", Handler{Secret: testSecret, Database: "sqlite:x.db", FailedAttempts: "lots"}, "failed_attempts"},
		{"negative cache_ttl", Handler{Secret: testSecret, Database: "sqlite:x.db", CacheTTL: -1}, "cache_ttl"},
		{"secret from env is fine", Handler{Secret: "{env.AZEN_TEST_SECRET}", Database: "sqlite:" + filepath.Join(t.TempDir(), "k.db")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			h := c.h
			err := h.Provision(ctx)
			defer h.Cleanup()
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
			if strings.Contains(err.Error(), "short") || strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error repeats the secret: %v", err)
			}
		})
	}
}

func TestProvisionMakesNoConnection(t *testing.T) {
	// A PostgreSQL URL where nothing listens and an unreachable Redis: provision
	// (as under `caddy validate`) must still succeed quickly.
	h := Handler{Secret: testSecret, Database: "postgres://u:pw@127.0.0.1:1/db", Redis: "redis://127.0.0.1:1"}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	h.Cleanup()
}

func TestStoreOutageIsA500NeverA403(t *testing.T) {
	h, st := newTestHandler(t, nil)
	_, plain := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	if s := serve(h, "203.0.113.1", keyHeader(plain)); s.status != 0 {
		t.Fatal(s.err)
	}
	// Break the store underneath the runtime.
	h.rt.stores.db.Close()
	h.rt.keys.ttl = time.Nanosecond
	if s := serve(h, "203.0.113.1", keyHeader(plain)); s.status != 0 {
		t.Fatalf("cached key during outage: %d %v", s.status, s.err)
	}
	unknown, _ := apikey.Generate()
	s := serve(h, "203.0.113.1", keyHeader(unknown))
	if s.status != 500 || s.message != "" {
		t.Fatalf("uncached key during outage: %d %q", s.status, s.message)
	}
}

func BenchmarkWarmAuth(b *testing.B) {
	h, st := newTestHandler(b, nil)
	k, plain, err := st.keys.Create(context.Background(), apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/api/v1/memory", nil)
	repl := caddy.NewReplacer()
	ctx := context.WithValue(req.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: "203.0.113.1"})
	req = req.WithContext(ctx)
	w := httptest.NewRecorder()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	req.Header.Set(contract.APIKeyHeader, plain)
	if err := h.ServeHTTP(w, req, next); err != nil {
		b.Fatal(err)
	}
	if got, _ := repl.GetString("azen.key_id"); got != k.ID {
		b.Fatal("not authenticated")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Header.Set(contract.APIKeyHeader, plain)
		if err := h.ServeHTTP(w, req, next); err != nil {
			b.Fatal(err)
		}
	}
}

// reloadOf provisions a handler with h1's settings in a new context and
// registry while h1 still runs, as a Caddy reload does, and checks that it
// kept h1's runtime (cache, store, meter). It is cleaned up with the test.
func reloadOf(t *testing.T, h1 *Handler) (*Handler, caddy.Context) {
	t.Helper()
	h2 := &Handler{Database: h1.Database, Secret: testSecret, FailedAttempts: h1.FailedAttempts}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h2.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Cleanup() })
	if h2.rt != h1.rt {
		t.Fatal("the reload did not keep the runtime (cache, store)")
	}
	return h2, ctx
}

func TestCountersSurviveAReloadWithTheSameSettings(t *testing.T) {
	h1, st := newTestHandler(t, nil)
	_, plain := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	if s := serve(h1, "203.0.113.1", keyHeader(plain)); s.status != 0 {
		t.Fatal(s.err)
	}
	h2, ctx := reloadOf(t, h1)
	if s := serve(h2, "203.0.113.1", keyHeader(plain)); s.status != 0 {
		t.Fatal(s.err)
	}
	if got := counterValue(h2.metrics.outcomes[outcomeOK]); got != 2 {
		t.Fatalf("ok counter %v after one request per config, want 2", got)
	}
	if got := counterValue(h2.metrics.cache[cacheHit]); got != 1 {
		t.Fatalf("the second config's request was not a cache hit (hits %v)", got)
	}
	families, err := ctx.GetMetricsRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		found = found || f.GetName() == "azen_auth_requests_total"
	}
	if !found {
		t.Fatal("counters not registered on the new config's registry")
	}
}

func TestAReloadWritesTheUsageCounts(t *testing.T) {
	h1, st := newTestHandler(t, nil) // usage_flush 10 s: the timer stays out of it
	_, plain := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	for range 3 {
		if s := serve(h1, "203.0.113.1", keyHeader(plain)); s.status != 0 {
			t.Fatal(s.err)
		}
	}
	reloadOf(t, h1) // the new config, keeping the runtime
	var before, after int64
	count := `SELECT COALESCE(SUM(requests), 0) FROM usage_daily`
	if err := st.db.Get(&before, count); err != nil {
		t.Fatal(err)
	}
	h1.Cleanup() // the old config goes, the runtime stays
	if err := st.db.Get(&after, count); err != nil {
		t.Fatal(err)
	}
	if before != 0 || after != 3 {
		t.Fatalf("usage_daily held %d requests before the old config's cleanup and %d after, want 0 and 3", before, after)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// lookups counts cache lookups (hits, misses, stale answers) of h.
func lookups(h *Handler) float64 {
	return counterValue(h.metrics.cache[cacheHit]) + counterValue(h.metrics.cache[cacheMiss]) + counterValue(h.metrics.cache[cacheStale])
}

// A request nobody vouches for (sign-in, sign-up, the console's pages
// without a session) reaches the upstream unsigned and with nothing a client
// could pass off as gateway-made identity: no key header, no Azen-* header.
func TestUnsignedRequestsCarryNoClientIdentity(t *testing.T) {
	h, _ := newTestHandler(t, nil)
	forged := http.Header{
		"Azen-User-Id":         {"mallory"},
		"Azen-Organization-Id": {"ffffffff-ffff-4fff-8fff-ffffffffffff"},
		"Azen-Signature":       {"00"},
		"Azen-Whatever":        {"x"},
	}
	for _, target := range []string{"/auth/sign-in", "/auth/sign-up", "/console", "/auth/sign-out"} {
		t.Run(target, func(t *testing.T) {
			method := http.MethodPost
			if target == "/console" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, target, strings.NewReader("{}"))
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			s := serveRequest(h, "203.0.113.9", req, forged, nil)
			if s.upstream == nil {
				t.Fatalf("refused: %d %q (%v)", s.status, s.message, s.err)
			}
			for name := range s.upstream.Header {
				if len(name) >= 5 && strings.EqualFold(name[:5], "azen-") {
					t.Errorf("%s reached the upstream: %q", name, s.upstream.Header[name])
				}
			}
		})
	}
}
