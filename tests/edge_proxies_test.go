package tests

import (
	"fmt"
	"strings"
	"testing"
)

// TestForgedForwardedForDoesNotDodgeTheLimit: with the shipped Caddyfile's
// default (no trusted proxy), a client that names a new address in
// X-Forwarded-For on every attempt is still counted as itself and reaches
// the failed-attempt limit (20/m); with AZEN_TRUSTED_PROXIES naming the
// proxy it came through, the header names the client again.
func TestForgedForwardedForDoesNotDodgeTheLimit(t *testing.T) {
	s := startEdgeStack(t)
	unknown := "azen_" + strings.Repeat("x", 49)
	attempt := func(t *testing.T, base, forwarded string) int {
		t.Helper()
		return call(t, "GET", base+"/api/v1/memory", withKey(unknown), withHeader("X-Forwarded-For", forwarded)).status
	}

	t.Run("default: the peer is the client, whatever the header says", func(t *testing.T) {
		codes := map[int]int{}
		for i := 0; i < 30; i++ {
			codes[attempt(t, s.gateway.URL, fmt.Sprintf("198.51.100.%d", i))]++
		}
		if codes[429] == 0 || codes[403] > 20 {
			t.Fatalf("30 unknown keys with 30 forged addresses: %v, want at most 20 403s and then 429s", codes)
		}
	})
	t.Run("AZEN_TRUSTED_PROXIES names the proxy: the header is believed", func(t *testing.T) {
		gw := s.startGateway(t, "AZEN_TRUSTED_PROXIES", "127.0.0.1/32")
		for i := 0; i < 21; i++ {
			attempt(t, gw.URL, "198.51.100.7")
		}
		if got := attempt(t, gw.URL, "198.51.100.7"); got != 429 {
			t.Fatalf("the forwarded client past its limit got %d, want 429", got)
		}
		if got := attempt(t, gw.URL, "198.51.100.8"); got != 403 {
			t.Fatalf("another forwarded client got %d, want its own 403", got)
		}
	})
}
