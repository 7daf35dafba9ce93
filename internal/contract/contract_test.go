package contract

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNormalizeKeepsOnlyTheSixStatuses(t *testing.T) {
	tests := []struct {
		in, want int
	}{
		{400, 400}, {401, 401}, {403, 403}, {404, 404}, {429, 429}, {500, 500},
		{405, 404}, // an unknown method is an unknown endpoint
		{410, 404},
		{413, 400}, // body over the size limit
		{415, 400},
		{431, 400},
		{502, 500}, {503, 500}, {504, 500}, // dead upstream
		{501, 500},
		{0, 500},
		{200, 500}, // not an error: never sent as a body, but never a 2xx either
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.in), func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%d) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewError(t *testing.T) {
	tests := []struct {
		name          string
		code          int
		message       string
		wantStatus    string
		wantCode      int
		wantMessage   string
		messageIsKept bool
	}{
		{"client message kept", 403, "API key is disabled.", StatusForbidden, 403, "API key is disabled.", true},
		{"empty message gets default", 401, "", StatusUnauthorized, 401, DefaultMessage(401), false},
		{"500 detail never shown", 500, "pq: connection refused at 10.0.0.3", StatusInternal, 500, MessageInternal, false},
		{"502 folded to generic 500", 502, "", StatusInternal, 500, MessageInternal, false},
		{"unavailable message allowed", 503, MessageUnavailable, StatusInternal, 500, MessageUnavailable, false},
		{"429", 429, "Rate limit exceeded: 60 requests per minute. Retry in 7 s.", StatusRateLimited, 429, "Rate limit exceeded: 60 requests per minute. Retry in 7 s.", true},
		{"405 is not_found", 405, "", StatusNotFound, 404, DefaultMessage(404), false},
		{"413 is invalid_request", 413, "Request body is over 1 MiB.", StatusInvalidRequest, 400, "Request body is over 1 MiB.", true},
		{"413 without a message says why", 413, "", StatusInvalidRequest, 400, "Request body is too large.", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewError(tt.code, tt.message)
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Message != tt.wantMessage {
				t.Errorf("NewError(%d, %q) = %+v", tt.code, tt.message, e)
			}
		})
	}
}

func TestWriteErrorBodyAndHeaders(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Retry-After", "7")
	w.Header().Set("Content-Encoding", "gzip")
	WriteError(w, NewError(429, "Rate limit exceeded: 60 requests per minute. Retry in 7 s."))
	res := w.Result()
	if res.StatusCode != 429 {
		t.Errorf("status %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if res.Header.Get("Retry-After") != "7" {
		t.Error("a header set before the error was lost")
	}
	if res.Header.Get("Content-Encoding") != "" {
		t.Error("Content-Encoding survived on a plain JSON body")
	}
	var fields map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &fields); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": "rate_limited", "message": "Rate limit exceeded: 60 requests per minute. Retry in 7 s.", "code": float64(429)}
	if len(fields) != 3 || fields["status"] != want["status"] || fields["message"] != want["message"] || fields["code"] != want["code"] {
		t.Errorf("body %s", w.Body.String())
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		name string
		sent string
		keep bool
	}{
		{"sane id kept", "abc-123_X.y:z", true},
		{"uuid kept", "3f1c7a52-5d9e-4c1b-9f55-0b8f1c2d3e4f", true},
		{"empty replaced", "", false},
		{"spaces replaced", "a b", false},
		{"newline replaced", "a\nb", false},
		{"quote replaced", `a"b`, false},
		{"too long replaced", strings.Repeat("a", 129), false},
		{"max length kept", strings.Repeat("a", 128), true},
		{"non-ascii replaced", "idé", false},
		{"an API key is never kept", "azen_" + strings.Repeat("A1b2", 12), false},
		{"a key inside an id is never kept", "req-azen_" + strings.Repeat("x", 40), false},
		{"a key in upper case is never kept", "AZEN_" + strings.Repeat("x", 40), false},
		{"azen without the underscore is fine", "azen-req-1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.sent != "" {
				r.Header.Set(RequestIDHeader, tt.sent)
			}
			w := httptest.NewRecorder()
			id := EnsureRequestID(w, r)
			if tt.keep && id != tt.sent {
				t.Errorf("id %q, want the client's %q", id, tt.sent)
			}
			if !tt.keep && (id == tt.sent || !SaneRequestID(id)) {
				t.Errorf("id %q was not replaced by a sane one", id)
			}
			if w.Header().Get(RequestIDHeader) != id || r.Header.Get(RequestIDHeader) != id {
				t.Error("id not set on both request and response")
			}
		})
	}
	t.Run("two ids are replaced by one", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Add(RequestIDHeader, "one")
		r.Header.Add(RequestIDHeader, "two")
		id := EnsureRequestID(httptest.NewRecorder(), r)
		if got := r.Header.Values(RequestIDHeader); len(got) != 1 || got[0] != id || id == "one" || id == "two" {
			t.Errorf("request ids %v after EnsureRequestID (returned %q)", got, id)
		}
	})
	if a, b := NewRequestID(), NewRequestID(); a == b {
		t.Error("two new ids are equal")
	}
}

func TestPublicMessage(t *testing.T) {
	wrapped := fmt.Errorf("auth: %w", Public("API key has expired."))
	if m, ok := PublicMessage(wrapped); !ok || m != "API key has expired." {
		t.Errorf("PublicMessage = %q, %v", m, ok)
	}
	if _, ok := PublicMessage(errors.New("dial tcp: refused")); ok {
		t.Error("a plain error counted as public")
	}
}

const testSecret = "0123456789abcdef0123456789abcdef"

func signedRequest(t *testing.T, s *Signer, method, target string, id Identity, body string, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	s.SignRequest(r, id, BodySHA256([]byte(body)), at)
	return r
}

func TestSignerRejectsShortSecret(t *testing.T) {
	if _, err := NewSigner(strings.Repeat("x", 31)); err == nil {
		t.Error("31-byte secret accepted")
	}
	if _, err := NewSigner(testSecret); err != nil {
		t.Error(err)
	}
}

func TestVerify(t *testing.T) {
	s, _ := NewSigner(testSecret)
	other, _ := NewSigner(strings.Repeat("z", 32))
	id := Identity{OrganizationID: "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11", UserID: "u1", KeyID: "k1", Credential: CredentialKey}
	now := time.Unix(1_800_000_000, 0)
	const body = `{"text":"hello"}`

	t.Run("valid signature verifies and returns the body hash", func(t *testing.T) {
		r := signedRequest(t, s, "POST", "/api/v1/memory?per=1", id, body, now)
		got, sum, err := s.Verify(r, now.Add(59*time.Second))
		if err != nil || got != id || CheckBody([]byte(body), sum) != nil {
			t.Fatalf("Verify = %+v, %q, %v", got, sum, err)
		}
	})
	t.Run("a session without an organization verifies", func(t *testing.T) {
		sid := Identity{UserID: "u1", KeyID: "s1", Credential: CredentialSession}
		r := signedRequest(t, s, "GET", "/console/api/organizations", sid, "", now)
		if got, sum, err := s.Verify(r, now); err != nil || got != sid || sum != EmptyBodySHA256 {
			t.Fatalf("Verify = %+v, %q, %v", got, sum, err)
		}
	})
	t.Run("another body does not match", func(t *testing.T) {
		r := signedRequest(t, s, "POST", "/api/v1/memory", id, body, now)
		_, sum, err := s.Verify(r, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckBody([]byte(`{"text":"forged"}`), sum); !errors.Is(err, ErrBodyMismatch) {
			t.Fatalf("CheckBody of a new body: %v", err)
		}
	})
	tests := []struct {
		name   string
		mutate func(r *http.Request)
		at     time.Time
		signer *Signer
		want   error
	}{
		{"missing signature", func(r *http.Request) { r.Header.Del(HeaderSignature) }, now, s, ErrSignatureMissing},
		{"missing user", func(r *http.Request) { r.Header.Del(HeaderUserID) }, now, s, ErrSignatureMissing},
		{"missing body hash", func(r *http.Request) { r.Header.Del(HeaderBodySHA256) }, now, s, ErrSignatureMissing},
		{"missing credential kind", func(r *http.Request) { r.Header.Del(HeaderCredential) }, now, s, ErrSignatureMissing},
		{"a key without an organization", func(r *http.Request) { r.Header.Del(HeaderOrganizationID) }, now, s, ErrSignatureMissing},
		{"unknown credential kind", func(r *http.Request) { r.Header.Set(HeaderCredential, "admin") }, now, s, ErrSignatureInvalid},
		{"credential kind changed", func(r *http.Request) { r.Header.Set(HeaderCredential, CredentialSession) }, now, s, ErrSignatureInvalid},
		{"older than 60 s", nil, now.Add(61 * time.Second), s, ErrSignatureExpired},
		{"from the future", nil, now.Add(-61 * time.Second), s, ErrSignatureExpired},
		{"other method", func(r *http.Request) { r.Method = "DELETE" }, now, s, ErrSignatureInvalid},
		{"other path", func(r *http.Request) { r.URL.Path = "/api/v1/memory/x" }, now, s, ErrSignatureInvalid},
		{"other query", func(r *http.Request) { r.URL.RawQuery = "per=100&userId=alice" }, now, s, ErrSignatureInvalid},
		{"query added", func(r *http.Request) { r.URL.RawQuery += "&userId=alice" }, now, s, ErrSignatureInvalid},
		{"query removed", func(r *http.Request) { r.URL.RawQuery = "" }, now, s, ErrSignatureInvalid},
		{"other body hash", func(r *http.Request) { r.Header.Set(HeaderBodySHA256, EmptyBodySHA256) }, now, s, ErrSignatureInvalid},
		{"other organization", func(r *http.Request) { r.Header.Set(HeaderOrganizationID, "x") }, now, s, ErrSignatureInvalid},
		{"other user", func(r *http.Request) { r.Header.Set(HeaderUserID, "u2") }, now, s, ErrSignatureInvalid},
		{"other key", func(r *http.Request) { r.Header.Set(HeaderKeyID, "k2") }, now, s, ErrSignatureInvalid},
		{"bad timestamp", func(r *http.Request) { r.Header.Set(HeaderTimestamp, "soon") }, now, s, ErrSignatureInvalid},
		{"shifted timestamp", func(r *http.Request) { r.Header.Set(HeaderTimestamp, fmt.Sprint(now.Unix()+1)) }, now, s, ErrSignatureInvalid},
		{"other secret", nil, now, other, ErrSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := signedRequest(t, s, "POST", "/api/v1/memory?per=1", id, body, now)
			if tt.mutate != nil {
				tt.mutate(r)
			}
			if _, _, err := tt.signer.Verify(r, tt.at); !errors.Is(err, tt.want) {
				t.Errorf("Verify error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignRequestStripsClientAzenHeaders(t *testing.T) {
	s, _ := NewSigner(testSecret)
	r := httptest.NewRequest("GET", "/api/v1/memory", nil)
	r.Header.Set("azen-api-key", "azen_secret")
	r.Header.Set("Azen-Organization-Id", "forged")
	r.Header.Set("AZEN-ADMIN", "1")
	r.Header.Set("Azenith", "kept") // not an Azen-* header
	s.SignRequest(r, Identity{OrganizationID: "o", UserID: "u", KeyID: "k", Credential: CredentialKey}, EmptyBodySHA256, time.Now())
	if r.Header.Get("Azen-Api-Key") != "" || r.Header.Get("Azen-Admin") != "" {
		t.Error("client Azen-* header survived")
	}
	if r.Header.Get(HeaderOrganizationID) != "o" {
		t.Error("forged organization survived")
	}
	if r.Header.Get("Azenith") != "kept" {
		t.Error("a non-Azen header was removed")
	}
}

func TestBodySHA256(t *testing.T) {
	if BodySHA256(nil) != EmptyBodySHA256 || BodySHA256([]byte{}) != EmptyBodySHA256 {
		t.Error("empty body hash")
	}
	sum := sha256.Sum256([]byte("x"))
	if BodySHA256([]byte("x")) != hex.EncodeToString(sum[:]) {
		t.Error("body hash")
	}
	if sum := sha256.Sum256(nil); hex.EncodeToString(sum[:]) != EmptyBodySHA256 {
		t.Error("EmptyBodySHA256 is not the hash of nothing")
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner(testSecret)
	f.Add("o", "u", "k", "key", "1800000000", EmptyBodySHA256, "deadbeef", "a=1")
	f.Add("", "", "", "", "", "", "", "")
	f.Add("o", "u", "k", "session", "-9999999999999999999", "", "zz", "")
	f.Fuzz(func(t *testing.T, org, user, key, cred, ts, body, sig, query string) {
		r := httptest.NewRequest("GET", "/api/v1/memory", nil)
		r.URL.RawQuery = query
		r.Header[HeaderOrganizationID] = []string{org}
		r.Header[HeaderUserID] = []string{user}
		r.Header[HeaderKeyID] = []string{key}
		r.Header[HeaderCredential] = []string{cred}
		r.Header[HeaderTimestamp] = []string{ts}
		r.Header[HeaderBodySHA256] = []string{body}
		r.Header[HeaderSignature] = []string{sig}
		if _, _, err := s.Verify(r, time.Unix(1_800_000_000, 0)); err == nil {
			t.Fatalf("forged headers verified: %q %q %q %q %q %q %q", org, user, key, cred, ts, body, sig)
		}
	})
}

// TestSignIsStable pins the signature format: gateways and backends of
// different versions must agree on it during a rolling upgrade.
func TestSignIsStable(t *testing.T) {
	s, _ := NewSigner(testSecret)
	id := Identity{OrganizationID: "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11", UserID: "u1", KeyID: "k1", Credential: CredentialKey}
	got := s.Sign("POST", "/api/v1/memory", "per=1", id, 1_800_000_000, EmptyBodySHA256)
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte("azen-v2\nPOST\n/api/v1/memory\nper=1\n0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11\nu1\nk1\nkey\n1800000000\n" + EmptyBodySHA256 + "\n"))
	if want := hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func BenchmarkSignRequest(b *testing.B) {
	s, _ := NewSigner(testSecret)
	id := Identity{OrganizationID: "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11", UserID: "u1", KeyID: "k1", Credential: CredentialKey}
	r := httptest.NewRequest("POST", "/api/v1/memory?per=1", nil)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.SignRequest(r, id, EmptyBodySHA256, now)
	}
}
