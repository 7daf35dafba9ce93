package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/contract"
)

// testClient is the client of every call that names none: the default
// transport (so connections are reused as before), with a timeout so that a
// hung server fails the test instead of the whole run.
var testClient = &http.Client{Timeout: 30 * time.Second}

// request is one call being built by its options.
type request struct {
	header  http.Header
	body    io.Reader
	client  *http.Client
	prepare []func(*http.Request) // run on the built request, last
}

// callOption adds one thing to a request.
type callOption func(*request)

// withKey sends key in the azen-api-key header, as the SDK writes it, even
// when key is blank.
func withKey(key string) callOption {
	return func(r *request) { r.header[contract.APIKeyHeader] = []string{key} }
}

// withCookie sends only the console session cookie.
func withCookie(session string) callOption {
	return withHeader("Cookie", account.CookieName+"="+session)
}

// withJSON sends body as JSON: a string or []byte as written, anything else
// marshalled.
func withJSON(body any) callOption {
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
	}
	return func(r *request) {
		r.body = bytes.NewReader(raw)
		r.header.Set("Content-Type", "application/json")
	}
}

// withBody sends body as it is, with no Content-Type of its own.
func withBody(body io.Reader) callOption {
	return func(r *request) { r.body = body }
}

// withHeader sets one header.
func withHeader(name, value string) callOption {
	return func(r *request) { r.header.Set(name, value) }
}

// withHeaders sets headers given in pairs.
func withHeaders(pairs ...string) callOption {
	return func(r *request) {
		for i := 0; i+1 < len(pairs); i += 2 {
			r.header.Set(pairs[i], pairs[i+1])
		}
	}
}

// signedAs signs the request as the gateway would for id, with the body's
// SHA-256 given (contract §4).
func signedAs(s *contract.Signer, id contract.Identity, bodySHA256 string) callOption {
	return func(r *request) {
		r.prepare = append(r.prepare, func(req *http.Request) { s.SignRequest(req, id, bodySHA256, time.Now()) })
	}
}

// via sends the call with c instead of testClient.
func via(c *http.Client) callOption {
	return func(r *request) { r.client = c }
}

// reply is an answer, its body read whole.
type reply struct {
	t           testing.TB // nil for tryCall: decoding errors then give zero values
	method, url string
	status      int
	header      http.Header
	raw         []byte
}

// call sends method url with opts and reads the answer; a transport error
// fails the test.
func call(t testing.TB, method, url string, opts ...callOption) reply {
	t.Helper()
	r, err := tryCall(method, url, opts...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	r.t = t
	return r
}

// tryCall is call for goroutines and retries: it returns the error.
func tryCall(method, url string, opts ...callOption) (reply, error) {
	b := request{header: http.Header{}, client: testClient}
	for _, o := range opts {
		o(&b)
	}
	req, err := http.NewRequest(method, url, b.body)
	if err != nil {
		return reply{}, err
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for _, f := range b.prepare {
		f(req)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{method: method, url: url, status: resp.StatusCode, header: resp.Header, raw: raw}, nil
}

// tryJSON is tryCall for an answer that must be a JSON object.
func tryJSON(method, url string, opts ...callOption) (reply, error) {
	r, err := tryCall(method, url, opts...)
	if err != nil {
		return r, err
	}
	var obj map[string]any
	if err := json.Unmarshal(r.raw, &obj); err != nil {
		return r, fmt.Errorf("status %d, body not JSON: %q", r.status, r.raw)
	}
	return r, nil
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// decode reads the body into v; a body that is not JSON of v's shape fails
// the test.
func (r reply) decode(v any) {
	if err := json.Unmarshal(r.raw, v); err != nil && r.t != nil {
		r.t.Helper()
		r.t.Fatalf("status %d, body not JSON of %T: %q", r.status, v, r.raw)
	}
}

// fields is the body as raw JSON fields, for tests about a field's
// presence or shape rather than its value.
func (r reply) fields() map[string]any {
	var m map[string]any
	r.decode(&m)
	return m
}

// The memory API's answers (contract §8).

// memory is one memory as the API shows it.
type memory struct {
	ID        string          `json:"id"`
	Content   string          `json:"content"`
	Metadata  json.RawMessage `json:"metadata"`
	CreatedAt string          `json:"createdAt"`
	UpdatedAt string          `json:"updatedAt"`
	Embedded  bool            `json:"embedded"`
	UserID    string          `json:"userId"`
}

// creation answers POST /memory: 201, or 200 with duplicated for a dedupKey
// already stored.
type creation struct {
	Status          string `json:"status"`
	MemoryID        string `json:"memoryId"`
	EmbeddingStatus string `json:"embeddingStatus"`
	Duplicated      bool   `json:"duplicated"`
}

// memoryPage answers GET /memory.
type memoryPage struct {
	Status     string   `json:"status"`
	Memories   []memory `json:"memories"`
	TotalPages int      `json:"total_pages"`
	TotalCount int      `json:"total_count"`
}

// searchResults answers POST /memory/search.
type searchResults struct {
	Status     string   `json:"status"`
	Memories   []memory `json:"memories"`
	RawMatches []struct {
		ID    string  `json:"id"`
		Score float64 `json:"score"`
	} `json:"rawMatches"`
}

// deletion answers DELETE /memory/{id}.
type deletion struct {
	Status  string `json:"status"`
	Deleted bool   `json:"deleted"`
}

func (r reply) created() (c creation)     { r.decode(&c); return c }
func (r reply) page() (p memoryPage)      { r.decode(&p); return p }
func (r reply) search() (s searchResults) { r.decode(&s); return s }
func (r reply) deleted() (d deletion)     { r.decode(&d); return d }

// memory is the memory of a GET or PATCH answer.
func (r reply) memory() memory {
	var m struct {
		Memory memory `json:"memory"`
	}
	r.decode(&m)
	return m.Memory
}

// apiError is the body as a contract error (contract §3); wantError checks
// that it is one.
func (r reply) apiError() (e contract.Error) { r.decode(&e); return e }

// wantAPIError asserts that r is a contract error of wantCode (exactly
// status, message and code, as JSON, with an X-Request-Id) and returns it.
func wantAPIError(t testing.TB, r reply, wantCode int) contract.Error {
	t.Helper()
	if r.status != wantCode {
		t.Fatalf("status %d, want %d; body %s", r.status, wantCode, r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var fields map[string]any
	if err := json.Unmarshal(r.raw, &fields); err != nil {
		t.Fatalf("body is not JSON: %s", r.raw)
	}
	if len(fields) != 3 {
		t.Errorf("body has %d fields, want exactly status, message, code: %s", len(fields), r.raw)
	}
	var e contract.Error
	_ = json.Unmarshal(r.raw, &e)
	if e.Code != wantCode || e.Status != contract.StatusText(wantCode) || e.Message == "" {
		t.Errorf("body %s does not match status %d", r.raw, wantCode)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the error response")
	}
	return e
}

// getJSONError is wantAPIError for a response read by hand (from a raw
// connection); it closes the body.
func getJSONError(t testing.TB, resp *http.Response, wantCode int) contract.Error {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return wantAPIError(t, reply{t: t, status: resp.StatusCode, header: resp.Header, raw: raw}, wantCode)
}

// The console API's answers (contract §9).

// consoleKey is a key as the console API shows it.
type consoleKey struct {
	ID             string   `json:"id"`
	Key            string   `json:"key"` // only right after create and reroll
	Name           string   `json:"name"`
	OrganizationID string   `json:"organizationId"`
	UserID         string   `json:"userId"`
	Enabled        bool     `json:"enabled"`
	Permissions    []string `json:"permissions"`
}

// session answers sign-in and GET /auth/session.
type session struct {
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	ActiveOrganizationID *string `json:"activeOrganizationId"`
}

// activeOrganization is "" when none is chosen (null).
func (s session) activeOrganization() string {
	if s.ActiveOrganizationID == nil {
		return ""
	}
	return *s.ActiveOrganizationID
}

// usageReport answers GET /console/api/usage.
type usageReport struct {
	Labels  []string           `json:"labels"`
	Series  map[string][]int64 `json:"series"`
	Summary struct {
		Total        int64 `json:"total"`
		MemoryCreate int64 `json:"memory_create"`
		Success      int64 `json:"success"`
		Error        int64 `json:"error"`
		RateLimited  int64 `json:"rate_limited"`
	} `json:"summary"`
}

// key is the key of a create, reroll or show answer.
func (r reply) key() consoleKey {
	var k struct {
		Key consoleKey `json:"key"`
	}
	r.decode(&k)
	return k.Key
}

func (r reply) keys() []consoleKey {
	var k struct {
		Keys []consoleKey `json:"keys"`
	}
	r.decode(&k)
	return k.Keys
}

// organizationID is the id of the organization an answer names.
func (r reply) organizationID() string {
	var o struct {
		Organization struct {
			ID string `json:"id"`
		} `json:"organization"`
	}
	r.decode(&o)
	return o.Organization.ID
}

func (r reply) session() (s session)   { r.decode(&s); return s }
func (r reply) usage() (u usageReport) { r.decode(&u); return u }
