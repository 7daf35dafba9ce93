package tests

// Contract §10 through real binaries on real PostgreSQL and Redis, with two
// gateways each time: the shipped Caddyfile's permissions per route, keys
// changed in place and rerolled with a grace period, every change applied on
// both gateways within a second, and the checks of `keys update` and
// `keys reroll`.

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/testenv"
)

// lcRequest sends method path (with a JSON body for POST and PATCH) to gw
// with key.
func lcRequest(t *testing.T, gwURL, method, path, key string) reply {
	t.Helper()
	opts := []callOption{withKey(key)}
	if method == http.MethodPost || method == http.MethodPatch {
		opts = append(opts, withJSON(`{"text":"lifecycle test","query":"lifecycle"}`))
	}
	return call(t, method, gwURL+path, opts...)
}

// TestShippedCaddyfilePermissions: the shipped Caddyfile needs memory:read
// for GET /api/v1/memory* and POST /api/v1/memory/search and memory:write
// for the other memory routes (contract §10), on every gateway. A refusal
// reaches no backend and is not charged to the rate limit.
func TestShippedCaddyfilePermissions(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	secret := testenv.GatewaySecret()
	signer, err := contract.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	backend := startDeployStub(t, signer, true)
	env := map[string]string{
		"AZEN_DATABASE_URL":   pg.CreateDatabase(t),
		"AZEN_REDIS_URL":      rd.URL(),
		"AZEN_GATEWAY_SECRET": secret,
		"AZEN_BACKENDS":       backend.addr,
	}
	caddyfile := string(deployRepoFile(t, "Caddyfile"))
	gws := []*testenv.Gateway{testenv.StartGateway(t, caddyfile, env), testenv.StartGateway(t, caddyfile, env)}
	_, readOnly := testenv.CreateKey(t, env, "--permissions", "memory:read")
	_, writeOnly := testenv.CreateKey(t, env, "--permissions", "memory:write")
	_, defaults := testenv.CreateKey(t, env)
	_, keysOnly := testenv.CreateKey(t, env, "--permissions", "keys:read,keys:write")
	one := "/api/v1/memory/" + testenv.NewUUID()

	const lacksRead, lacksWrite = "API key lacks permission memory:read", "API key lacks permission memory:write"
	rows := []struct {
		rule         string
		key          string
		method, path string
		message      string // "" when admitted
	}{
		{"a read-only key lists", readOnly, "GET", "/api/v1/memory", ""},
		{"a read-only key reads one memory", readOnly, "GET", one, ""},
		{"a read-only key searches", readOnly, "POST", "/api/v1/memory/search", ""},
		{"a read-only key may not create", readOnly, "POST", "/api/v1/memory", lacksWrite},
		{"a read-only key may not update", readOnly, "PATCH", one, lacksWrite},
		{"a read-only key may not delete", readOnly, "DELETE", one, lacksWrite},
		{"a write-only key creates", writeOnly, "POST", "/api/v1/memory", ""},
		{"a write-only key updates", writeOnly, "PATCH", one, ""},
		{"a write-only key deletes", writeOnly, "DELETE", one, ""},
		{"a write-only key may not list", writeOnly, "GET", "/api/v1/memory", lacksRead},
		{"a write-only key may not read one memory", writeOnly, "GET", one, lacksRead},
		{"a write-only key may not search", writeOnly, "POST", "/api/v1/memory/search", lacksRead},
		{"the default permissions read", defaults, "GET", one, ""},
		{"the default permissions search", defaults, "POST", "/api/v1/memory/search", ""},
		{"the default permissions write", defaults, "DELETE", one, ""},
		{"a key for the key routes only may not read memories", keysOnly, "GET", "/api/v1/memory", lacksRead},
		{"a key for the key routes only may not write memories", keysOnly, "POST", "/api/v1/memory", lacksWrite},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			for i, gw := range gws {
				before := backend.api.Load()
				resp := lcRequest(t, gw.URL, row.method, row.path, row.key)
				if row.message == "" {
					deployExpectOK(t, resp)
					if resp.header.Get("RateLimit-Policy") == "" {
						t.Errorf("gateway %d: an admitted request did not pass the rate limiter", i+1)
					}
					continue
				}
				if e := wantAPIError(t, resp, http.StatusForbidden); e.Message != row.message {
					t.Errorf("gateway %d: message %q, want %q", i+1, e.Message, row.message)
				}
				if backend.api.Load() != before {
					t.Errorf("gateway %d: a refused request reached the backend", i+1)
				}
				if resp.header.Get("RateLimit-Policy") != "" || resp.header.Get("X-RateLimit-Remaining") != "" {
					t.Errorf("gateway %d: a refused request went through the rate limiter", i+1)
				}
			}
		})
	}
}

// lifecycleCaddyfile is azen_auth, permissions by method, a limiter with a
// tier (visible in RateLimit-Policy) and the verifying upstream.
const lifecycleCaddyfile = `{
	admin {$AZEN_ADMIN_ADDR}
}
{$AZEN_SITE_ADDRESS} {
	azen_request_id
	handle /api/v1/* {
		azen_auth {
			database {env.AZEN_DATABASE_URL}
			redis {env.AZEN_REDIS_URL}
			secret {env.AZEN_GATEWAY_SECRET}
			cache_ttl 30s
			failed_attempts 1000/m
		}
		@read method GET HEAD
		azen_permissions @read memory:read
		@write not method GET HEAD
		azen_permissions @write memory:write
		azen_ratelimit {
			redis {env.AZEN_REDIS_URL}
			rate 1000/m
			tier pro 600/m burst 100
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

// lcListed is a key as `keys list --json` prints it.
type lcListed struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Tier              string   `json:"tier"`
	RateLimit         string   `json:"rateLimit"`
	ExpiresAt         *string  `json:"expiresAt"`
	Permissions       []string `json:"permissions"`
	PreviousExpiresAt *string  `json:"previousExpiresAt"`
	Quota             *struct {
		Limit  int64  `json:"limit"`
		Period string `json:"period"`
		Used   *int64 `json:"used"`
	} `json:"quota"`
}

func lcList(t *testing.T, env map[string]string, id string) lcListed {
	t.Helper()
	var list []lcListed
	out := testenv.Command(t, env, "keys", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("keys list --json printed %q: %v", out, err)
	}
	for _, k := range list {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("key %s not listed: %s", id, out)
	return lcListed{}
}

// lcEventually polls gw until check holds for a GET (or, with write, a
// POST) with key, failing after within; it returns how long that took.
func lcEventually(t *testing.T, gwURL, method, key string, within time.Duration, what string, check func(reply) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if check(lcRequest(t, gwURL, method, "/api/v1/memory", key)) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s: not %s after %s", gwURL, what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lcStatus(code int) func(reply) bool {
	return func(r reply) bool { return r.status == code }
}

func lcPolicy(prefix string) func(reply) bool {
	return func(r reply) bool {
		return r.status == 200 && strings.HasPrefix(r.header.Get("RateLimit-Policy"), prefix)
	}
}

// TestKeyLifecycleAcrossGateways: `keys update` and `keys reroll` change a
// key in place, and both gateways apply the change within a second (their
// cache TTL is 30 s: only the invalidation explains it).
func TestKeyLifecycleAcrossGateways(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	up, env := signedStack(t, pg, rd)
	gws := []*testenv.Gateway{testenv.StartGateway(t, lifecycleCaddyfile, env), testenv.StartGateway(t, lifecycleCaddyfile, env)}
	for _, gw := range gws { // the subscription starts with the first request
		authCall(t, gw.URL, nil)
	}
	waitForKeySubscribers(t, 2, rd.URL())

	t.Run("an update of the tier reaches both gateways within 1 s", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env)
		for _, gw := range gws {
			lcEventually(t, gw.URL, "GET", k.Key, 0, "on the default policy", lcPolicy(`"default";q=1000;`))
		}
		out := testenv.Command(t, env, "keys", "update", k.ID, "--tier", "pro")
		if strings.TrimSpace(out) != "updated key "+k.ID {
			t.Errorf("keys update printed %q", out)
		}
		for _, gw := range gws {
			took := lcEventually(t, gw.URL, "GET", k.Key, time.Second, "on the pro tier", lcPolicy(`"pro";q=600;`))
			t.Logf("%s applied the tier after %s", gw.URL, took)
		}
		// A per-key rate override, then its removal.
		testenv.Command(t, env, "keys", "update", k.ID, "--rate", "120/m", "--burst", "20")
		for _, gw := range gws {
			lcEventually(t, gw.URL, "GET", k.Key, time.Second, "on the key's override", lcPolicy(`"key";q=120;`))
		}
		testenv.Command(t, env, "keys", "update", k.ID, "--rate", "none")
		for _, gw := range gws {
			lcEventually(t, gw.URL, "GET", k.Key, time.Second, "back on the pro tier", lcPolicy(`"pro";q=600;`))
		}
		if got := lcList(t, env, k.ID); got.Tier != "pro" || got.RateLimit != "" {
			t.Errorf("listed %+v", got)
		}
	})

	t.Run("an update of the permissions reaches both gateways within 1 s", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env)
		for _, gw := range gws {
			lcEventually(t, gw.URL, "POST", k.Key, 0, "writing", lcStatus(200))
		}
		testenv.Command(t, env, "keys", "update", k.ID, "--permissions", "memory:read")
		for _, gw := range gws {
			took := lcEventually(t, gw.URL, "POST", k.Key, time.Second, "refused on writes", lcStatus(403))
			t.Logf("%s applied the permissions after %s", gw.URL, took)
			e := wantAPIError(t, lcRequest(t, gw.URL, "POST", "/api/v1/memory", k.Key), 403)
			if e.Message != "API key lacks permission memory:write" {
				t.Errorf("message %q", e.Message)
			}
			lcEventually(t, gw.URL, "GET", k.Key, 0, "reading", lcStatus(200))
		}
		testenv.Command(t, env, "keys", "update", k.ID, "--permissions", "memory:read,memory:write")
		for _, gw := range gws {
			lcEventually(t, gw.URL, "POST", k.Key, time.Second, "writing again", lcStatus(200))
		}
	})

	t.Run("reroll with a grace period: both secrets work, then the old one is refused", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--rate", "10000/m", "--name", "agent")
		for _, gw := range gws {
			lcEventually(t, gw.URL, "GET", k.Key, 0, "admitted", lcStatus(200)) // cached under the old secret
		}
		before := time.Now()
		var rerolled testenv.CreatedKey
		out := testenv.Command(t, env, "keys", "reroll", k.ID, "--grace", "3s", "--json")
		if err := json.Unmarshal([]byte(out), &rerolled); err != nil {
			t.Fatalf("keys reroll --json printed %q: %v", out, err)
		}
		var fields map[string]any
		_ = json.Unmarshal([]byte(out), &fields)
		for _, f := range []string{"id", "key", "prefix", "organizationId", "userId", "enabled", "expiresAt", "previousExpiresAt"} {
			if _, ok := fields[f]; !ok {
				t.Errorf("reroll --json lacks %s: %s", f, out)
			}
		}
		if rerolled.ID != k.ID || rerolled.Key == k.Key || !apikey.WellFormed(rerolled.Key) || rerolled.RateLimit != "10000/m" ||
			rerolled.Name != "agent" || !strings.HasPrefix(rerolled.Key, rerolled.Prefix) {
			t.Fatalf("rerolled %+v from %+v", rerolled, k)
		}
		listed := lcList(t, env, k.ID)
		if listed.PreviousExpiresAt == nil {
			t.Fatal("keys list --json shows no previousExpiresAt during the grace period")
		}
		end, err := time.Parse(time.RFC3339, *listed.PreviousExpiresAt)
		if err != nil || end.Before(before.Add(2*time.Second)) || end.After(before.Add(4*time.Second)) {
			t.Fatalf("previousExpiresAt %v (%v), want about 3 s after %s", *listed.PreviousExpiresAt, err, before)
		}
		// Until the end (printed to the second, so at most 1 s early), both
		// secrets work on both gateways, the same id behind both.
		for time.Now().Before(end.Add(-200 * time.Millisecond)) {
			for _, gw := range gws {
				for _, key := range []string{k.Key, rerolled.Key} {
					if got := lcRequest(t, gw.URL, "GET", "/api/v1/memory", key).status; got != 200 {
						t.Fatalf("%s answered %d during the grace period", gw.URL, got)
					}
					if id := up.Last().Identity.KeyID; id != k.ID {
						t.Fatalf("upstream saw key id %s, want %s", id, k.ID)
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Past the end the old secret is refused on the next request:
		// every cached entry is checked against the clock.
		time.Sleep(time.Until(end.Add(time.Second + 50*time.Millisecond)))
		for _, gw := range gws {
			if e := wantAPIError(t, lcRequest(t, gw.URL, "GET", "/api/v1/memory", k.Key), 403); e.Message != "API key has expired." {
				t.Errorf("%s: old secret after the grace period: %q", gw.URL, e.Message)
			}
			deployExpectOK(t, lcRequest(t, gw.URL, "GET", "/api/v1/memory", rerolled.Key))
		}
		if got := lcList(t, env, k.ID); got.PreviousExpiresAt != nil {
			t.Errorf("previousExpiresAt %s still listed after the grace period", *got.PreviousExpiresAt)
		}
	})

	t.Run("reroll without a grace period: the old secret is refused within 1 s", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env)
		for _, gw := range gws {
			lcEventually(t, gw.URL, "GET", k.Key, 0, "admitted", lcStatus(200))
		}
		out := testenv.Command(t, env, "keys", "reroll", k.ID)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		fresh := lines[len(lines)-1]
		if !apikey.WellFormed(fresh) || !strings.Contains(out, "stopped working now") {
			t.Fatalf("keys reroll printed %q", out)
		}
		for _, gw := range gws {
			took := lcEventually(t, gw.URL, "GET", k.Key, time.Second, "refusing the old secret", lcStatus(403))
			t.Logf("%s refused the old secret after %s", gw.URL, took)
			deployExpectOK(t, lcRequest(t, gw.URL, "GET", "/api/v1/memory", fresh))
		}
		if got := lcList(t, env, k.ID); got.PreviousExpiresAt != nil {
			t.Errorf("previousExpiresAt %v without a grace period", *got.PreviousExpiresAt)
		}
	})

	t.Run("keys list shows permissions and quota use from Redis", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--permissions", "memory:read", "--quota", "10000/month")
		var created struct {
			Quota struct {
				Used *int64 `json:"used"`
			} `json:"quota"`
		}
		q := apikey.Quota{Limit: 10000, Period: apikey.PeriodMonth}
		client := redis.NewClient(&redis.Options{Addr: rd.Addr()})
		defer client.Close()
		if err := client.Set(context.Background(), quota.Key(k.ID, q, time.Now()), 42, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		got := lcList(t, env, k.ID)
		if len(got.Permissions) != 1 || got.Permissions[0] != "memory:read" || got.Quota == nil ||
			got.Quota.Limit != 10000 || got.Quota.Period != "month" || got.Quota.Used == nil || *got.Quota.Used != 42 {
			t.Fatalf("listed %+v (quota %+v)", got, got.Quota)
		}
		table := testenv.Command(t, env, "keys", "list")
		if !strings.Contains(table, "42 of 10000/month") {
			t.Errorf("the table does not show the quota use:\n%s", table)
		}
		// Without Redis the use is unknown to the command: null.
		noRedis := map[string]string{"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"]}
		if got := lcList(t, noRedis, k.ID); got.Quota == nil || got.Quota.Used != nil {
			t.Errorf("without Redis: quota %+v, want used null", got.Quota)
		}
		// A Redis that cannot be asked does not fail the listing.
		dead := map[string]string{"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"], "AZEN_REDIS_URL": "redis://127.0.0.1:1"}
		out, errOut, err := testenv.TryCommand(t, dead, "keys", "list", "--json")
		if err != nil || !strings.Contains(out, k.ID) || !strings.Contains(errOut, "quota use not shown") {
			t.Errorf("list with a dead Redis: %v\nstdout %s\nstderr %s", err, out, errOut)
		}
		// A quota set by update is shown with its use; none removes it.
		testenv.Command(t, env, "keys", "update", k.ID, "--quota", "500/day")
		if got := lcList(t, env, k.ID); got.Quota == nil || got.Quota.Period != "day" || got.Quota.Used == nil || *got.Quota.Used != 0 {
			t.Errorf("after --quota 500/day: %+v", got.Quota)
		}
		testenv.Command(t, env, "keys", "update", k.ID, "--quota", "none")
		if got := lcList(t, env, k.ID); got.Quota != nil {
			t.Errorf("after --quota none: %+v", got.Quota)
		}
		// create --json shows the quota of a new key as unused.
		out = testenv.Command(t, env, "keys", "create", "--org", testenv.NewUUID(), "--user", "u", "--quota", "5/day", "--json")
		if err := json.Unmarshal([]byte(out), &created); err != nil || created.Quota.Used == nil || *created.Quota.Used != 0 {
			t.Errorf("create --json printed %s", out)
		}
	})

	t.Run("update and reroll check every flag and change nothing on an error", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--tier", "pro", "--expires-in", "30d", "--quota", "100/day")
		before := lcList(t, env, k.ID)
		exp, err := time.Parse(time.RFC3339, *before.ExpiresAt)
		if err != nil || exp.Before(time.Now().Add(30*24*time.Hour-time.Minute)) || exp.After(time.Now().Add(30*24*time.Hour+time.Minute)) {
			t.Fatalf("create --expires-in 30d: expiresAt %v", *before.ExpiresAt)
		}
		missing := testenv.NewUUID()
		rows := []struct {
			rule string
			args []string
			want string
		}{
			{"update needs a change", []string{"update", k.ID}, "needs at least one change: --name, --tier"},
			{"update needs an id", []string{"update", "--tier", "pro"}, "exactly one key id"},
			{"update needs a UUID", []string{"update", "abc", "--tier", "pro"}, `"abc" is not a key id`},
			{"update of an unknown id", []string{"update", missing, "--tier", "pro"}, "no API key with id " + missing},
			{"--name on one line", []string{"update", k.ID, "--name", "a\nb"}, "--name must be"},
			{"--name at most 255", []string{"update", k.ID, "--name", strings.Repeat("n", 256)}, "--name must be"},
			{"--tier characters", []string{"update", k.ID, "--tier", "pro plan"}, `--tier "pro plan"`},
			{"--rate syntax", []string{"update", k.ID, "--rate", "fast"}, "--rate"},
			{"--burst needs --rate", []string{"update", k.ID, "--burst", "5"}, "--burst needs --rate"},
			{"--burst with --rate none", []string{"update", k.ID, "--rate", "none", "--burst", "5"}, "--burst needs --rate"},
			{"--burst at least 1", []string{"update", k.ID, "--rate", "5/s", "--burst", "0"}, "--burst must be at least 1"},
			{"--expires-in syntax", []string{"update", k.ID, "--expires-in", "soon"}, `--expires-in "soon" is not a duration`},
			{"--expires-in positive", []string{"update", k.ID, "--expires-in", "-1d"}, "--expires-in must be positive"},
			{"--expires-in zero", []string{"update", k.ID, "--expires-in", "0s"}, "--expires-in must be positive"},
			{"--permissions not empty", []string{"update", k.ID, "--permissions", ""}, "--permissions: needs at least one"},
			{"--permissions known", []string{"update", k.ID, "--permissions", "memory:read,memory:admin"}, `--permissions: unknown permission "memory:admin"`},
			{"--quota period", []string{"update", k.ID, "--quota", "10/week"}, "--quota: period must be"},
			{"--quota limit", []string{"update", k.ID, "--quota", "0/day"}, "--quota: limit must be"},
			{"--quota syntax", []string{"update", k.ID, "--quota", "lots"}, "--quota:"},
			{"the first bad flag is named", []string{"update", k.ID, "--tier", "gold", "--quota", "10/week"}, "--quota"},
			{"unknown flag", []string{"update", k.ID, "--colour", "red"}, "unknown flag: --colour"},
			{"--grace syntax", []string{"reroll", k.ID, "--grace", "soon"}, `--grace "soon" is not a duration`},
			{"--grace at most 24h", []string{"reroll", k.ID, "--grace", "25h"}, "--grace must be from 0 to 24h"},
			{"--grace not negative", []string{"reroll", k.ID, "--grace", "-1s"}, "--grace must be from 0 to 24h"},
			{"reroll of an unknown id", []string{"reroll", missing}, "no API key with id " + missing},
			{"reroll needs a UUID", []string{"reroll", "abc"}, `"abc" is not a key id`},
		}
		for _, row := range rows {
			t.Run(row.rule, func(t *testing.T) {
				out, errOut, err := testenv.TryCommand(t, env, append([]string{"keys"}, row.args...)...)
				if err == nil {
					t.Fatalf("exit 0; stdout %s", out)
				}
				if !strings.Contains(errOut, row.want) || strings.Contains(errOut, "panic") {
					t.Fatalf("stderr %q, want %q", errOut, row.want)
				}
				if lines := strings.Count(strings.TrimSpace(errOut), "\n"); lines > 0 && !strings.Contains(errOut, "Usage") {
					t.Errorf("error is %d lines: %s", lines+1, errOut)
				}
			})
		}
		t.Run("a malformed AZEN_REDIS_URL is refused before the change", func(t *testing.T) {
			bad := map[string]string{"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"], "AZEN_REDIS_URL": "notaurl"}
			for _, args := range [][]string{{"keys", "update", k.ID, "--tier", "gold"}, {"keys", "reroll", k.ID}} {
				if _, errOut, err := testenv.TryCommand(t, bad, args...); err == nil || !strings.Contains(errOut, "AZEN_REDIS_URL") {
					t.Errorf("%v: err %v, stderr %q", args, err, errOut)
				}
			}
		})
		after := lcList(t, env, k.ID)
		if b, a := mustJSON(t, before), mustJSON(t, after); b != a {
			t.Fatalf("a refused command changed the key:\nbefore %s\nafter  %s", b, a)
		}
		if lcRequest(t, gws[0].URL, "GET", "/api/v1/memory", k.Key).status != 200 {
			t.Fatal("a refused reroll changed the secret")
		}

		t.Run("every field changes in place, and the key keeps working", func(t *testing.T) {
			out := testenv.Command(t, env, "keys", "update", k.ID, "--name", "renamed", "--tier", "", "--rate", "5/s",
				"--burst", "7", "--expires-in", "never", "--permissions", "memory:read", "--quota", "none", "--json")
			var got lcListed
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("update --json printed %q: %v", out, err)
			}
			if got.ID != k.ID || got.Name != "renamed" || got.Tier != "" || got.RateLimit != "5/s burst 7" || got.ExpiresAt != nil ||
				len(got.Permissions) != 1 || got.Permissions[0] != "memory:read" || got.Quota != nil {
				t.Fatalf("update --json printed %s", out)
			}
			if strings.Contains(out, k.Key) {
				t.Fatal("update printed the secret")
			}
			testenv.Command(t, env, "keys", "update", k.ID, "--expires-in", "1d12h")
			got = lcList(t, env, k.ID)
			exp, err := time.Parse(time.RFC3339, *got.ExpiresAt)
			if err != nil || exp.Before(time.Now().Add(36*time.Hour-time.Minute)) || exp.After(time.Now().Add(36*time.Hour+time.Minute)) {
				t.Fatalf("--expires-in 1d12h: expiresAt %v", *got.ExpiresAt)
			}
			for _, gw := range gws {
				lcEventually(t, gw.URL, "GET", k.Key, time.Second, "on the key's new override", lcPolicy(`"key";q=5;`))
			}
		})
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRerollOnSQLiteWithoutRedis: without Redis a reroll reaches a gateway
// within its cache_ttl, and the grace period is honoured the same way.
func TestRerollOnSQLiteWithoutRedis(t *testing.T) {
	secret := testenv.GatewaySecret()
	up := startUpstream(t, verifying(secret))
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_GATEWAY_SECRET": secret,
		"UP":                  up.Addr,
	}
	gw := testenv.StartGateway(t, authCaddyfile, authEnv(env, "CACHE_TTL", "1s"))
	k := testenv.CreateKeyFull(t, env)
	expectAuth(t, gw.URL, k.Key, 200, "")
	var rerolled testenv.CreatedKey
	if err := json.Unmarshal([]byte(testenv.Command(t, env, "keys", "reroll", k.ID, "--grace", "1d", "--json")), &rerolled); err != nil {
		t.Fatal(err)
	}
	expectAuth(t, gw.URL, rerolled.Key, 200, "")
	time.Sleep(1100 * time.Millisecond) // past the cache TTL: the old entry is looked up again
	expectAuth(t, gw.URL, k.Key, 200, "")
	testenv.Command(t, env, "keys", "reroll", k.ID) // no grace: both earlier secrets end
	authEventually(t, gw.URL, k.Key, 403, 2*time.Second)
	authEventually(t, gw.URL, rerolled.Key, 403, 2*time.Second)
}
