package azenauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/revocation"
	"github.com/azen-sh/gateway/internal/token"
	"github.com/azen-sh/gateway/internal/usage"
)

// people is a signed-up owner with an organization, a member, and sessions
// in every state the edge distinguishes.
type people struct {
	org                                     account.Membership
	owner, member                           account.User
	ownerCookie, memberCookie, noOrgCookie  string
	expiredCookie, unknownCookie, badCookie string
	ownerSession                            account.Session
}

func signUp(t *testing.T, st *testStores) people {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	var p people
	var err error
	if p.owner, err = st.accounts.CreateUser(ctx, "owner@example.com", "Owner", "owner's password", now); err != nil {
		t.Fatal(err)
	}
	if p.member, err = st.accounts.CreateUser(ctx, "member@example.com", "Member", "member's password", now); err != nil {
		t.Fatal(err)
	}
	if p.org, err = st.accounts.CreateOrganization(ctx, p.owner.ID, "Acme", now); err != nil {
		t.Fatal(err)
	}
	if err := st.accounts.AddMember(ctx, p.org.ID, p.member.ID, account.RoleMember, now); err != nil {
		t.Fatal(err)
	}
	session := func(user, org string, ttl time.Duration) (account.Session, string) {
		s, plain, err := st.accounts.CreateSession(ctx, user, org, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return s, plain
	}
	p.ownerSession, p.ownerCookie = session(p.owner.ID, p.org.ID, time.Hour)
	_, p.memberCookie = session(p.member.ID, p.org.ID, time.Hour)
	_, p.noOrgCookie = session(p.owner.ID, "", time.Hour)
	_, p.expiredCookie = session(p.owner.ID, p.org.ID, -time.Minute)
	p.unknownCookie = strings.Replace(p.ownerCookie, p.ownerCookie[12:20], "00000000", 1)
	if account.WellFormedSessionToken(p.unknownCookie) {
		t.Fatal("the unknown cookie should have a bad checksum for this test")
	}
	p.badCookie = "not-a-session"
	return p
}

func cookieHeader(v string) http.Header {
	return http.Header{"Cookie": {account.CookieName + "=" + v + "; theme=dark"}}
}

// TestSessionsAtTheEdge is contract §9's table: which route takes which
// session, and what every other case is answered.
func TestSessionsAtTheEdge(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "1000/m" })
	p := signUp(t, st)
	_, key := mustCreate(t, st, apikey.NewKey{OrganizationID: p.org.ID, UserID: "bot"})
	_, keysKey := mustCreate(t, st, apikey.NewKey{OrganizationID: p.org.ID, UserID: "bot", Permissions: []string{apikey.KeysRead, apikey.KeysWrite}})

	rows := []struct {
		rule    string
		method  string
		path    string
		header  http.Header
		status  int
		message string
	}{
		{"api takes a session with an organization", "GET", "/api/v1/memory", cookieHeader(p.ownerCookie), 0, ""},
		{"api: no credential at all asks for a key", "GET", "/api/v1/memory", nil, 401, msgMissing},
		{"api: an unknown session is 401", "GET", "/api/v1/memory", cookieHeader(p.badCookie), 401, msgNoSession},
		{"api: an expired session is 401", "GET", "/api/v1/memory", cookieHeader(p.expiredCookie), 401, msgNoSession},
		{"api: a session without an organization is 403", "GET", "/api/v1/memory", cookieHeader(p.noOrgCookie), 403, msgNoOrg},
		{"api: a key and a cookie are judged by the key", "GET", "/api/v1/memory", withKey(cookieHeader(p.noOrgCookie), key), 0, ""},
		{"console api needs a session", "GET", "/console/api/usage", nil, 401, msgNoSession},
		{"console api refuses a key", "GET", "/console/api/usage", withKey(nil, key), 401, msgKeyNotAllowed},
		{"console api takes a session", "GET", "/console/api/usage", cookieHeader(p.ownerCookie), 0, ""},
		{"console api needs an organization", "GET", "/console/api/usage", cookieHeader(p.noOrgCookie), 403, msgNoOrg},
		{"listing organizations needs no organization", "GET", "/console/api/organizations", cookieHeader(p.noOrgCookie), 0, ""},
		{"choosing one needs no organization", "POST", "/console/api/organizations/active", cookieHeader(p.noOrgCookie), 0, ""},
		{"creating one needs no organization", "POST", "/console/api/organizations", cookieHeader(p.noOrgCookie), 0, ""},
		{"the session route needs a session", "GET", "/auth/session", cookieHeader(p.unknownCookie), 401, msgNoSession},
		{"the session route needs an organization", "GET", "/auth/session", cookieHeader(p.noOrgCookie), 403, msgNoOrg},
		{"key routes take an owner's session", "POST", "/console/api/keys", cookieHeader(p.ownerCookie), 0, ""},
		{"a member may list keys", "GET", "/console/api/keys", cookieHeader(p.memberCookie), 0, ""},
		{"a member may not create keys", "POST", "/console/api/keys", cookieHeader(p.memberCookie), 403, "Your role (member) lacks permission keys:write"},
		{"key routes take a key with keys:write", "DELETE", "/console/api/keys/x", withKey(nil, keysKey), 0, ""},
		{"key routes refuse a key without keys:read", "GET", "/console/api/keys", withKey(nil, key), 403, "API key lacks permission keys:read"},
		{"key routes with nothing ask for a session", "GET", "/console/api/keys", nil, 401, msgNoSession},
		{"pages take no credential", "GET", "/console/", nil, 0, ""},
		{"pages pass a bad cookie on as anonymous", "GET", "/console/keys", cookieHeader(p.badCookie), 0, ""},
		{"sign-in takes no credential", "POST", "/auth/sign-in", nil, 0, ""},
	}
	signer, _ := contract.NewSigner(testSecret)
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			s := serveRequest(h, "203.0.113.9", httptest.NewRequest(row.method, row.path, nil), row.header, nil)
			if s.status != row.status || s.message != row.message {
				t.Fatalf("got %d %q (%v), want %d %q", s.status, s.message, s.err, row.status, row.message)
			}
			if row.status != 0 {
				return
			}
			r := s.upstream
			if strings.Contains(r.Header.Get("Cookie"), account.CookieName) {
				t.Fatal("the session cookie went past the gateway")
			}
			if row.header != nil && strings.Contains(row.header.Get("Cookie"), "theme=dark") && !strings.Contains(r.Header.Get("Cookie"), "theme=dark") {
				t.Fatal("another cookie was dropped")
			}
			id, _, err := signer.Verify(r, time.Now())
			anonymous := row.path == "/auth/sign-in" || row.path == "/console/" || row.header.Get("Cookie") == cookieHeader(p.badCookie).Get("Cookie")
			if anonymous {
				if err == nil || r.Header.Get(contract.HeaderUserID) != "" {
					t.Fatalf("an anonymous request carries an identity: %+v", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("upstream cannot verify: %v", err)
			}
			if row.header.Get(contract.APIKeyHeader) == "" && (id.Credential != contract.CredentialSession || id.KeyID == "" || id.UserID == "") {
				t.Fatalf("session identity %+v", id)
			}
		})
	}

	t.Run("a session's identity is the person and their active organization", func(t *testing.T) {
		s := serveRequest(h, "203.0.113.9", httptest.NewRequest("GET", "/api/v1/memory?per=5", nil), cookieHeader(p.ownerCookie), nil)
		id, _, err := signer.Verify(s.upstream, time.Now())
		want := contract.Identity{OrganizationID: p.org.ID, UserID: p.owner.ID, KeyID: p.ownerSession.ID, Credential: contract.CredentialSession}
		if err != nil || id != want {
			t.Fatalf("identity %+v (%v), want %+v", id, err, want)
		}
		if got, _ := s.repl.GetString("azen.credential"); got != "session" {
			t.Fatalf("{azen.credential} = %q", got)
		}
		if PrincipalFrom(s.upstream) == nil || !PrincipalFrom(s.upstream).Has(apikey.KeysWrite) {
			t.Fatal("the owner's principal lacks the owner's permissions")
		}
	})
	t.Run("sign-out revokes a session at once on this gateway", func(t *testing.T) {
		_, plain, _ := st.accounts.CreateSession(context.Background(), p.owner.ID, p.org.ID, time.Hour, time.Now())
		if s := serveRequest(h, "203.0.113.9", httptest.NewRequest("GET", "/api/v1/memory", nil), cookieHeader(plain), nil); s.status != 0 {
			t.Fatal(s.err)
		}
		sess, _ := st.accounts.SessionByHash(context.Background(), apikeyHash(plain))
		st.accounts.DeleteSession(context.Background(), sess.ID)
		h.rt.revoke(revocationSession(sess.ID))
		if s := serveRequest(h, "203.0.113.9", httptest.NewRequest("GET", "/api/v1/memory", nil), cookieHeader(plain), nil); s.status != 401 {
			t.Fatalf("a revoked session: %d", s.status)
		}
	})
}

func withKey(h http.Header, key string) http.Header {
	if h == nil {
		h = http.Header{}
	}
	h = h.Clone()
	h.Set(contract.APIKeyHeader, key)
	return h
}

func TestCrossOriginRequestsWithASessionAreRefused(t *testing.T) {
	h, st := newTestHandler(t, nil)
	p := signUp(t, st)
	_, key := mustCreate(t, st, apikey.NewKey{OrganizationID: p.org.ID, UserID: "bot"})
	rows := []struct {
		rule   string
		method string
		path   string
		header http.Header
		status int
	}{
		{"a forged cross-site POST with a cookie", "POST", "/api/v1/memory", merge(cookieHeader(p.ownerCookie), "Sec-Fetch-Site", "cross-site"), 403},
		{"another origin with a cookie", "DELETE", "/console/api/keys/x", merge(cookieHeader(p.ownerCookie), "Origin", "https://evil.example"), 403},
		{"a forged sign-in", "POST", "/auth/sign-in", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"our own page's POST", "POST", "/console/api/keys", merge(cookieHeader(p.ownerCookie), "Sec-Fetch-Site", "same-origin"), 0},
		{"a cross-site GET is not a change", "GET", "/console/api/keys", merge(cookieHeader(p.ownerCookie), "Sec-Fetch-Site", "cross-site"), 0},
		{"an API key from another site is not affected", "POST", "/api/v1/memory", merge(withKey(nil, key), "Sec-Fetch-Site", "cross-site"), 0},
		{"a non-browser client sends neither header", "POST", "/api/v1/memory", cookieHeader(p.ownerCookie), 0},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			req := httptest.NewRequest(row.method, "http://gateway.example"+row.path, nil)
			s := serveRequest(h, "203.0.113.9", req, row.header, nil)
			if s.status != row.status {
				t.Fatalf("got %d (%v), want %d", s.status, s.err, row.status)
			}
			if row.status == 403 && s.message != msgCrossOrigin {
				t.Fatalf("message %q", s.message)
			}
		})
	}
}

func merge(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// TestBodyIsReadAndBoundedBeforeTheUpstream: the upstream gets a body of
// known length whose hash is signed; a bad body is a 400 that never
// reaches it.
func TestBodyIsReadAndBoundedBeforeTheUpstream(t *testing.T) {
	h, st := newTestHandler(t, func(h *Handler) { h.MaxBody = 1024 })
	_, key := mustCreate(t, st, apikey.NewKey{OrganizationID: "0b0e7a4c-1111-4a4a-8a8a-000000000001", UserID: "u"})
	signer, _ := contract.NewSigner(testSecret)
	post := func(body io.Reader, contentLength int64, chunked bool) served {
		req := httptest.NewRequest("POST", "/api/v1/memory", body)
		req.ContentLength = contentLength
		if chunked {
			req.TransferEncoding = []string{"chunked"}
			req.ContentLength = -1
		}
		return serveRequest(h, "203.0.113.9", req, withKey(http.Header{"Expect": {"100-continue"}}, key), nil)
	}
	t.Run("a chunked body arrives whole, with its length and its hash signed", func(t *testing.T) {
		const body = `{"text":"hello"}`
		s := post(iotest.OneByteReader(strings.NewReader(body)), -1, true)
		if s.status != 0 {
			t.Fatal(s.err)
		}
		r := s.upstream
		got, _ := io.ReadAll(r.Body)
		if string(got) != body || r.ContentLength != int64(len(body)) || len(r.TransferEncoding) != 0 || r.Header.Get("Expect") != "" {
			t.Fatalf("upstream got %q, length %d, TE %v", got, r.ContentLength, r.TransferEncoding)
		}
		_, sum, err := signer.Verify(r, time.Now())
		if err != nil || contract.CheckBody(got, sum) != nil {
			t.Fatalf("body hash not signed: %v", err)
		}
		again, _ := r.GetBody()
		if b, _ := io.ReadAll(again); string(b) != body {
			t.Fatal("GetBody does not replay the body")
		}
	})
	tooBig := "Request body must not exceed 1 KiB."
	rows := []struct {
		rule    string
		body    io.Reader
		length  int64
		chunked bool
		message string
	}{
		{"a declared length over the limit", strings.NewReader(strings.Repeat("x", 2000)), 2000, false, tooBig},
		{"a chunked body over the limit", strings.NewReader(strings.Repeat("x", 2000)), -1, true, tooBig},
		{"a body that breaks off", iotest.ErrReader(io.ErrUnexpectedEOF), -1, true, "Request body could not be read: the upload was malformed or broke off."},
		{"a malformed chunk", iotest.ErrReader(errors.New("malformed chunked encoding")), -1, true, "Request body could not be read: the upload was malformed or broke off."},
		{"an upload that stalls past read_body", iotest.ErrReader(timeoutError{}), -1, true, "Request body was not received in time."},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			s := post(row.body, row.length, row.chunked)
			if s.status != 400 || s.message != row.message || s.upstream != nil {
				t.Fatalf("got %d %q (upstream called: %v)", s.status, s.message, s.upstream != nil)
			}
			if s.header.Get("Connection") != "close" {
				t.Fatal("the connection is kept after a refused body")
			}
		})
	}
	t.Run("a GET without a body is signed as empty", func(t *testing.T) {
		s := serveRequest(h, "203.0.113.9", httptest.NewRequest("GET", "/api/v1/memory", nil), withKey(nil, key), nil)
		if s.status != 0 || s.upstream.Header.Get(contract.HeaderBodySHA256) != contract.EmptyBodySHA256 || s.upstream.Body != http.NoBody {
			t.Fatalf("%d %v", s.status, s.err)
		}
	})
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestFailedSignInsAreLimitedPerClient(t *testing.T) {
	h, _ := newTestHandler(t, func(h *Handler) { h.FailedAttempts = "3/m" })
	wrong := func(w http.ResponseWriter, r *http.Request) error {
		contract.WriteError(w, contract.NewError(401, "Invalid email or password"))
		return nil
	}
	for i := 0; i < 3; i++ {
		if s := serveRequest(h, "198.51.100.7", httptest.NewRequest("POST", "/auth/sign-in", nil), nil, wrong); s.status != 0 {
			t.Fatalf("attempt %d refused at the edge: %d", i, s.status)
		}
	}
	s := serveRequest(h, "198.51.100.7", httptest.NewRequest("POST", "/auth/sign-in", nil), nil, wrong)
	if s.status != 429 || !strings.HasPrefix(s.message, "Too many failed sign-in attempts") || s.header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %q", s.status, s.message)
	}
	if s := serveRequest(h, "198.51.100.8", httptest.NewRequest("POST", "/auth/sign-in", nil), nil, wrong); s.status != 0 {
		t.Fatalf("another address is refused: %d", s.status)
	}
	ok := func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(200); return nil }
	for i := 0; i < 10; i++ {
		if s := serveRequest(h, "198.51.100.9", httptest.NewRequest("POST", "/auth/sign-in", nil), nil, ok); s.status != 0 {
			t.Fatalf("successful sign-ins were counted as failures: %d", s.status)
		}
	}
}

// TestAdmittedRequestsAreMetered: counted after the response, per
// organization, credential, day, route group and outcome; flushed to the
// usage table.
func TestAdmittedRequestsAreMetered(t *testing.T) {
	h, st := newTestHandler(t, nil)
	p := signUp(t, st)
	k, key := mustCreate(t, st, apikey.NewKey{OrganizationID: p.org.ID, UserID: "bot"})
	limited := func(w http.ResponseWriter, r *http.Request) error {
		return caddyhttp.Error(429, contract.Public("Rate limit exceeded"))
	}
	failed := func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(404); return nil }
	ok := func(w http.ResponseWriter, r *http.Request) error { w.WriteHeader(201); return nil }
	send := func(method, path string, header http.Header, next caddyhttp.HandlerFunc) {
		serveRequest(h, "203.0.113.9", httptest.NewRequest(method, path, nil), header, next)
	}
	send("POST", "/api/v1/memory", withKey(nil, key), ok)
	send("POST", "/api/v1/memory", withKey(nil, key), ok)
	send("POST", "/api/v1/memory/search", withKey(nil, key), limited)
	send("GET", "/api/v1/memory/x", cookieHeader(p.ownerCookie), failed)
	send("GET", "/console/", cookieHeader(p.ownerCookie), ok)                  // a page: not metered
	send("GET", "/api/v1/memory", withKey(nil, "azen_bad"), ok)                // refused: not metered
	send("GET", "/console/api/organizations", cookieHeader(p.noOrgCookie), ok) // no organization to bill
	if err := h.rt.meter.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	got, err := st.usage.Daily(context.Background(), usage.Filter{OrganizationID: p.org.ID, From: today, To: today})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"memory_create success": 2, "memory_search rate_limited": 1, "memory_read error": 1}
	if len(got) != len(want) {
		t.Fatalf("usage rows %+v, want %v", got, want)
	}
	for _, c := range got {
		if want[c.Group+" "+c.Outcome] != c.Requests {
			t.Fatalf("usage rows %+v, want %v", got, want)
		}
	}
	byKey, _ := st.usage.Daily(context.Background(), usage.Filter{OrganizationID: p.org.ID, From: today, To: today, CredentialID: k.ID})
	if len(byKey) != 2 {
		t.Fatalf("the key's own usage %+v", byKey)
	}
}

func apikeyHash(s string) token.Hash { return token.HashOf(s) }

func revocationSession(id string) revocation.Target { return revocation.Session(id) }
