package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
)

// TestConsoleAcrossTwoGateways runs the console's promises (contract §9,
// §10) on two real gateways in front of two real backends, with real
// PostgreSQL and Redis.
func TestConsoleAcrossTwoGateways(t *testing.T) {
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	dbURL := pg.CreateDatabase(t)
	sys := startConsoleSystem(t, 2, dbURL, rd.URL())
	gw1, gw2 := sys.gws[0].URL, sys.gws[1].URL
	waitForKeySubscribers(t, 2, rd.URL())

	ada := newPerson(t)
	adaID, orgID := ada.signUp(gw1, "Acme")

	t.Run("sign-in: wrong email and wrong password are the same 401", func(t *testing.T) {
		p := newPerson(t)
		wantError(t, p.do("POST", gw2+"/auth/sign-in", fmt.Sprintf(`{"email":%q,"password":"not the password"}`, ada.email)), 401, "Invalid email or password")
		wantError(t, p.do("POST", gw2+"/auth/sign-in", `{"email":"nobody@example.com","password":"a long password"}`), 401, "Invalid email or password")
		r := p.must(200, "POST", gw2+"/auth/sign-in", fmt.Sprintf(`{"email":%q,"password":"a long password"}`, strings.ToUpper(ada.email)))
		if r.session().activeOrganization() != orgID || !strings.Contains(r.header.Get("Set-Cookie"), "HttpOnly") ||
			!strings.Contains(r.header.Get("Set-Cookie"), "SameSite=Lax") || !strings.Contains(r.header.Get("Set-Cookie"), "Path=/") {
			t.Fatalf("sign-in answer %s, cookie %q", r.raw, r.header.Get("Set-Cookie"))
		}
	})

	t.Run("key deletion reaches both gateways within 1 s", func(t *testing.T) {
		id, secret := ada.createKey(gw1, `{"name":"doomed"}`)
		for _, gw := range []string{gw1, gw2} { // warm both caches
			if got := statusWithKey(t, "GET", gw+"/api/v1/memory", secret, ""); got != 200 {
				t.Fatalf("new key on %s: %d", gw, got)
			}
		}
		ada.must(200, "DELETE", gw1+"/console/api/keys/"+id, "")
		var wg sync.WaitGroup
		for _, gw := range []string{gw1, gw2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := within(t, "deleted key on "+gw, time.Second, 403, func() int { return statusWithKey(t, "GET", gw+"/api/v1/memory", secret, "") })
				t.Logf("deleted key refused on %s after %s", gw, d)
			}()
		}
		wg.Wait()
	})

	t.Run("reroll without grace: the old secret stops on both gateways within 1 s", func(t *testing.T) {
		id, old := ada.createKey(gw1, `{"name":"rolled"}`)
		for _, gw := range []string{gw1, gw2} {
			statusWithKey(t, "GET", gw+"/api/v1/memory", old, "")
		}
		r := ada.must(200, "POST", gw2+"/console/api/keys/"+id+"/reroll", `{"gracePeriod":0}`)
		fresh := r.key().Key
		for _, gw := range []string{gw1, gw2} {
			within(t, "old secret on "+gw, time.Second, 403, func() int { return statusWithKey(t, "GET", gw+"/api/v1/memory", old, "") })
			if got := statusWithKey(t, "GET", gw+"/api/v1/memory", fresh, ""); got != 200 {
				t.Fatalf("new secret on %s: %d", gw, got)
			}
		}
	})

	t.Run("usage from two gateways adds up", func(t *testing.T) {
		id, secret := ada.createKey(gw1, `{"name":"metered"}`)
		missing := testenv.NewUUID()
		for i := range 7 {
			gw := []string{gw1, gw2}[i%2]
			statusWithKey(t, "POST", gw+"/api/v1/memory", secret, `{"text":"tea number `+fmt.Sprint(i)+`"}`)
		}
		for i := range 3 {
			gw := []string{gw1, gw2}[i%2]
			statusWithKey(t, "GET", gw+"/api/v1/memory/"+missing, secret, "")
		}
		waitFor(t, "usage of both gateways", func() bool {
			s := ada.must(200, "GET", gw2+"/console/api/usage?days=1&keyId="+id, "").usage().Summary
			return s.Total == 10 && s.MemoryCreate == 7 && s.Error == 3 && s.Success == 7
		})
		u := ada.must(200, "GET", gw1+"/console/api/usage?keyId="+id, "").usage()
		if labels := u.Labels; len(labels) != 30 || labels[29] != time.Now().UTC().Format(time.DateOnly) {
			t.Fatalf("labels %v", labels)
		}
		if series := u.Series["total"]; series[29] != 10 {
			t.Fatalf("today's total %v", series[29])
		}
	})

	t.Run("sign-out reaches both gateways within 1 s", func(t *testing.T) {
		p := newPerson(t)
		p.must(200, "POST", gw2+"/auth/sign-in", fmt.Sprintf(`{"email":%q,"password":"a long password"}`, ada.email))
		cookie := p.cookie(gw2)
		for _, gw := range []string{gw1, gw2} {
			if got := statusWithCookie(t, "GET", gw+"/auth/session", cookie); got != 200 {
				t.Fatalf("session on %s: %d", gw, got)
			}
		}
		r := p.must(200, "POST", gw1+"/auth/sign-out", "")
		if string(r.raw) != "{\"status\":\"success\"}\n" || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
			t.Fatalf("sign-out answer %q, cookie %q", r.raw, r.header.Get("Set-Cookie"))
		}
		for _, gw := range []string{gw1, gw2} {
			within(t, "signed-out session on "+gw, time.Second, 401, func() int { return statusWithCookie(t, "GET", gw+"/auth/session", cookie) })
		}
	})

	t.Run("choosing an organization applies on both gateways at once", func(t *testing.T) {
		second := ada.must(201, "POST", gw1+"/console/api/organizations", `{"name":"Second"}`).organizationID()
		ada.must(200, "POST", gw1+"/console/api/organizations/active", fmt.Sprintf(`{"organizationId":%q}`, second))
		for _, gw := range []string{gw1, gw2} {
			if got := ada.must(200, "GET", gw+"/auth/session", "").session().activeOrganization(); got != second {
				t.Fatalf("active organization on %s: %v", gw, got)
			}
		}
		ada.must(200, "POST", gw2+"/console/api/organizations/active", fmt.Sprintf(`{"organizationId":%q}`, orgID))
	})

	t.Run("a forged cross-origin POST is 403 at the edge", func(t *testing.T) {
		for _, path := range []string{"/console/api/keys", "/console/keys", "/auth/sign-out", "/api/v1/memory"} {
			r := ada.do("POST", gw1+path, `{"name":"forged"}`, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
			wantError(t, r, 403, "")
		}
		wantError(t, newPerson(t).do("POST", gw1+"/auth/sign-in", `{"email":"a@example.com","password":"x"}`, "Sec-Fetch-Site", "cross-site"), 403, "")
		for _, k := range ada.must(200, "GET", gw1+"/console/api/keys", "").keys() {
			if k.Name == "forged" {
				t.Fatal("the forged request created a key")
			}
		}
		ada.must(201, "POST", gw1+"/console/api/keys", `{"name":"same-origin"}`, "Origin", sys.gws[0].URL, "Sec-Fetch-Site", "same-origin")
	})

	t.Run("every 401 and 403 of §9 comes from the edge with the contract body", func(t *testing.T) {
		anon := newPerson(t)
		wantError(t, anon.do("GET", gw1+"/console/api/usage", ""), 401, "No active session")
		wantError(t, anon.do("GET", gw2+"/auth/session", ""), 401, "No active session")
		wantError(t, anon.do("GET", gw1+"/console/api/usage", "", "Cookie", account.CookieName+"=azen_sess_bogus"), 401, "No active session")
		fresh := newPerson(t)
		fresh.must(201, "POST", gw1+"/auth/sign-up", `{"email":"noorg-`+fmt.Sprint(time.Now().UnixNano())+`@example.com","password":"a long password","name":"No Org"}`)
		wantError(t, fresh.do("GET", gw2+"/console/api/keys", ""), 403, "No active organization")
		wantError(t, fresh.do("GET", gw2+"/api/v1/memory", ""), 403, "No active organization")
		fresh.must(200, "GET", gw2+"/console/api/organizations", "")
		wantError(t, fresh.do("POST", gw1+"/console/api/organizations/active", fmt.Sprintf(`{"organizationId":%q}`, orgID)), 403, "You are not a member of that organization")

		// A member may read keys but not change them (owners only).
		bob := newPerson(t)
		bobID, _ := bob.signUp(gw1, "Bob's")
		db, err := sqldb.Open(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := account.NewStore(db).AddMember(context.Background(), orgID, bobID, account.RoleMember, time.Now()); err != nil {
			t.Fatal(err)
		}
		bob.must(200, "POST", gw2+"/console/api/organizations/active", fmt.Sprintf(`{"organizationId":%q}`, orgID))
		bob.must(200, "GET", gw2+"/console/api/keys", "")
		wantError(t, bob.do("POST", gw2+"/console/api/keys", `{"name":"x"}`), 403, "Your role (member) lacks permission keys:write")
		_ = adaID
	})

	t.Run("a key with keys:write manages its own organization's keys only", func(t *testing.T) {
		_, admin := ada.createKey(gw1, `{"name":"automation","permissions":["keys:read","keys:write"]}`)
		_, plain := ada.createKey(gw1, `{"name":"plain"}`)
		other := newPerson(t)
		other.signUp(gw2, "Other Inc")
		foreignID, _ := other.createKey(gw2, `{"name":"theirs"}`)

		bot := newPerson(t)
		h := func(key string) []string { return []string{"azen-api-key", key} }
		r := bot.must(200, "GET", gw2+"/console/api/keys", "", h(admin)...)
		if n := len(r.keys()); n < 3 {
			t.Fatalf("the automation key sees %d keys", n)
		}
		r = bot.must(201, "POST", gw1+"/console/api/keys", `{"name":"made by a key"}`, h(admin)...)
		made := r.key()
		if made.OrganizationID != orgID || made.UserID != adaID {
			t.Fatalf("key made by a key: %+v", made)
		}
		bot.must(200, "POST", gw2+"/console/api/keys/"+made.ID+"/disable", "", h(admin)...)
		wantError(t, bot.do("POST", gw1+"/console/api/keys/"+foreignID+"/disable", "", h(admin)...), 404, "API key not found")
		wantError(t, bot.do("DELETE", gw1+"/console/api/keys/"+foreignID, "", h(admin)...), 404, "API key not found")
		wantError(t, bot.do("GET", gw1+"/console/api/keys", "", h(plain)...), 403, "API key lacks permission keys:read")
		wantError(t, bot.do("GET", gw1+"/console/api/usage", "", h(admin)...), 401, "")
		if got := statusWithKey(t, "GET", gw1+"/api/v1/memory", made.Key, ""); got != 403 {
			t.Fatalf("the disabled key still works: %d", got)
		}
	})

	t.Run("failed sign-ins are limited per client address", func(t *testing.T) {
		p := newPerson(t)
		var last reply
		for range 21 {
			last = p.do("POST", gw1+"/auth/sign-in", `{"email":"nobody@example.com","password":"wrong password"}`)
			if last.status == 429 {
				break
			}
		}
		wantError(t, last, 429, "")
		if last.header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
}
