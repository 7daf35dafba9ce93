package tests

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
)

// startGatewayFor starts one more gateway on caddyfile in front of sys's
// backends, with sys's database, Redis and secret.
func startGatewayFor(t *testing.T, sys *consoleSystem, caddyfile string) *testenv.Gateway {
	t.Helper()
	var addrs []string
	for _, b := range sys.backends {
		addrs = append(addrs, b.Addr)
	}
	env := map[string]string{"AZEN_BACKENDS": strings.Join(addrs, " ")}
	for k, v := range sys.env {
		if k != "AZEN_ENCRYPTION_KEYS" {
			env[k] = v
		}
	}
	g := testenv.StartGateway(t, caddyfile, env)
	waitConsoleReachable(t, g)
	return g
}

// storedRequests is what usage_daily holds for a credential (every day,
// group and outcome), read from the database itself.
func storedRequests(t *testing.T, db *sqldb.DB, credentialID string) int64 {
	t.Helper()
	var n int64
	if err := db.Get(&n, db.Rebind(`SELECT COALESCE(SUM(requests), 0) FROM usage_daily WHERE credential_id = ?`), credentialID); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestConsoleUsageWrittenOnReloadAndShutdown: with the default flush
// interval (10 s), the counts a gateway holds are written when it is
// reloaded and when it stops on SIGTERM (contract §9, issue 10 item 5).
//
// To show that the reload or the shutdown wrote them and not the timer,
// each phase first waits for a timer write (a marker request showing up
// in usage_daily), so the next one is about 10 s away; the requests, the
// check that they are still pending, the reload or stop and the check that
// they are written all follow at once.
func TestConsoleUsageWrittenOnReloadAndShutdown(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	dbURL := pg.CreateDatabase(t)
	sys := startConsoleSystem(t, 1, dbURL, rd.URL())
	console := sys.gws[0].URL // usage is read here
	shipped := shippedCaddyfile(t)
	if strings.Contains(shipped, "usage_flush") {
		t.Fatal("the shipped Caddyfile sets usage_flush; this test needs the default (10 s)")
	}
	gw := startGatewayFor(t, sys, shipped)
	db, err := sqldb.Open(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	ada := newPerson(t)
	ada.signUp(console, "Acme")
	markerID, marker := ada.createKey(console, `{"name":"marker"}`)

	// afterTimerWrite makes a marker request on gw and waits until gw's
	// timer has written it.
	markers := int64(0)
	afterTimerWrite := func() {
		t.Helper()
		if got := statusWithKey(t, "GET", gw.URL+"/api/v1/memory", marker, ""); got != 200 {
			t.Fatalf("marker request: %d", got)
		}
		markers++
		deadline := time.Now().Add(30 * time.Second)
		for storedRequests(t, db, markerID) < markers {
			if time.Now().After(deadline) {
				t.Fatal("the gateway's timer never wrote the marker request")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	const n = 7
	makeRequests := func(secret string) {
		t.Helper()
		for i := range n {
			if got := statusWithKey(t, "POST", gw.URL+"/api/v1/memory", secret, fmt.Sprintf(`{"text":"note %d"}`, i)); got != 201 {
				t.Fatalf("request %d: %d", i, got)
			}
		}
	}
	usageTotal := func(keyID string) int64 {
		return ada.must(200, "GET", console+"/console/api/usage?days=1&keyId="+keyID, "").usage().Summary.Total
	}
	// pending makes n requests with a new key once the timer has just
	// written, so that they are still pending when the event comes.
	pending := func(name, event string) (id, secret string) {
		t.Helper()
		id, secret = ada.createKey(console, `{"name":"`+name+`"}`)
		afterTimerWrite()
		makeRequests(secret)
		if got := storedRequests(t, db, id); got != 0 {
			t.Fatalf("%d requests written before the %s (the timer raced the test)", got, event)
		}
		return id, secret
	}
	// written checks that the n requests of key id are stored and shown.
	written := func(id, once string) {
		t.Helper()
		if got := storedRequests(t, db, id); got != n {
			t.Fatalf("%d requests written once %s, want %d", got, once, n)
		}
		if got := usageTotal(id); got != int64(n) {
			t.Fatalf("the usage API shows %v requests, want %d", got, n)
		}
	}

	t.Run("a reload writes the pending counts", func(t *testing.T) {
		id, secret := pending("reloaded", "reload")
		// An operator's change that leaves azen_auth's settings alone, so
		// the gateway keeps its caches and counters across the reload.
		changed := strings.Replace(shipped, "\t\t\trate 60/m\n", "\t\t\trate 61/m\n", 1)
		if changed == shipped {
			t.Fatal("the shipped Caddyfile has no `rate 60/m` line")
		}
		if out, err := gw.Reload(changed); err != nil {
			t.Fatalf("reload: %v\n%s", err, out)
		}
		written(id, "the reload returned")
		if got := statusWithKey(t, "GET", gw.URL+"/api/v1/memory", secret, ""); got != 200 {
			t.Fatalf("the gateway after the reload: %d", got)
		}
	})

	t.Run("SIGTERM writes the pending counts", func(t *testing.T) {
		id, _ := pending("stopped", "stop")
		gw.Signal(syscall.SIGTERM)
		if err := gw.Wait(30 * time.Second); err != nil {
			t.Fatalf("the gateway after SIGTERM: %v", err)
		}
		written(id, "the gateway stopped")
	})
}

// TestConsoleUsageCountsRateLimited: a request that azen_ratelimit refuses
// with 429 is counted as rate_limited in the usage API (contract §9).
func TestConsoleUsageCountsRateLimited(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	sys := startConsoleSystem(t, 1, pg.CreateDatabase(t), rd.URL())
	console := sys.gws[0].URL
	small := strings.Replace(consoleCaddyfile(t), "\t\t\trate 60/m\n\t\t\tburst 60\n", "\t\t\trate 3/m\n\t\t\tburst 3\n", 1)
	if !strings.Contains(small, "rate 3/m") {
		t.Fatal("the shipped Caddyfile has no `rate 60/m` and `burst 60` lines")
	}
	limited := startGatewayFor(t, sys, small)

	ada := newPerson(t)
	ada.signUp(console, "Acme")
	id, secret := ada.createKey(console, `{"name":"eager"}`)
	statuses := map[int]int{}
	for range 5 {
		r := newPerson(t).do("GET", limited.URL+"/api/v1/memory", "", "azen-api-key", secret)
		statuses[r.status]++
		if r.status == 429 {
			wantError(t, r, 429, "")
			if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Policy") == "" {
				t.Fatalf("a 429 without the limiter's headers: %v", r.header)
			}
		}
	}
	if statuses[200] != 3 || statuses[429] != 2 {
		t.Fatalf("statuses %v, want 3×200 and 2×429", statuses)
	}
	waitFor(t, "the rate-limited requests in usage", func() bool {
		s := ada.must(200, "GET", console+"/console/api/usage?days=1&keyId="+id, "").usage().Summary
		return s.Total == 5 && s.RateLimited == 2 && s.Success == 3 && s.Error == 0
	})
	series := ada.must(200, "GET", console+"/console/api/usage?days=1&keyId="+id, "").usage().Series
	if got := series["rate_limited"]; len(got) != 1 || got[0] != 2 {
		t.Fatalf("today's rate_limited series %v, want [2]", got)
	}
}
