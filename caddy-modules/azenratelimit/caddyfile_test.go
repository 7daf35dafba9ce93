package azenratelimit

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/azen-sh/gateway/internal/ratespec"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{name: "no block takes every default", input: `azen_ratelimit`, want: Handler{}},
		{name: "contract example", input: `azen_ratelimit {
			redis           {env.AZEN_REDIS_URL}
			key             {azen.key_id}
			rate            60/m
			burst           60
			tier pro        600/m burst 100
			cost            1
			timeout         50ms
			on_redis_error  local
		}`, want: Handler{
			Redis: "{env.AZEN_REDIS_URL}", Key: "{azen.key_id}", Rate: "60/m", Burst: 60,
			Tiers: map[string]string{"pro": "600/m burst 100"}, Cost: 1,
			Timeout: caddy.Duration(50 * time.Millisecond), OnRedisError: "local",
		}},
		{name: "several tiers, burst optional", input: `azen_ratelimit {
			tier free 10/m
			tier pro 600/m burst 100
			key {client_ip}
		}`, want: Handler{Key: "{client_ip}", Tiers: map[string]string{"free": "10/m", "pro": "600/m burst 100"}}},
		{name: "on_redis_error deny", input: "azen_ratelimit {\n on_redis_error deny\n}", want: Handler{OnRedisError: "deny"}},
		{name: "min_gateways", input: "azen_ratelimit {\n min_gateways 3\n}", want: Handler{MinGateways: 3}},
		{name: "min_gateways zero", input: "azen_ratelimit {\n min_gateways 0\n}", wantErr: `min_gateways must be a whole number of at least 1`},
		{name: "min_gateways too many", input: "azen_ratelimit {\n min_gateways 10001\n}", wantErr: `min_gateways must be between 1 and 10000`},
		{name: "unknown subdirective", input: "azen_ratelimit {\n limit 5\n}", wantErr: `unknown subdirective "limit"`},
		{name: "duplicate subdirective", input: "azen_ratelimit {\n rate 5/m\n rate 6/m\n}", wantErr: `duplicate subdirective "rate"`},
		{name: "duplicate tier", input: "azen_ratelimit {\n tier pro 5/m\n tier pro 6/m\n}", wantErr: `duplicate tier "pro"`},
		{name: "bad rate unit", input: "azen_ratelimit {\n rate 60/x\n}", wantErr: `rate "60/x": unit must be`},
		{name: "rate without unit", input: "azen_ratelimit {\n rate 60\n}", wantErr: `want COUNT/UNIT`},
		{name: "burst zero", input: "azen_ratelimit {\n burst 0\n}", wantErr: `burst must be a whole number of at least 1`},
		{name: "burst negative", input: "azen_ratelimit {\n burst -3\n}", wantErr: `burst must be a whole number of at least 1`},
		{name: "burst not a number", input: "azen_ratelimit {\n burst lots\n}", wantErr: `burst must be a whole number`},
		{name: "cost zero", input: "azen_ratelimit {\n cost 0\n}", wantErr: `cost must be a whole number of at least 1`},
		{name: "cost above burst", input: "azen_ratelimit {\n rate 10/m\n burst 5\n cost 6\n}", wantErr: `cost 6 is above the burst 5`},
		{name: "cost above default burst", input: "azen_ratelimit {\n cost 61\n}", wantErr: `cost 61 is above the burst 60`},
		{name: "cost above a tier's burst", input: "azen_ratelimit {\n cost 5\n tier free 10/m burst 2\n}", wantErr: `cost 5 is above tier free's burst 2`},
		{name: "bad timeout", input: "azen_ratelimit {\n timeout soon\n}", wantErr: `timeout must be a positive duration`},
		{name: "zero timeout", input: "azen_ratelimit {\n timeout 0s\n}", wantErr: `timeout must be a positive duration`},
		{name: "bad on_redis_error", input: "azen_ratelimit {\n on_redis_error panic\n}", wantErr: `on_redis_error must be local, allow or deny`},
		{name: "missing value", input: "azen_ratelimit {\n redis\n}", wantErr: `redis takes exactly one value`},
		{name: "extra value", input: "azen_ratelimit {\n key a b\n}", wantErr: `key takes exactly one value`},
		{name: "tier without rate", input: "azen_ratelimit {\n tier pro\n}", wantErr: `tier wants: tier NAME RATE [burst N]`},
		{name: "tier bad burst word", input: "azen_ratelimit {\n tier pro 5/m bust 3\n}", wantErr: `tier pro: policy`},
		{name: "tier burst zero", input: "azen_ratelimit {\n tier pro 5/m burst 0\n}", wantErr: `tier pro: burst must be`},
		{name: "tier bad name", input: "azen_ratelimit {\n tier \"p r o\" 5/m\n}", wantErr: `tier name "p r o"`},
		{name: "rate too fine to apply", input: "azen_ratelimit {\n rate 2000000/s\n}", wantErr: `too high`},
		{name: "burst too big to refill", input: "azen_ratelimit {\n rate 1/d\n burst 1000\n}", wantErr: `more than a year`},
		{name: "argument on the directive line", input: "azen_ratelimit 60/m", wantErr: `takes no arguments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Redis != tt.want.Redis || h.Key != tt.want.Key || h.Rate != tt.want.Rate ||
				h.Burst != tt.want.Burst || h.Cost != tt.want.Cost || h.Timeout != tt.want.Timeout ||
				h.OnRedisError != tt.want.OnRedisError || h.MinGateways != tt.want.MinGateways || len(h.Tiers) != len(tt.want.Tiers) {
				t.Fatalf("got %+v, want %+v", h, tt.want)
			}
			for k, v := range tt.want.Tiers {
				if h.Tiers[k] != v {
					t.Errorf("tier %s = %q, want %q", k, h.Tiers[k], v)
				}
			}
		})
	}
}

// TestTierNamesFollowTheSharedRule: a tier line accepts exactly the names
// ratespec.ValidTierName accepts, the rule the keys CLI applies to --tier,
// so every tier a key can carry is one a Caddyfile can define.
func TestTierNamesFollowTheSharedRule(t *testing.T) {
	for _, name := range []string{"pro", "gold.v2", "team_a-1", "2024", "_x", "-x", ".x", "a/b", "grün", strings.Repeat("t", 64), strings.Repeat("t", 65)} {
		t.Run(name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("azen_ratelimit {\n tier " + name + " 5/m\n}"))
			if want := ratespec.ValidTierName(name); (err == nil) != want {
				t.Fatalf("tier %q: parse error %v, but ratespec.ValidTierName says %v", name, err, want)
			}
			if err != nil && !strings.Contains(err.Error(), ratespec.TierNameRule) {
				t.Errorf("error %q does not state the rule", err)
			}
			h = Handler{Tiers: map[string]string{name: "5/m"}}
			if err := h.applyDefaults(); (err == nil) != ratespec.ValidTierName(name) {
				t.Errorf("tier %q in JSON config: provision error %v", name, err)
			}
		})
	}
}

func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"azen_ratelimit {\n rate 60/m\n burst 5\n cost 2\n}",
		"azen_ratelimit {\n tier pro 600/m burst 100\n timeout 50ms\n}",
		"azen_ratelimit {\n rate 60/x\n}",
		"azen_ratelimit {\n on_redis_error deny\n key {client_ip}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			return
		}
		// Whatever parses must provision into consistent policies.
		if err := h.applyDefaults(); err != nil {
			t.Fatalf("parsed %q but the policies do not build: %v", input, err)
		}
		if h.Cost > h.defaultPolicy.Burst {
			t.Fatalf("parsed %q with cost above burst", input)
		}
	})
}
