package azenauth

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/testenv"
	"github.com/azen-sh/gateway/internal/token"
)

// TestGaugesShowCacheSizeAndBlockedAddresses: the caches' entries (found
// and unknown, keys and sessions) and the addresses the failed-attempt
// limiter refuses now are gauges on the config's registry.
func TestGaugesShowCacheSizeAndBlockedAddresses(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "2/h" })
	reg := prometheus.NewRegistry()
	if _, err := newAuthMetrics(reg, h.rt.counters); err != nil {
		t.Fatal(err)
	}
	_, plain := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	if s := serve(h, "203.0.113.1", keyHeader(plain)); s.status != 0 {
		t.Fatal(s.err)
	}
	// Two unknown keys from each of two addresses: both exhaust 2/h.
	for _, ip := range []string{"198.51.100.7", "2001:db8::1"} {
		for range 2 {
			unknown, err := token.New(apikey.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			if s := serve(h, ip, keyHeader(unknown)); s.status != 403 {
				t.Fatalf("unknown key: %d %v", s.status, s.err)
			}
		}
	}
	_, neg := h.rt.keys.Len()
	if neg < 1 {
		t.Fatalf("no negative entry cached (%d)", neg)
	}
	want := map[string]float64{
		"azen_auth_blocked_addresses":                                2,
		`azen_auth_cache_entries{cache="keys",entry="positive"}`:     1,
		`azen_auth_cache_entries{cache="keys",entry="negative"}`:     float64(neg),
		`azen_auth_cache_entries{cache="sessions",entry="positive"}`: 0,
		`azen_auth_cache_entries{cache="sessions",entry="negative"}`: 0,
	}
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			if len(m.GetLabel()) > 0 {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(labels, ",") + "}"
			}
			got[name] = m.GetGauge().GetValue()
		}
	}
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	if n := h.rt.failures.BlockedCount(time.Now().Add(2 * time.Hour)); n != 0 {
		t.Errorf("%d addresses still blocked once their count has drained", n)
	}
}

// TestCheckStore: what azen_ready reads, on a real SQLite store, then on
// a PostgreSQL server that stops.
func TestCheckStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, _ := newTestHandler(t, nil)
	if err := h.CheckStore(ctx); err != nil {
		t.Fatalf("SQLite: %v", err)
	}
	pg := testenv.StartPostgres(t)
	url := pg.CreateDatabase(t)
	h2, _ := newTestHandler(t, func(h *Handler) { h.Database = url })
	if err := h2.CheckStore(ctx); err != nil {
		t.Fatalf("PostgreSQL up: %v", err)
	}
	pg.Stop()
	if err := h2.CheckStore(ctx); err == nil {
		t.Fatal("PostgreSQL stopped, yet the store answers")
	}
}
