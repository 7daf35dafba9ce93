package azenauth

import (
	"strings"
	"testing"
	"time"
)

// TestDurationFlagsAcceptDays: every duration flag of the keys command
// reads Go units and d, as rates do (30d is 720h).
func TestDurationFlagsAcceptDays(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "1d12h": 36 * time.Hour, "720h": 720 * time.Hour, "90m": 90 * time.Minute,
		" 1h ": time.Hour, "0": 0, "0s": 0, "-1d": -24 * time.Hour, "1.5d": 36 * time.Hour,
	} {
		got, err := parseDurationFlag("expires-in", in)
		if err != nil || got != want {
			t.Errorf("parseDurationFlag(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "soon", "30", "1w", "d", "1dd"} {
		_, err := parseDurationFlag("grace", bad)
		if err == nil || !strings.HasPrefix(err.Error(), "--grace ") {
			t.Errorf("parseDurationFlag(%q): %v, want an error naming --grace", bad, err)
		}
	}
}

// TestTierFlagFollowsTheCaddyfileRule: the CLI takes exactly the tier names
// a Caddyfile's `tier` line can define (issue 9: `--tier _x` was accepted
// but could never match, `tier gold.v2` parsed but the CLI refused it).
func TestTierFlagFollowsTheCaddyfileRule(t *testing.T) {
	for tier, ok := range map[string]bool{"": true, "pro": true, "gold.v2": true, "a-b_c": true, "_x": false, ".x": false, "pro plan": false, strings.Repeat("x", 65): false} {
		if err := checkTierFlag(tier); (err == nil) != ok {
			t.Errorf("checkTierFlag(%q) = %v", tier, err)
		}
	}
}
