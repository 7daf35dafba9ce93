package tests

import (
	"testing"
	"time"
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

// authCall sends GET /api/v1/memory to gw with the key (none when key is
// nil) and extra headers in pairs.
func authCall(t *testing.T, gwURL string, key *string, headers ...string) reply {
	t.Helper()
	opts := []callOption{withHeaders(headers...)}
	if key != nil {
		opts = append(opts, withKey(*key))
	}
	return call(t, "GET", gwURL+"/api/v1/memory", opts...)
}

// expectAuth calls gw with key and checks the status and, for errors, the
// contract body and message.
func expectAuth(t *testing.T, gwURL, key string, code int, message string, headers ...string) {
	t.Helper()
	r := authCall(t, gwURL, &key, headers...)
	if code == 200 {
		if r.status != 200 {
			t.Fatalf("status %d, want 200", r.status)
		}
		return
	}
	e := wantAPIError(t, r, code)
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
		got := authCall(t, gwURL, &key).status
		if got == code {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s still answers %d after %s, want %d", gwURL, got, within, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
