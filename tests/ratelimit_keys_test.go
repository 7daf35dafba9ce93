package tests

import (
	"path/filepath"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// keyedCaddyfile runs azen_auth then azen_ratelimit with its default key
// ({azen.key_id}), a tier, and a costly route.
const keyedLimits = `		azen_auth {
			database {env.AZEN_DATABASE_URL}
			redis    {env.AZEN_REDIS_URL}
			secret   {env.AZEN_GATEWAY_SECRET}
		}
		@costly path /api/v1/memory/search
		azen_ratelimit @costly {
			redis {env.AZEN_REDIS_URL}
			rate  4/h
			tier pro 5/h burst 3
			cost  2
		}
		@cheap not path /api/v1/memory/search
		azen_ratelimit @cheap {
			redis {env.AZEN_REDIS_URL}
			rate  4/h
			tier pro 5/h burst 3
		}`

func keyGet(t *testing.T, base, path, key string) reply {
	t.Helper()
	return call(t, "GET", base+path, via(rlClient), withKey(key))
}

// Through real keys created with the CLI: the default policy, a tier, a
// per-key override (with and without burst) and a route cost, each in its
// own bucket and named in RateLimit-Policy.
func TestRateLimitTiersOverridesAndCostWithRealKeys(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_REDIS_URL":      rs.URL(),
		"AZEN_GATEWAY_SECRET": testenv.GatewaySecret(),
		"UP":                  startUpstream(t).Addr,
	}
	// Migrations run at gateway start; create keys afterwards.
	gws := startGateways(t, 2, rlCaddyfile(keyedLimits), env)
	_, plain := testenv.CreateKey(t, env)
	_, pro := testenv.CreateKey(t, env, "--tier", "pro")
	_, unknownTier := testenv.CreateKey(t, env, "--tier", "gold")
	_, override := testenv.CreateKey(t, env, "--tier", "pro", "--rate", "2/h", "--burst", "2")
	_, overrideNoBurst := testenv.CreateKey(t, env, "--rate", "6/h")

	tests := []struct {
		name      string
		key       string
		admitted  int
		policy    string
		limit     string
		remaining string // after the first request
	}{
		{"default policy 4/h burst 4", plain, 4, `"default";q=4;w=3600`, "4", "3"},
		{"tier pro 5/h burst 3", pro, 3, `"pro";q=5;w=3600`, "5", "2"},
		{"unknown tier takes the default", unknownTier, 4, `"default";q=4;w=3600`, "4", "3"},
		{"override beats the tier", override, 2, `"key";q=2;w=3600`, "2", "1"},
		{"override without burst: burst = count", overrideNoBurst, 6, `"key";q=6;w=3600`, "6", "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < tt.admitted+2; i++ {
				resp := keyGet(t, gws[i%2].URL, "/api/v1/memory", tt.key)
				want := 200
				if i >= tt.admitted {
					want = 429
				}
				if resp.status != want {
					t.Fatalf("request %d: %d, want %d", i+1, resp.status, want)
				}
				if got := resp.header.Get("RateLimit-Policy"); got != tt.policy {
					t.Errorf("RateLimit-Policy %q, want %q", got, tt.policy)
				}
				if got := resp.header.Get("X-RateLimit-Limit"); got != tt.limit {
					t.Errorf("X-RateLimit-Limit %q, want %q", got, tt.limit)
				}
				if i == 0 && resp.header.Get("X-RateLimit-Remaining") != tt.remaining {
					t.Errorf("first X-RateLimit-Remaining %q, want %q", resp.header.Get("X-RateLimit-Remaining"), tt.remaining)
				}
			}
		})
	}

	t.Run("cost 2 spends two units of the same bucket", func(t *testing.T) {
		_, key := testenv.CreateKey(t, env)
		// Burst 4: a search (2) + a search (2) empties it.
		for i, want := range []int{200, 200, 429} {
			resp := keyGet(t, gws[i%2].URL, "/api/v1/memory/search", key)
			if resp.status != want {
				t.Fatalf("search %d: %d, want %d", i+1, resp.status, want)
			}
		}
		if resp := keyGet(t, gws[0].URL, "/api/v1/memory", key); resp.status != 429 {
			t.Fatalf("a cost-1 request after the bucket was emptied by searches: %d, want 429", resp.status)
		}
		_, key2 := testenv.CreateKey(t, env)
		for i, want := range []int{200, 200, 200, 429} { // 1 + 2 + 1 = 4, then empty
			path := "/api/v1/memory"
			if i == 1 {
				path = "/api/v1/memory/search"
			}
			if resp := keyGet(t, gws[0].URL, path, key2); resp.status != want {
				t.Fatalf("mixed request %d (%s): %d, want %d", i+1, path, resp.status, want)
			}
		}
	})
}
