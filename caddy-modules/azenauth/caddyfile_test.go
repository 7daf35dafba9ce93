package azenauth

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{
			name: "the contract's block",
			input: `azen_auth {
				database        {env.AZEN_DATABASE_URL}
				redis           {env.AZEN_REDIS_URL}
				secret          {env.AZEN_GATEWAY_SECRET}
				cache_ttl       30s
				failed_attempts 20/m
			}`,
			want: Handler{Database: "{env.AZEN_DATABASE_URL}", Redis: "{env.AZEN_REDIS_URL}",
				Secret: "{env.AZEN_GATEWAY_SECRET}", CacheTTL: caddy.Duration(30 * time.Second), FailedAttempts: "20/m"},
		},
		{
			name:  "literal values and cache_size",
			input: "azen_auth {\n database postgres://u@db:5432/azen\n redis redis://r:6379/0\n cache_size 500\n cache_ttl 1m\n secret " + strings.Repeat("s", 32) + "\n}",
			want: Handler{Database: "postgres://u@db:5432/azen", Redis: "redis://r:6379/0", CacheSize: 500,
				CacheTTL: caddy.Duration(time.Minute), Secret: strings.Repeat("s", 32)},
		},
		{name: "empty block", input: "azen_auth {\n}", want: Handler{}},
		{name: "no block", input: "azen_auth", want: Handler{}},
		{name: "argument on the directive line", input: "azen_auth foo {\n}", wantErr: "takes no arguments"},
		{name: "unknown subdirective", input: "azen_auth {\n header X-Key\n}", wantErr: `unknown subdirective "header"`},
		{name: "duplicate subdirective", input: "azen_auth {\n cache_ttl 1s\n cache_ttl 2s\n}", wantErr: "cache_ttl given more than once"},
		{name: "missing value", input: "azen_auth {\n secret\n}", wantErr: "secret takes exactly one value"},
		{name: "two values", input: "azen_auth {\n cache_ttl 1s 2s\n}", wantErr: "cache_ttl takes exactly one value"},
		{name: "max_body and usage_flush", input: "azen_auth {\n max_body 512KiB\n usage_flush 2s\n}",
			want: Handler{MaxBody: 512 << 10, UsageFlush: caddy.Duration(2 * time.Second)}},
		{name: "bad max_body", input: "azen_auth {\n max_body lots\n}", wantErr: "max_body must be a size"},
		{name: "zero max_body", input: "azen_auth {\n max_body 0\n}", wantErr: "max_body must be a size"},
		{name: "max_body over 1GiB", input: "azen_auth {\n max_body 2GiB\n}", wantErr: "max_body must be a size from 1B to 1GiB"},
		{name: "usage_flush over 10s", input: "azen_auth {\n usage_flush 1m\n}", wantErr: "usage_flush must be a duration from 1ms to 10s"},
		{name: "bad duration", input: "azen_auth {\n cache_ttl soon\n}", wantErr: "not a duration"},
		{name: "zero duration", input: "azen_auth {\n cache_ttl 0s\n}", wantErr: "must be positive"},
		{name: "negative duration", input: "azen_auth {\n cache_ttl -5s\n}", wantErr: "must be positive"},
		{name: "bad cache_size", input: "azen_auth {\n cache_size many\n}", wantErr: "cache_size must be"},
		{name: "zero cache_size", input: "azen_auth {\n cache_size 0\n}", wantErr: "cache_size must be"},
		{name: "bad failed_attempts", input: "azen_auth {\n failed_attempts 20\n}", wantErr: "failed_attempts"},
		{name: "bad failed_attempts unit", input: "azen_auth {\n failed_attempts 20/fortnight\n}", wantErr: "failed_attempts"},
		{name: "bad database URL", input: "azen_auth {\n database mysql://u:hunter2@db/x\n}", wantErr: "database: must start with"},
		{name: "bad redis URL", input: "azen_auth {\n redis http://u:hunter2@r\n}", wantErr: "redis:"},
		{name: "short literal secret", input: "azen_auth {\n secret hunter2\n}", wantErr: "at least 32 bytes, got 7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.input))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if !strings.Contains(err.Error(), "Testfile:") {
					t.Errorf("error %q does not name file and line", err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q repeats a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Database != c.want.Database || h.Redis != c.want.Redis || h.Secret != c.want.Secret ||
				h.CacheTTL != c.want.CacheTTL || h.CacheSize != c.want.CacheSize || h.FailedAttempts != c.want.FailedAttempts ||
				h.MaxBody != c.want.MaxBody || h.UsageFlush != c.want.UsageFlush {
				t.Fatalf("got %+v, want %+v", h, c.want)
			}
		})
	}
}

func TestAdaptedJSONKeepsEnvPlaceholders(t *testing.T) {
	t.Setenv("AZEN_GATEWAY_SECRET", "super-secret-value-0123456789abcdef")
	input := `:8080 {
	azen_auth {
		database {env.AZEN_DATABASE_URL}
		secret   {env.AZEN_GATEWAY_SECRET}
	}
	basic_auth {
		bob $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
	}
}`
	adapter := caddyfile.Adapter{ServerType: httpcaddyfileServerType()}
	out, warnings, err := adapter.Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Logf("warnings: %v", warnings)
	}
	if strings.Contains(string(out), "super-secret-value") {
		t.Fatal("adapted JSON holds the secret")
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
	// azen_auth is ordered before basic_auth (authentication).
	var order []string
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			order = append(order, findHandlers(r.Handle)...)
		}
	}
	joined := strings.Join(order, ",")
	if !strings.Contains(joined, "azen_auth") || strings.Index(joined, "azen_auth") > strings.Index(joined, "authentication") {
		t.Fatalf("handler order %s", joined)
	}
	if !strings.Contains(string(out), `"secret":"{env.AZEN_GATEWAY_SECRET}"`) {
		t.Fatalf("placeholder not kept: %s", out)
	}
}

func findHandlers(hs []map[string]any) []string {
	var out []string
	for _, h := range hs {
		name, _ := h["handler"].(string)
		out = append(out, name)
		if routes, ok := h["routes"].([]any); ok {
			for _, r := range routes {
				if rm, ok := r.(map[string]any); ok {
					if sub, ok := rm["handle"].([]any); ok {
						var m []map[string]any
						for _, s := range sub {
							if sm, ok := s.(map[string]any); ok {
								m = append(m, sm)
							}
						}
						out = append(out, findHandlers(m)...)
					}
				}
			}
		}
	}
	return out
}

func httpcaddyfileServerType() caddyfile.ServerType { return httpcaddyfile.ServerType{} }
