package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/api"
	"github.com/azen-sh/gateway/internal/console/ui"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/sqldb"
)

const secret = "console-api-test-secret-0123456789abcdef"

type harness struct {
	mux      *http.ServeMux
	signer   *contract.Signer
	accounts *account.Store
	owner    contract.Identity
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	db, err := sqldb.Open("sqlite:" + filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	stores, err := console.StoresOn(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	stores.Accounts.PasswordCost = bcrypt.MinCost
	accounts := stores.Accounts
	svc := console.New(stores)
	signer, _ := contract.NewSigner(secret)
	logger := slog.New(slog.DiscardHandler)
	pages, err := ui.New(svc, signer, logger)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{mux: http.NewServeMux(), signer: signer, accounts: accounts}
	api.New(svc, signer, logger).Routes(h.mux, pages.Forms())
	pages.Routes(h.mux)
	ctx, now := context.Background(), time.Now()
	u, _ := accounts.CreateUser(ctx, "owner@example.com", "Owner", "a long password", now)
	org, _ := accounts.CreateOrganization(ctx, u.ID, "Acme", now)
	sess, _, _ := accounts.CreateSession(ctx, u.ID, org.ID, time.Hour, now)
	h.owner = contract.Identity{OrganizationID: org.ID, UserID: u.ID, KeyID: sess.ID, Credential: contract.CredentialSession}
	return h
}

// call sends a request as the gateway would forward it for id (nil: anonymous).
func (h *harness) call(method, target, body string, id *contract.Identity, edit func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if id != nil {
		h.signer.SignRequest(r, *id, contract.BodySHA256([]byte(body)), time.Now())
	}
	if edit != nil {
		edit(r)
	}
	w := httptest.NewRecorder()
	h.mux.ServeHTTP(w, r)
	return w
}

func message(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e contract.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code != w.Code {
		t.Fatalf("not a contract error: %d %s", w.Code, w.Body)
	}
	return e.Message
}

func TestAPIRules(t *testing.T) {
	h := newHarness(t)
	w := h.call("POST", "/console/api/keys", `{"name":"ci","quota":{"limit":10,"period":"day"},"permissions":["memory:read"]}`, &h.owner, nil)
	if w.Code != 201 {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	var created struct{ Key map[string]any }
	_ = json.Unmarshal(w.Body.Bytes(), &created)
	id := created.Key["id"].(string)

	rows := []struct {
		rule, method, target, body string
		edit                       func(*http.Request)
		code                       int
		message                    string
	}{
		{"an unsigned request is refused", "GET", "/console/api/keys", "", func(r *http.Request) { contract.StripAzenHeaders(r.Header) }, 401, "Gateway authentication failed: request is not signed by the gateway."},
		{"a body changed after signing is refused", "POST", "/console/api/keys", `{"name":"a"}`, func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"name":"b"}`)) }, 401, "Gateway authentication failed: request body does not match the gateway's signature."},
		{"an unknown field is named", "POST", "/console/api/keys", `{"nme":"x"}`, nil, 400, `Unknown field "nme"`},
		{"a wrong type is named", "POST", "/console/api/keys", `{"name":5}`, nil, 400, "name must be a string"},
		{"an unpaired surrogate is refused, not stored as U+FFFD", "POST", "/console/api/keys", `{"name":"ci \ud800"}`, nil, 400, `name contains an unpaired UTF-16 surrogate (\ud800), which is not Unicode text`},
		{"expiresIn is bounded", "POST", "/console/api/keys", `{"name":"x","expiresIn":0}`, nil, 400, "expiresIn must be from 1 to 315360000, got 0"},
		{"quota.limit is named", "PATCH", "/console/api/keys/" + id, `{"quota":{"limit":0,"period":"day"}}`, nil, 400, "quota.limit must be from 1 to 1000000000000, got 0"},
		{"expiresAt must be RFC 3339", "PATCH", "/console/api/keys/" + id, `{"expiresAt":"tomorrow"}`, nil, 400, "expiresAt must be an RFC 3339 time such as 2030-01-31T12:00:00Z, or null"},
		{"rateLimit is checked", "PATCH", "/console/api/keys/" + id, `{"rateLimit":"lots"}`, nil, 400, ""},
		{"an empty patch is refused", "PATCH", "/console/api/keys/" + id, `{}`, nil, 400, "Request body must change at least one of name, tier, rateLimit, expiresAt, permissions, quota"},
		{"a malformed key id is a 400", "POST", "/console/api/keys/not-a-uuid/disable", "", nil, 400, `Key id "not-a-uuid" is not a UUID`},
		{"an unknown key is a 404", "DELETE", "/console/api/keys/0b0e7a4c-1111-4a4a-8a8a-000000000001", "", nil, 404, "API key not found"},
		{"gracePeriod is bounded", "POST", "/console/api/keys/" + id + "/reroll", `{"gracePeriod":86401}`, nil, 400, "gracePeriod must be from 0 to 86400, got 86401"},
		{"days is bounded", "GET", "/console/api/usage?days=91", "", nil, 400, "days must be an integer from 1 to 90"},
		{"days is a number", "GET", "/console/api/usage?days=ten", "", nil, 400, "days must be an integer from 1 to 90"},
		{"keyId is a UUID", "GET", "/console/api/usage?keyId=x", "", nil, 400, "keyId must be a UUID"},
		{"unknown query parameters are refused", "GET", "/console/api/usage?day=3", "", nil, 400, `Unknown query parameter "day"`},
		{"choosing needs an organizationId", "POST", "/console/api/organizations/active", `{}`, nil, 400, "organizationId is required"},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			w := h.call(row.method, row.target, row.body, &h.owner, row.edit)
			if got := message(t, w); w.Code != row.code || (row.message != "" && got != row.message) {
				t.Fatalf("got %d %q, want %d %q", w.Code, got, row.code, row.message)
			}
		})
	}

	t.Run("the key list shows permissions and quota, never a hash or a secret", func(t *testing.T) {
		w := h.call("GET", "/console/api/keys", "", &h.owner, nil)
		body := w.Body.String()
		if w.Code != 200 || strings.Contains(body, "hash") || strings.Contains(body, created.Key["key"].(string)) ||
			!strings.Contains(body, `"permissions":["memory:read"]`) || !strings.Contains(body, `"quota":{"limit":10,"period":"day","used":null}`) {
			t.Fatalf("list: %s", body)
		}
	})
	t.Run("a PATCH changes only what it names", func(t *testing.T) {
		w := h.call("PATCH", "/console/api/keys/"+id, `{"tier":"pro","quota":null,"expiresAt":"2099-01-01T00:00:00Z"}`, &h.owner, nil)
		var got struct{ Key map[string]any }
		_ = json.Unmarshal(w.Body.Bytes(), &got)
		if w.Code != 200 || got.Key["tier"] != "pro" || got.Key["quota"] != nil || got.Key["name"] != "ci" || got.Key["expiresAt"] != "2099-01-01T00:00:00Z" {
			t.Fatalf("patch: %d %s", w.Code, w.Body)
		}
	})
}

func TestSessionRoutesAndPages(t *testing.T) {
	h := newHarness(t)
	t.Run("sign-up answers 201 with the cookie", func(t *testing.T) {
		w := h.call("POST", "/auth/sign-up", `{"email":"new@example.com","password":"a long password","name":"New"}`, nil, func(r *http.Request) {
			r.Header.Set("X-Forwarded-Proto", "https")
		})
		c := w.Header().Get("Set-Cookie")
		if w.Code != 201 || !strings.Contains(c, "azen_session=azen_sess_") || !strings.Contains(c, "HttpOnly") ||
			!strings.Contains(c, "Secure") || !strings.Contains(c, "SameSite=Lax") || !strings.Contains(c, "Path=/") {
			t.Fatalf("sign-up: %d %s cookie %q", w.Code, w.Body, c)
		}
	})
	t.Run("a sign-up with a used email is a 400", func(t *testing.T) {
		w := h.call("POST", "/auth/sign-up", `{"email":"OWNER@example.com","password":"a long password","name":"Again"}`, nil, nil)
		if msg := message(t, w); w.Code != 400 || msg != "email is already used by another account" {
			t.Fatalf("got %d %q", w.Code, msg)
		}
	})
	t.Run("a page without a session shows the sign-in form", func(t *testing.T) {
		w := h.call("GET", "/console/keys", "", nil, nil)
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") ||
			!strings.Contains(w.Body.String(), `action="/auth/sign-in"`) || !strings.Contains(w.Body.String(), `value="/console/keys"`) {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	})
	form := func(v url.Values) func(*http.Request) {
		return func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	t.Run("a wrong sign-in form is a 401 page", func(t *testing.T) {
		w := h.call("POST", "/auth/sign-in", "", nil, form(url.Values{"email": {"owner@example.com"}, "password": {"nope"}}))
		if w.Code != 401 || !strings.Contains(w.Body.String(), "Invalid email or password") || w.Header().Get("Set-Cookie") != "" {
			t.Fatalf("got %d %s", w.Code, w.Body)
		}
	})
	t.Run("a right sign-in form goes to the page asked for", func(t *testing.T) {
		w := h.call("POST", "/auth/sign-in", "", nil, form(url.Values{"email": {"owner@example.com"}, "password": {"a long password"}, "next": {"/console/usage"}}))
		if w.Code != 303 || w.Header().Get("Location") != "/console/usage" || !strings.Contains(w.Header().Get("Set-Cookie"), "azen_session=") {
			t.Fatalf("got %d %q", w.Code, w.Header().Get("Location"))
		}
	})
	t.Run("next never leaves the console", func(t *testing.T) {
		for _, next := range []string{"https://evil.example/", "//evil.example/console/", "/console/../x", "/other"} {
			w := h.call("POST", "/auth/sign-in", "", nil, form(url.Values{"email": {"owner@example.com"}, "password": {"a long password"}, "next": {next}}))
			if loc := w.Header().Get("Location"); w.Code != 303 || (loc != "/console/" && !strings.HasPrefix(loc, "/console/") || strings.Contains(loc, "evil")) || loc == "/other" {
				t.Fatalf("next %q went to %q", next, loc)
			}
		}
	})
	t.Run("a cross-site form post to a page is refused by the backend too", func(t *testing.T) {
		w := h.call("POST", "/console/keys", "", &h.owner, func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") })
		if w.Code != 403 {
			t.Fatalf("got %d", w.Code)
		}
	})
	t.Run("a member sees keys but no buttons to change them", func(t *testing.T) {
		ctx := context.Background()
		u, _ := h.accounts.CreateUser(ctx, "member@example.com", "Member", "a long password", time.Now())
		_ = h.accounts.AddMember(ctx, h.owner.OrganizationID, u.ID, account.RoleMember, time.Now())
		sess, _, _ := h.accounts.CreateSession(ctx, u.ID, h.owner.OrganizationID, time.Hour, time.Now())
		member := contract.Identity{OrganizationID: h.owner.OrganizationID, UserID: u.ID, KeyID: sess.ID, Credential: contract.CredentialSession}
		w := h.call("GET", "/console/keys", "", &member, nil)
		if w.Code != 200 || strings.Contains(w.Body.String(), "/console/keys/new") {
			t.Fatalf("member's keys page: %d", w.Code)
		}
		w = h.call("POST", "/console/keys", url.Values{"name": {"x"}}.Encode(), &member, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		})
		if w.Code != 403 || !strings.Contains(w.Body.String(), "lacks permission keys:write") {
			t.Fatalf("member's create: %d %s", w.Code, w.Body)
		}
	})
}
