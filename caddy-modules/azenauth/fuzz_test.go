package azenauth

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzAPIKeyHeader feeds arbitrary azen-api-key values through the handler:
// it never panics, only the one real key passes, and every refusal is a
// contract status with a client-facing message.
func FuzzAPIKeyHeader(f *testing.F) {
	h, st := newTestHandler(f, func(h *Handler) { h.FailedAttempts = "1000000/s" })
	_, good := mustCreateTB(f, st)
	f.Add(good, "")
	f.Add(" "+good+"\t", "")
	f.Add(good, good)
	f.Add("", "")
	f.Add("   ", "")
	f.Add("azen_", "x")
	f.Add(good[:len(good)-1]+"Z", "")
	f.Add(strings.ToUpper(good), "")
	f.Add("azen_\x00\xff", "")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		hdr := keyHeader(v1)
		if v2 != "" {
			hdr = keyHeader(v1, v2)
		}
		s := serve(h, "192.0.2.1", hdr)
		if s.status == 0 {
			if strings.Trim(v1, " \t") != good || v2 != "" {
				t.Fatalf("passed with %q, %q", v1, v2)
			}
			return
		}
		switch s.status {
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusTooManyRequests:
		default:
			t.Fatalf("status %d for %q, %q: %v", s.status, v1, v2, s.err)
		}
		if s.message == "" {
			t.Fatalf("refusal without a client message: %v", s.err)
		}
		if len(v1) >= 8 && strings.Contains(s.message, v1) {
			t.Fatalf("message %q repeats the key", s.message)
		}
	})
}
