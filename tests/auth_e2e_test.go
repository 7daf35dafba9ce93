package tests

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/revocation"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
)

// TestAuthEndToEnd runs contract §4 and §7 through real gateways on real
// PostgreSQL and Redis. Subtests run in order: later ones restart Redis and
// finally stop PostgreSQL.
func TestAuthEndToEnd(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	up, base := signedStack(t, pg, rd)
	cli := map[string]string{"AZEN_DATABASE_URL": base["AZEN_DATABASE_URL"], "AZEN_REDIS_URL": rd.URL()}
	gw1 := testenv.StartGateway(t, authCaddyfile, authEnv(base))
	gw2 := testenv.StartGateway(t, authCaddyfile, authEnv(base))
	org := testenv.NewUUID()

	t.Run("check order and statuses of §4", func(t *testing.T) {
		_, good := testenv.CreateKey(t, cli, "--org", org, "--user", "alice")
		disabledID, disabled := testenv.CreateKey(t, cli)
		testenv.Command(t, cli, "keys", "disable", disabledID)
		expired := authInsertKey(t, base["AZEN_DATABASE_URL"], org, "alice", time.Now().Add(-time.Second))
		noOrg := authInsertKey(t, base["AZEN_DATABASE_URL"], "", "alice", time.Time{})
		noUser := authInsertKey(t, base["AZEN_DATABASE_URL"], org, "", time.Time{})
		unknown, _ := apikey.Generate()
		mistyped := good[:20] + authFlipCase(good[20]) + good[21:]

		t.Run("missing header is 401", func(t *testing.T) {
			e := wantAPIError(t, authCall(t, gw1.URL, nil), 401)
			if !strings.Contains(e.Message, "azen-api-key") {
				t.Errorf("message %q", e.Message)
			}
		})
		t.Run("key in the query string or a cookie is not a credential", func(t *testing.T) {
			r := call(t, "GET", gw1.URL+"/api/v1/memory?azen-api-key="+good, withHeader("Cookie", "azen-api-key="+good))
			wantAPIError(t, r, 401)
		})
		rows := []struct {
			rule, key string
			code      int
			message   string
		}{
			{"empty header is 401", "", 401, "Empty API key: the azen-api-key header is blank."},
			{"spaces only is 401", "    ", 401, "Empty API key: the azen-api-key header is blank."},
			{"malformed key is 403", "sk_live_123", 403, "Malformed API key: it is not an Azen key or was mistyped."},
			{"mistyped key (bad checksum) is 403", mistyped, 403, "Malformed API key: it is not an Azen key or was mistyped."},
			{"unknown key is 403", unknown, 403, "Unknown API key."},
			{"disabled key is 403", disabled, 403, "API key is disabled."},
			{"expired key is 403", expired, 403, "API key has expired."},
			{"key without organization is 403", noOrg, 403, "API key is not bound to an organization and a user."},
			{"key without user is 403", noUser, 403, "API key is not bound to an organization and a user."},
			{"valid key reaches the upstream", good, 200, ""},
		}
		for _, row := range rows {
			t.Run(row.rule, func(t *testing.T) {
				expectAuth(t, gw1.URL, row.key, row.code, row.message)
				expectAuth(t, gw2.URL, row.key, row.code, row.message)
			})
		}
		t.Run("header name is case-insensitive", func(t *testing.T) {
			asWritten := func(r *request) { r.header["aZEN-api-KEY"] = []string{good} }
			if got := call(t, "GET", gw1.URL+"/api/v1/memory", asWritten).status; got != 200 {
				t.Fatalf("status %d", got)
			}
		})
	})

	t.Run("upstream gets a signed identity and no key", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, cli, "--org", org, "--user", "bob", "--tier", "pro")
		r := authCall(t, gw1.URL, &k.Key, "Azen-User-Id", "mallory", "Azen-Organization-Id", testenv.NewUUID(),
			"Azen-Signature", "forged", "Azen-Extra", "x")
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
		saw := up.Last()
		if saw.Verified != nil {
			t.Fatalf("upstream could not verify: %v", saw.Verified)
		}
		if saw.Identity != (contract.Identity{OrganizationID: org, UserID: "bob", KeyID: k.ID, Credential: contract.CredentialKey}) {
			t.Fatalf("identity %+v", saw.Identity)
		}
		if saw.APIKey() != "" {
			t.Fatal("azen-api-key reached the upstream")
		}
		for _, n := range saw.AzenNames() {
			switch n {
			case contract.HeaderOrganizationID, contract.HeaderUserID, contract.HeaderKeyID, contract.HeaderCredential,
				contract.HeaderTimestamp, contract.HeaderBodySHA256, contract.HeaderSignature:
			default:
				t.Errorf("client header %s reached the upstream", n)
			}
		}
	})

	t.Run("revocation through the CLI reaches both gateways within 1 s", func(t *testing.T) {
		id, key := testenv.CreateKey(t, cli)
		expectAuth(t, gw1.URL, key, 200, "")
		expectAuth(t, gw2.URL, key, 200, "")
		// The cache TTL is 30 s: only the invalidation can explain a change
		// within a second.
		testenv.Command(t, cli, "keys", "disable", id)
		authEventually(t, gw1.URL, key, 403, time.Second)
		authEventually(t, gw2.URL, key, 403, time.Second)
		expectAuth(t, gw1.URL, key, 403, "API key is disabled.")

		testenv.Command(t, cli, "keys", "enable", id)
		authEventually(t, gw1.URL, key, 200, time.Second)
		authEventually(t, gw2.URL, key, 200, time.Second)

		testenv.Command(t, cli, "keys", "delete", id)
		authEventually(t, gw1.URL, key, 403, time.Second)
		authEventually(t, gw2.URL, key, 403, time.Second)
		expectAuth(t, gw2.URL, key, 403, "Unknown API key.")
	})

	t.Run("invalidation works again after a Redis restart", func(t *testing.T) {
		id, key := testenv.CreateKey(t, cli)
		expectAuth(t, gw1.URL, key, 200, "")
		rd.Restart()
		waitForKeySubscribers(t, 2, rd.URL())
		expectAuth(t, gw1.URL, key, 200, "")
		expectAuth(t, gw2.URL, key, 200, "")
		testenv.Command(t, cli, "keys", "disable", id)
		authEventually(t, gw1.URL, key, 403, time.Second)
		authEventually(t, gw2.URL, key, 403, time.Second)
	})

	t.Run("failed attempts are limited per client address", func(t *testing.T) {
		trusting := testenv.StartGateway(t, authCaddyfile, authEnv(base, "FAILED", "3/m"))
		unknown, _ := apikey.Generate()
		_, good := testenv.CreateKey(t, cli)
		for i := 0; i < 3; i++ {
			expectAuth(t, trusting.URL, unknown, 403, "Unknown API key.", "X-Forwarded-For", "198.51.100.1")
		}
		r := authCall(t, trusting.URL, &unknown, "X-Forwarded-For", "198.51.100.1")
		if r.header.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		e := wantAPIError(t, r, 429)
		if !strings.HasPrefix(e.Message, "Too many failed API key attempts") {
			t.Errorf("message %q", e.Message)
		}
		expectAuth(t, trusting.URL, good, 429, "", "X-Forwarded-For", "198.51.100.1")
		// From a trusted proxy, X-Forwarded-For names the client: another
		// client is not blocked.
		expectAuth(t, trusting.URL, good, 200, "", "X-Forwarded-For", "198.51.100.2")

		// Behind no trusted proxy, X-Forwarded-For is ignored: changing it
		// does not escape the limit.
		untrusting := testenv.StartGateway(t, authCaddyfile, authEnv(base, "FAILED", "3/m", "TRUSTED", "192.0.2.0/24"))
		for i := 0; i < 3; i++ {
			expectAuth(t, untrusting.URL, unknown, 403, "", "X-Forwarded-For", "203.0.113."+string(rune('1'+i)))
		}
		expectAuth(t, untrusting.URL, good, 429, "", "X-Forwarded-For", "203.0.113.9")
	})

	t.Run("metrics count outcomes and cache results", func(t *testing.T) {
		resp, err := http.Get("http://" + gw1.AdminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			`azen_auth_requests_total{outcome="ok"}`, `azen_auth_requests_total{outcome="disabled"}`,
			`azen_auth_requests_total{outcome="missing"}`, `azen_auth_key_cache_total{result="hit"}`,
			`azen_auth_key_cache_total{result="miss"}`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("database outage: 500 for uncached keys, cached keys keep working", func(t *testing.T) {
		// Short TTL and no Redis, so the cached entry is expired (stale)
		// while the database is down.
		short := testenv.StartGateway(t, authCaddyfile, authEnv(base, "CACHE_TTL", "1s", "AZEN_REDIS_URL", ""))
		_, cached := testenv.CreateKey(t, cli)
		_, uncached := testenv.CreateKey(t, cli)
		expectAuth(t, short.URL, cached, 200, "")
		expectAuth(t, gw1.URL, cached, 200, "")
		// The test server runs with synchronous_commit=off: make sure the
		// new keys survive its crash.
		authCheckpoint(t, base["AZEN_DATABASE_URL"])
		pg.Stop()
		time.Sleep(1100 * time.Millisecond) // let the 1 s entry expire
		expectAuth(t, short.URL, cached, 200, "")
		expectAuth(t, gw1.URL, cached, 200, "")
		e := wantAPIError(t, authCall(t, short.URL, &uncached), 500)
		if e.Message != contract.MessageInternal {
			t.Errorf("500 message %q is not the generic one", e.Message)
		}
		unknown, _ := apikey.Generate()
		wantAPIError(t, authCall(t, gw2.URL, &unknown), 500)
		expectAuth(t, short.URL, "not-a-key", 403, "") // refused without the database
		pg.Start()
		authEventually(t, short.URL, uncached, 200, 10*time.Second)
	})
}

// authInsertKey stores a key row the CLI would refuse to create (no
// organization, no user, already expired) and returns the plaintext key.
func authInsertKey(t *testing.T, dbURL, org, user string, expires time.Time) string {
	t.Helper()
	db, err := sqldb.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key, _ := apikey.Generate()
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var exp any
	if !expires.IsZero() {
		exp = expires.UTC()
	}
	_, err = db.Exec(db.Rebind(`INSERT INTO api_keys (id, key_hash, prefix, organization_id, user_id, enabled, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), testenv.NewUUID(), apikey.HashOf(key).Hex(), apikey.DisplayPrefix(key),
		nullable(org), nullable(user), true, exp, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func authCheckpoint(t *testing.T, dbURL string) {
	t.Helper()
	db, err := sqldb.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
}

func authFlipCase(c byte) string {
	switch {
	case c >= 'a' && c <= 'z':
		return string(c - 32)
	case c >= 'A' && c <= 'Z':
		return string(c + 32)
	case c == '0':
		return "1"
	default:
		return "0"
	}
}

// waitForKeySubscribers waits until n gateways listen on the invalidation
// channel of the Redis servers at urls (summed: in a Cluster each node
// counts only its own subscribers). After a Redis restart the gateways
// resubscribe by themselves.
func waitForKeySubscribers(t *testing.T, n int64, urls ...string) {
	t.Helper()
	var clients []*redis.Client
	for _, u := range urls {
		opt, err := redis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		c := redis.NewClient(opt)
		defer c.Close()
		clients = append(clients, c)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var total int64
		var lastErr error
		for _, c := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			res, err := c.PubSubNumSub(ctx, revocation.Channel).Result()
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			total += res[revocation.Channel]
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d gateways subscribed after 15 s (last error %v)", total, n, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
