package azenratelimit

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/azen-sh/gateway/internal/contract"
)

// The handler reads the key's quota from {azen.quota} (azen_auth's
// placeholder), counts it beside the rate limit, and refuses past it with
// the contract's message and the second draft-10 policy.
func TestQuotaFromThePlaceholder(t *testing.T) {
	h := provision(t, &Handler{Rate: "1000/m"})
	vars := map[string]any{"azen.key_id": "kq", "azen.quota": "3/day"}
	for i := 0; i < 3; i++ {
		w, err := request(h, vars)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if got, want := w.Header().Get("RateLimit"), `"quota";r=`+string(rune('2'-i))+`;t=`; !strings.Contains(got, want) {
			t.Errorf("request %d: RateLimit %q, want %q", i+1, got, want)
		}
	}
	w, err := request(h, vars)
	if statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("4th request: %v, want 429", err)
	}
	msg, _ := contract.PublicMessage(err)
	if !regexp.MustCompile(`^Quota exceeded: 3 requests per day\. Resets in (\d+ h( \d+ min)?|\d+ min|\d+ s)\.$`).MatchString(msg) {
		t.Errorf("message %q", msg)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != `"default";q=1000;w=60, "quota";q=3;w=86400` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if !regexp.MustCompile(`^"default";r=\d+;t=\d+, "quota";r=0;t=\d+$`).MatchString(w.Header().Get("RateLimit")) {
		t.Errorf("RateLimit %q", w.Header().Get("RateLimit"))
	}
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" || ra == w.Header().Get("X-RateLimit-Reset") {
		t.Errorf("Retry-After %q (until the day ends, not the bucket's reset)", ra)
	}
	if w.Header().Get("X-RateLimit-Limit") != "1000" {
		t.Errorf("X-RateLimit-Limit %q: the legacy fields are the rate limit's", w.Header().Get("X-RateLimit-Limit"))
	}
	// Another key, or the same key without a quota, is not refused.
	if _, err := request(h, map[string]any{"azen.key_id": "other", "azen.quota": "3/day"}); err != nil {
		t.Errorf("another key: %v", err)
	}
	if w, err := request(h, map[string]any{"azen.key_id": "kq", "azen.quota": ""}); err != nil || strings.Contains(w.Header().Get("RateLimit-Policy"), "quota") {
		t.Errorf("no quota: %v %v", err, w.Header())
	}
}

func TestQuotaIsIgnoredWhenItCannotBeCounted(t *testing.T) {
	tests := []struct {
		name string
		h    *Handler
		vars map[string]any
	}{
		{"malformed quota", &Handler{Rate: "1000/m"}, map[string]any{"azen.key_id": "k", "azen.quota": "lots"}},
		{"a bucket not named after the key id", &Handler{Rate: "1000/m", Key: "{azen.org_id}"},
			map[string]any{"azen.key_id": "k", "azen.org_id": "o", "azen.quota": "1/day"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := provision(t, tt.h)
			for i := 0; i < 3; i++ {
				w, err := request(h, tt.vars)
				if err != nil || strings.Contains(w.Header().Get("RateLimit-Policy"), "quota") {
					t.Fatalf("request %d: %v %v", i+1, err, w.Header())
				}
			}
		})
	}
}

// A key's malformed stored setting is warned about once a minute, not on
// each of its requests.
func TestMalformedKeySettingsAreWarnedOnceAMinute(t *testing.T) {
	h := provision(t, &Handler{Rate: "1000/m"})
	core, logs := observer.New(zapcore.WarnLevel)
	h.keyWarnings = sampledWarnings(zap.New(core))
	for i := 0; i < 50; i++ {
		vars := map[string]any{"azen.key_id": "k" + strconv.Itoa(i%3), "azen.rate_limit": "fast", "azen.quota": "lots"}
		if _, err := request(h, vars); err != nil {
			t.Fatalf("request %d: %v (a malformed setting is ignored, not a refusal)", i+1, err)
		}
	}
	for _, msg := range []string{"ignoring a key's malformed rate_limit override", "ignoring a key's malformed quota"} {
		if n := logs.FilterMessage(msg).Len(); n != 1 {
			t.Errorf("%q logged %d times for 50 requests, want 1", msg, n)
		}
	}
}
