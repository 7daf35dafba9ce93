package main

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ratespec"
)

// The floor is only a floor if it carries what the real gateway carries: the
// same header names, with values of the same length, as contract.Signer and
// limiter.SetHeaders write for the benchmark's key and policy.
func TestFloorCarriesTheContractsHeaders(t *testing.T) {
	// What the real code writes.
	signer, err := contract.NewSigner("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	signed := httptest.NewRequest(http.MethodGet, "/api/v1/memory", nil)
	signer.SignRequest(signed, contract.Identity{OrganizationID: uuid, UserID: "bench", KeyID: uuid, Credential: contract.CredentialKey},
		contract.EmptyBodySHA256, time.Unix(1796132585, 0))
	signed.Header.Set(contract.RequestIDHeader, contract.NewRequestID())
	realOut := http.Header{contract.RequestIDHeader: {contract.NewRequestID()}}
	p := limiter.NewPolicy("default", ratespec.Policy{Rate: ratespec.Rate{Count: 6000000, Period: time.Minute}, Burst: 100000})
	limiter.SetHeaders(realOut, p, limiter.Decision{Allowed: true, Remaining: 99999, ResetAfter: time.Millisecond})

	// What the floor writes.
	r := httptest.NewRequest(http.MethodGet, "/api/v1/memory", nil)
	r.Header.Set(contract.APIKeyHeader, "azen_x")
	w := httptest.NewRecorder()
	reached := false
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { reached = true; return nil })
	if err := (contractHeaders{}).ServeHTTP(w, r, next); err != nil || !reached {
		t.Fatalf("ServeHTTP: %v, next reached %v", err, reached)
	}

	sameShape(t, "request", signed.Header, r.Header)
	sameShape(t, "response", realOut, w.Header())
	if len(r.Header) != 8 || len(w.Header()) != 6 {
		t.Errorf("floor carries %d request and %d response headers, want 8 and 6", len(r.Header), len(w.Header()))
	}
}

func sameShape(t *testing.T, what string, want, got http.Header) {
	t.Helper()
	if w, g := slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)); !slices.Equal(w, g) {
		t.Fatalf("%s header names: floor %v, real %v", what, g, w)
	}
	for name, vs := range want {
		if len(got[name]) != 1 || len(got[name][0]) != len(vs[0]) {
			t.Errorf("%s %s: floor %q, real %q (not the same length)", what, name, got[name], vs)
		}
	}
}

func TestFloorHeaderSets(t *testing.T) {
	for set, want := range map[string][2]int{"request": {8, 1}, "compact": {2, 3}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		w := httptest.NewRecorder()
		next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
		if err := (contractHeaders{Set: set}).ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		if len(r.Header) != want[0] || len(w.Header()) != want[1] {
			t.Errorf("%s: %d request and %d response headers, want %v", set, len(r.Header), len(w.Header()), want)
		}
	}
}
