package console

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/revocation"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
	"github.com/azen-sh/gateway/internal/usage"
)

type fixture struct {
	svc      *Service
	accounts *account.Store
	usage    *usage.Store
	redis    redis.UniversalClient
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := sqldb.Open("sqlite:" + filepath.Join(t.TempDir(), "console.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	stores, err := StoresOn(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	stores.Accounts.PasswordCost = bcrypt.MinCost
	rd := testenv.StartRedis(t)
	stores.Redis = redis.NewClient(&redis.Options{Addr: rd.Addr()})
	t.Cleanup(func() { stores.Redis.Close() })
	return &fixture{svc: New(stores), accounts: stores.Accounts, usage: stores.Usage, redis: stores.Redis}
}

// owner signs a person up with an organization and returns them as an actor.
func (f *fixture) owner(t *testing.T, email string) Actor {
	t.Helper()
	ctx := context.Background()
	s, err := f.svc.SignUp(ctx, SignUpInput{Email: email, Password: "a long password", Name: "Owner"})
	if err != nil {
		t.Fatal(err)
	}
	a := f.actor(t, s.Token)
	c, err := f.svc.CreateOrganization(ctx, a, "Org of "+email)
	if err != nil || c.Token == "" {
		t.Fatalf("CreateOrganization = %+v, %v", c, err)
	}
	return f.actor(t, c.Token)
}

// actor is who the gateway would vouch for with this session token.
func (f *fixture) actor(t *testing.T, token string) Actor {
	t.Helper()
	sess, err := f.accounts.SessionByHash(context.Background(), apikey.HashOf(token))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.Actor(context.Background(), contract.Identity{
		OrganizationID: sess.ActiveOrganizationID, UserID: sess.UserID, KeyID: sess.ID, Credential: contract.CredentialSession})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func wantRefusal(t *testing.T, err error, code int, field, message string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != code || (field != "" && ce.Problem(field) == "") || (message != "" && ce.Message != message) {
		t.Fatalf("got %v (%+v), want %d %s %q", err, ce, code, field, message)
	}
}

func TestSignUpAndSignIn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.svc.SignUp(ctx, SignUpInput{Email: "not an email", Password: "short", Name: ""})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Fields) != 3 || ce.Message != "email is not an email address such as ada@example.com" {
		t.Fatalf("every field is named, the first in the message: %+v", ce)
	}
	if _, err := f.svc.SignUp(ctx, SignUpInput{Email: "Ada@Example.com", Password: "a long password", Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SignUp(ctx, SignUpInput{Email: "ada@example.com", Password: "a long password", Name: "Ada"})
	wantRefusal(t, err, 400, "email", "email is already used by another account")
	_, err = f.svc.SignIn(ctx, "ada@example.com", "wrong password")
	wantRefusal(t, err, 401, "", "Invalid email or password")
	_, err = f.svc.SignIn(ctx, "nobody@example.com", "a long password")
	wantRefusal(t, err, 401, "", "Invalid email or password")
	s, err := f.svc.SignIn(ctx, "ADA@example.com", "a long password")
	if err != nil || s.ActiveOrganizationID != "" || !account.WellFormedSessionToken(s.Token) {
		t.Fatalf("SignIn = %+v, %v", s, err)
	}
}

func TestOrganizationsRotateTheSession(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.owner(t, "o@example.com")
	if a.OrganizationID == "" || !a.IsOwner() || !a.Can(apikey.KeysWrite) {
		t.Fatalf("owner actor %+v", a)
	}
	c, err := f.svc.CreateOrganization(ctx, a, "Second")
	if err != nil || c.Token != "" {
		t.Fatalf("a second organization does not become active: %+v %v", c, err)
	}
	sub := f.redis.Subscribe(ctx, revocation.Channel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	m, token, err := f.svc.ChooseOrganization(ctx, a, c.Organization.ID)
	if err != nil || m.ID != c.Organization.ID || token == "" {
		t.Fatalf("ChooseOrganization = %+v %q %v", m, token, err)
	}
	if _, err := f.accounts.SessionByID(ctx, a.ID); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("the old session lives on: %v", err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != revocation.Session(a.ID).Message() {
		t.Fatalf("revocation %v %v", msg, err)
	}
	if got := f.actor(t, token); got.OrganizationID != c.Organization.ID {
		t.Fatalf("new session in %s", got.OrganizationID)
	}
	_, _, err = f.svc.ChooseOrganization(ctx, a, "nope")
	wantRefusal(t, err, 400, "organizationId", "")
	stranger := f.owner(t, "s@example.com")
	_, _, err = f.svc.ChooseOrganization(ctx, stranger, c.Organization.ID)
	wantRefusal(t, err, 403, "", "You are not a member of that organization")
}

func TestKeyRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.owner(t, "k@example.com")
	other := f.owner(t, "x@example.com")

	t.Run("a new key belongs to the person and the active organization", func(t *testing.T) {
		k, plain, err := f.svc.CreateKey(ctx, a, KeyInput{Name: " ci ", RateLimit: "120/m  burst 20", Quota: apikey.Quota{Limit: 5, Period: "day"}})
		if err != nil || !apikey.WellFormed(plain) || k.UserID != a.UserID || k.OrganizationID != a.OrganizationID ||
			k.Name != "ci" || k.RateLimit != "120/m burst 20" || len(k.Permissions) != 2 {
			t.Fatalf("CreateKey = %+v %v", k, err)
		}
	})
	rows := []struct {
		rule, field string
		in          KeyInput
	}{
		{"a name is required", "name", KeyInput{}},
		{"a name is one line", "name", KeyInput{Name: "a\nb"}},
		{"a name is at most 255 characters", "name", KeyInput{Name: strings.Repeat("n", 256)}},
		{"expiresIn is at most ten years", "expiresIn", KeyInput{Name: "x", ExpiresIn: MaxExpiresIn + 1}},
		{"a tier is a tier name", "tier", KeyInput{Name: "x", Tier: "gold plated"}},
		{"a rate limit is RATE [burst N]", "rateLimit", KeyInput{Name: "x", RateLimit: "fast"}},
		{"permissions are known names", "permissions", KeyInput{Name: "x", Permissions: []string{"admin"}}},
		{"an empty permission list is refused", "permissions", KeyInput{Name: "x", Permissions: []string{}}},
		{"a quota period is day or month", "quota", KeyInput{Name: "x", Quota: apikey.Quota{Limit: 5, Period: "week"}}},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			_, _, err := f.svc.CreateKey(ctx, a, row.in)
			wantRefusal(t, err, 400, row.field, "")
		})
	}
	k, _, _ := f.svc.CreateKey(ctx, a, KeyInput{Name: "mine"})
	t.Run("another organization's key is not found", func(t *testing.T) {
		_, err := f.svc.SetKeyEnabled(ctx, other, k.ID, false)
		wantRefusal(t, err, 404, "", "API key not found")
		wantRefusal(t, f.svc.DeleteKey(ctx, other, k.ID), 404, "", "API key not found")
		name := "stolen"
		_, err = f.svc.UpdateKey(ctx, other, k.ID, KeyPatch{Name: &name})
		wantRefusal(t, err, 404, "", "")
		_, _, err = f.svc.RerollKey(ctx, other, k.ID, 0)
		wantRefusal(t, err, 404, "", "")
		_, err = f.svc.Usage(ctx, other, UsageQuery{KeyID: k.ID})
		wantRefusal(t, err, 404, "", "")
	})
	t.Run("update names each field at fault and changes nothing", func(t *testing.T) {
		past := time.Now().Add(-time.Hour)
		bad := "x y"
		_, err := f.svc.UpdateKey(ctx, a, k.ID, KeyPatch{Tier: &bad, ExpiresAt: &past, Quota: &apikey.Quota{Limit: -1, Period: "day"}})
		var ce *Error
		if !errors.As(err, &ce) || ce.Problem("tier") == "" || ce.Problem("expiresAt") == "" || ce.Problem("quota") == "" {
			t.Fatalf("got %+v", ce)
		}
		_, err = f.svc.UpdateKey(ctx, a, k.ID, KeyPatch{})
		wantRefusal(t, err, 400, "", "")
		got, _ := f.svc.Key(ctx, a, k.ID)
		if got.Tier != "" || !got.ExpiresAt.IsZero() {
			t.Fatalf("a refused update changed the key: %+v", got)
		}
	})
	t.Run("reroll's grace period is 0 to 86400 seconds", func(t *testing.T) {
		_, _, err := f.svc.RerollKey(ctx, a, k.ID, 86401)
		wantRefusal(t, err, 400, "gracePeriod", "")
		v, _, err := f.svc.RerollKey(ctx, a, k.ID, 60)
		if err != nil || !v.InGrace {
			t.Fatalf("reroll with grace: %+v %v", v, err)
		}
	})
	t.Run("changes are announced to the gateways", func(t *testing.T) {
		sub := f.redis.Subscribe(ctx, revocation.Channel)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		name := "renamed"
		if _, err := f.svc.UpdateKey(ctx, a, k.ID, KeyPatch{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.DeleteKey(ctx, a, k.ID); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			msg, err := sub.ReceiveMessage(ctx)
			if err != nil || msg.Payload != revocation.Key(k.ID).Message() {
				t.Fatalf("revocation %v %v", msg, err)
			}
		}
	})
	t.Run("a member reads keys but does not change them", func(t *testing.T) {
		s, _ := f.svc.SignUp(ctx, SignUpInput{Email: "m@example.com", Password: "a long password", Name: "Member"})
		m := f.actor(t, s.Token)
		if err := f.accounts.AddMember(ctx, a.OrganizationID, m.UserID, account.RoleMember, time.Now()); err != nil {
			t.Fatal(err)
		}
		_, token, err := f.svc.ChooseOrganization(ctx, m, a.OrganizationID)
		if err != nil {
			t.Fatal(err)
		}
		m = f.actor(t, token)
		if _, err := f.svc.ListKeys(ctx, m); err != nil {
			t.Fatal(err)
		}
		_, _, err = f.svc.CreateKey(ctx, m, KeyInput{Name: "x"})
		wantRefusal(t, err, 403, "", "Your role (member) lacks permission keys:write")
	})
}

func TestUsageReport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.owner(t, "u@example.com")
	k, _, _ := f.svc.CreateKey(ctx, a, KeyInput{Name: "q", Quota: apikey.Quota{Limit: 100, Period: apikey.PeriodMonth}})
	now := time.Now().UTC()
	today, yesterday := now.Format(time.DateOnly), now.AddDate(0, 0, -1).Format(time.DateOnly)
	add := func(day, group, outcome, cred string, n int64) usage.Count {
		return usage.Count{Day: day, OrganizationID: a.OrganizationID, CredentialKind: "key", CredentialID: cred, Group: group, Outcome: outcome, Requests: n}
	}
	if err := f.usage.Add(ctx, []usage.Count{
		add(today, usage.GroupCreate, usage.OutcomeSuccess, k.ID, 5),
		add(today, usage.GroupSearch, usage.OutcomeRateLimited, k.ID, 2),
		add(yesterday, usage.GroupRead, usage.OutcomeError, k.ID, 1),
		add(today, usage.GroupOther, usage.OutcomeSuccess, a.ID, 4),
		add(now.AddDate(0, 0, -40).Format(time.DateOnly), usage.GroupCreate, usage.OutcomeSuccess, k.ID, 100),
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.redis.Set(ctx, quota.Key(k.ID, k.Quota, now), 42, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	r, err := f.svc.Usage(ctx, a, UsageQuery{KeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Labels) != 30 || r.End != today || r.Labels[29] != today || r.Labels[28] != yesterday {
		t.Fatalf("labels %v", r.Labels)
	}
	want := map[string]int64{"total": 8, "success": 5, "rate_limited": 2, "error": 1, "memory_create": 5, "memory_search": 2, "memory_read": 1, "other": 0}
	for name, n := range want {
		if r.Summary[name] != n {
			t.Errorf("summary %s = %d, want %d", name, r.Summary[name], n)
		}
	}
	if r.Series["total"][29] != 7 || r.Series["error"][28] != 1 {
		t.Errorf("series %v", r.Series["total"])
	}
	if len(r.Quotas) != 1 || r.Quotas[0].QuotaUsed == nil || *r.Quotas[0].QuotaUsed != 42 {
		t.Errorf("quota use %+v", r.Quotas)
	}
	all, _ := f.svc.Usage(ctx, a, UsageQuery{Days: 1})
	if all.Summary["total"] != 11 || len(all.Labels) != 1 {
		t.Errorf("whole organization today: %v", all.Summary)
	}
	for _, days := range []int{-1, 91} {
		_, err := f.svc.Usage(ctx, a, UsageQuery{Days: days})
		wantRefusal(t, err, http.StatusBadRequest, "days", "days must be from 1 to 90")
	}
	_, err = f.svc.Usage(ctx, a, UsageQuery{KeyID: "not-a-uuid"})
	wantRefusal(t, err, 400, "keyId", "")
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.owner(t, "p@example.com")
	otherBrowser, _ := f.svc.SignIn(ctx, "p@example.com", "a long password")
	_, err := f.svc.ChangePassword(ctx, a, ChangePasswordInput{CurrentPassword: "wrong one!", NewPassword: "a newer password"})
	wantRefusal(t, err, 400, "currentPassword", "")
	s, err := f.svc.ChangePassword(ctx, a, ChangePasswordInput{CurrentPassword: "a long password", NewPassword: "a newer password"})
	if err != nil || s.ActiveOrganizationID != a.OrganizationID {
		t.Fatalf("ChangePassword = %+v %v", s, err)
	}
	if _, err := f.accounts.SessionByHash(ctx, apikey.HashOf(otherBrowser.Token)); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("the other browser's session lives on: %v", err)
	}
	if _, err := f.svc.SignIn(ctx, "p@example.com", "a newer password"); err != nil {
		t.Fatal(err)
	}
}
