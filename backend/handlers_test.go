package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// apiEnv is a backend server on a fresh SQLite file behind httptest.
type apiEnv struct {
	t      *testing.T
	srv    *httptest.Server
	signer *contract.Signer
	logs   *testenv.SyncBuffer
	store  *Store
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	store := mustOpenStore(t, sqliteURL(t), mustKeys(t, testenv.EncryptionKeys("k1")))
	signer, err := contract.NewSigner(testenv.GatewaySecret())
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	srv := httptest.NewServer(newServer(store, signer, logger))
	t.Cleanup(srv.Close)
	return &apiEnv{t: t, srv: srv, signer: signer, logs: logs, store: store}
}

// do sends a request signed for org/user (org "" sends it unsigned).
func (e *apiEnv) do(method, path, body, org, user string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if org != "" {
		e.signer.SignRequest(req, contract.Identity{OrganizationID: org, UserID: user, KeyID: "key-1", Credential: contract.CredentialKey},
			contract.BodySHA256([]byte(body)), time.Now())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
	}
	return resp.StatusCode, out, resp.Header
}

// mustCreate stores text for orgA/u1 and returns the id.
func (e *apiEnv) mustCreate(text string) string {
	e.t.Helper()
	code, body, _ := e.do("POST", "/api/v1/memory", `{"text":`+jsonString(text)+`}`, orgA, "u1")
	if code != 201 {
		e.t.Fatalf("create: %d %v", code, body)
	}
	return body["memoryId"].(string)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func keys(m map[string]any) string {
	return strings.Join(slices.Sorted(maps.Keys(m)), ",")
}

// TestAPIRules has one row per rule of contract §8 and §3 that a single
// request shows: method, path, body, expected status and a piece of the
// error message (which must name the field at fault).
func TestAPIRules(t *testing.T) {
	e := newAPIEnv(t)
	id := e.mustCreate("an existing memory")
	long := func(n int) string { return strings.Repeat("é", n) }
	rules := []struct {
		name, method, path, body string
		unsigned                 bool
		code                     int
		msg                      string
	}{
		{"create: text of 10000 characters is accepted", "POST", "/api/v1/memory", `{"text":"` + long(10000) + `"}`, false, 201, ""},
		{"create: text over 10000 characters", "POST", "/api/v1/memory", `{"text":"` + long(10001) + `"}`, false, 400, "text must be 1 to 10000 characters long, got 10001"},
		{"create: empty text", "POST", "/api/v1/memory", `{"text":""}`, false, 400, "text must be 1 to 10000"},
		{"create: text missing", "POST", "/api/v1/memory", `{"dedupKey":"a"}`, false, 400, "text is required"},
		{"create: text null", "POST", "/api/v1/memory", `{"text":null}`, false, 400, "text must be a string"},
		{"create: text of wrong type", "POST", "/api/v1/memory", `{"text":42}`, false, 400, "text must be a string"},
		{"create: dedupKey over 255 characters", "POST", "/api/v1/memory", `{"text":"a","dedupKey":"` + long(256) + `"}`, false, 400, "dedupKey must be 1 to 255"},
		{"create: empty dedupKey", "POST", "/api/v1/memory", `{"text":"a","dedupKey":""}`, false, 400, "dedupKey must be 1 to 255"},
		{"create: metadata not an object", "POST", "/api/v1/memory", `{"text":"a","metadata":[1]}`, false, 400, "metadata must be a JSON object"},
		{"create: metadata over 16 KiB", "POST", "/api/v1/memory", `{"text":"a","metadata":{"k":"` + strings.Repeat("x", 16400) + `"}}`, false, 400, "metadata must be at most 16384 bytes"},
		{"create: unknown field", "POST", "/api/v1/memory", `{"text":"a","colour":"red"}`, false, 400, `Unknown field "colour"`},
		{"create: field names are case-sensitive", "POST", "/api/v1/memory", `{"Text":"a"}`, false, 400, `Unknown field "Text"`},
		{"create: duplicate field", "POST", "/api/v1/memory", `{"text":"a","text":"b"}`, false, 400, `Field "text" appears more than once`},
		{"create: malformed JSON", "POST", "/api/v1/memory", `{"text":`, false, 400, "Malformed JSON"},
		{"create: trailing data", "POST", "/api/v1/memory", `{"text":"a"} {}`, false, 400, "single JSON object"},
		{"create: body not an object", "POST", "/api/v1/memory", `["text"]`, false, 400, "must be a JSON object"},
		{"create: empty body", "POST", "/api/v1/memory", ``, false, 400, "Request body is required"},
		{"create: body over 1 MiB", "POST", "/api/v1/memory", `{"text":"` + strings.Repeat("a", 1<<20) + `"}`, false, 400, "must not exceed 1 MiB"},
		{"get: invalid UUID", "GET", "/api/v1/memory/not-a-uuid", "", false, 400, `id must be a UUID, got "not-a-uuid"`},
		{"get: unknown id", "GET", "/api/v1/memory/0190a000-0000-7000-8000-000000000000", "", false, 404, "Memory not found"},
		{"get: another organization's memory", "GET", "/api/v1/memory/" + id, "", false, 404, "Memory not found"},
		{"list: page 0", "GET", "/api/v1/memory?page=0", "", false, 400, "page must be from 1 to"},
		{"list: page not a number", "GET", "/api/v1/memory?page=two", "", false, 400, "page must be an integer"},
		{"list: per 101 is not clamped", "GET", "/api/v1/memory?per=101", "", false, 400, "per must be from 1 to 100, got 101"},
		{"list: per 0", "GET", "/api/v1/memory?per=0", "", false, 400, "per must be from 1 to 100, got 0"},
		{"list: unknown parameter", "GET", "/api/v1/memory?limit=5", "", false, 400, `Unknown query parameter "limit"`},
		{"list: repeated parameter", "GET", "/api/v1/memory?per=5&per=6", "", false, 400, "per must be given at most once"},
		{"list: bad cursor", "GET", "/api/v1/memory?cursor=xyz", "", false, 400, "cursor is not a cursor"},
		{"list: NUL in userId", "GET", "/api/v1/memory?userId=a%00b", "", false, 400, "userId must not contain control characters"},
		{"search: control character in userId", "POST", "/api/v1/memory/search", `{"query":"tea","userId":"a\u0000b"}`, false, 400, "userId must not contain control characters"},
		{"create: invalid UTF-8 is refused, not replaced", "POST", "/api/v1/memory", "{\"text\":\"caf\xe9\"}", false, 400, "not valid UTF-8"},
		{"create: lone high surrogate is refused, not stored as U+FFFD", "POST", "/api/v1/memory", `{"text":"\ud800x"}`, false, 400, `text contains an unpaired UTF-16 surrogate (\ud800)`},
		{"create: lone low surrogate", "POST", "/api/v1/memory", `{"text":"a\uDC00"}`, false, 400, `text contains an unpaired UTF-16 surrogate (\udc00)`},
		{"create: high surrogate at the end", "POST", "/api/v1/memory", `{"text":"a\ud83d"}`, false, 400, "text contains an unpaired UTF-16 surrogate"},
		{"create: high surrogate before a non-surrogate escape", "POST", "/api/v1/memory", `{"text":"\ud83d\u0041"}`, false, 400, "text contains an unpaired UTF-16 surrogate"},
		{"create: lone surrogate in metadata", "POST", "/api/v1/memory", `{"text":"a","metadata":{"k":["\udfff"]}}`, false, 400, "metadata contains an unpaired UTF-16 surrogate"},
		{"search: lone surrogate in query", "POST", "/api/v1/memory/search", `{"query":"\ud800"}`, false, 400, "query contains an unpaired UTF-16 surrogate"},
		{"patch: a surrogate pair is one character", "PATCH", "/api/v1/memory/" + id, `{"text":"\ud83d\ude00 an existing memory"}`, false, 200, ""},
		{"patch: an escaped backslash before u is no surrogate", "PATCH", "/api/v1/memory/" + id, `{"text":"C:\\ud800 an existing memory"}`, false, 200, ""},
		{"list: userId that is not UTF-8 says so", "GET", "/api/v1/memory?userId=%ff", "", false, 400, "userId must be UTF-8 text"},
		{"list: malformed percent-escape names it", "GET", "/api/v1/memory?per=%zz", "", false, 400, `Malformed query string: invalid URL escape "%zz"`},
		{"list: cursor with page", "GET", "/api/v1/memory?cursor=&page=2", "", false, 400, "cursor cannot be combined with page"},
		{"list: empty userId", "GET", "/api/v1/memory?userId=", "", false, 400, "userId must be 1 to 255"},
		{"patch: neither text nor metadata", "PATCH", "/api/v1/memory/" + id, `{}`, false, 400, "text or metadata is required"},
		{"patch: text null", "PATCH", "/api/v1/memory/" + id, `{"text":null}`, false, 400, "text must be a string"},
		{"patch: unknown field", "PATCH", "/api/v1/memory/" + id, `{"dedupKey":"x"}`, false, 400, `Unknown field "dedupKey"`},
		{"patch: invalid UUID", "PATCH", "/api/v1/memory/123", `{"text":"a"}`, false, 400, "id must be a UUID"},
		{"delete: invalid UUID", "DELETE", "/api/v1/memory/123", "", false, 400, "id must be a UUID"},
		{"search: query missing", "POST", "/api/v1/memory/search", `{"topK":5}`, false, 400, "query is required"},
		{"search: query over 1000 characters", "POST", "/api/v1/memory/search", `{"query":"` + long(1001) + `"}`, false, 400, "query must be 1 to 1000 characters long, got 1001"},
		{"search: topK 51 is not clamped", "POST", "/api/v1/memory/search", `{"query":"a","topK":51}`, false, 400, "topK must be from 1 to 50, got 51"},
		{"search: topK 0", "POST", "/api/v1/memory/search", `{"query":"a","topK":0}`, false, 400, "topK must be from 1 to 50, got 0"},
		{"search: topK not an integer", "POST", "/api/v1/memory/search", `{"query":"a","topK":2.5}`, false, 400, "topK must be an integer"},
		{"search: topK as a string", "POST", "/api/v1/memory/search", `{"query":"a","topK":"5"}`, false, 400, "topK must be an integer"},
		{"search: userId of wrong type", "POST", "/api/v1/memory/search", `{"query":"a","userId":7}`, false, 400, "userId must be a string"},
		{"unsigned API request", "GET", "/api/v1/memory", "", true, 401, "not signed"},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", false, 404, "Unknown endpoint GET /api/v1/nothing"},
		{"unknown method on a known path", "PUT", "/api/v1/memory", "", false, 404, "Unknown endpoint PUT /api/v1/memory"},
		{"unknown endpoint without signature", "GET", "/", "", true, 404, "Unknown endpoint"},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			org := orgB
			if strings.HasPrefix(r.name, "create") || strings.HasPrefix(r.name, "patch") {
				org = orgA
			}
			if r.unsigned {
				org = ""
			}
			code, body, hdr := e.do(r.method, r.path, r.body, org, "u1")
			if code != r.code {
				t.Fatalf("status %d, want %d: %v", code, r.code, body)
			}
			if hdr.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if r.code >= 400 {
				if keys(body) != "code,message,status" || body["code"] != float64(r.code) || body["status"] != contract.StatusText(r.code) {
					t.Errorf("not a contract error body: %v", body)
				}
				if msg, _ := body["message"].(string); !strings.Contains(msg, r.msg) {
					t.Errorf("message %q does not contain %q", msg, r.msg)
				}
			}
		})
	}
	// Nothing a 400 asked for was stored: only the one memory of org A and
	// the one 10000-character memory exist.
	code, body, _ := e.do("GET", "/api/v1/memory", "", orgA, "u1")
	if code != 200 || body["total_count"] != float64(2) {
		t.Errorf("after the bad requests: %d %v", code, body)
	}
}

// TestAPIShapes checks every success body field by field against §8.
func TestAPIShapes(t *testing.T) {
	e := newAPIEnv(t)
	code, body, _ := e.do("POST", "/api/v1/memory", `{"text":"Hello World","dedupKey":"k1","metadata":{"src":"test"}}`, orgA, "u1")
	if code != 201 || keys(body) != "createdAt,embedding,embeddingStatus,memoryId,status" ||
		body["status"] != "success" || body["embedding"] != "completed" || body["embeddingStatus"] != "completed" {
		t.Fatalf("create: %d %v", code, body)
	}
	id := body["memoryId"].(string)
	if _, err := time.Parse(time.RFC3339, body["createdAt"].(string)); err != nil {
		t.Errorf("createdAt: %v", err)
	}

	code, body, _ = e.do("POST", "/api/v1/memory", `{"text":"other","dedupKey":"k1"}`, orgA, "u2")
	if code != 200 || keys(body) != "duplicated,memoryId,message,status" || body["memoryId"] != id || body["duplicated"] != true {
		t.Errorf("duplicate: %d %v", code, body)
	}

	code, body, _ = e.do("GET", "/api/v1/memory/"+strings.ToUpper(id), "", orgA, "u2")
	if code != 200 || keys(body) != "memory,status" {
		t.Fatalf("get: %d %v", code, body)
	}
	m := body["memory"].(map[string]any)
	if keys(m) != "content,createdAt,embedded,id,metadata,updatedAt,userId" || m["id"] != id || m["content"] != "Hello World" ||
		m["embedded"] != true || m["userId"] != "u1" || m["metadata"].(map[string]any)["src"] != "test" {
		t.Errorf("memory object: %v", m)
	}

	e.mustCreate("second")
	code, body, _ = e.do("GET", "/api/v1/memory?per=1", "", orgA, "u1")
	if code != 200 || keys(body) != "memories,nextCursor,page,per,status,total_count,total_pages" ||
		body["page"] != float64(1) || body["per"] != float64(1) || body["total_count"] != float64(2) || body["total_pages"] != float64(2) {
		t.Fatalf("list: %d %v", code, body)
	}
	if first := body["memories"].([]any)[0].(map[string]any); first["content"] != "second" {
		t.Errorf("list is not newest first: %v", first)
	}
	next, _ := body["nextCursor"].(string)
	code, body, _ = e.do("GET", "/api/v1/memory?per=1&cursor="+next, "", orgA, "u1")
	if code != 200 || body["nextCursor"] != nil || body["memories"].([]any)[0].(map[string]any)["id"] != id {
		t.Errorf("cursor page: %d %v", code, body)
	}

	code, body, _ = e.do("POST", "/api/v1/memory/search", `{"query":"hello"}`, orgA, "u9")
	if code != 200 || keys(body) != "memories,rawMatches,status" {
		t.Fatalf("search: %d %v", code, body)
	}
	mems, raws := body["memories"].([]any), body["rawMatches"].([]any)
	if len(mems) != 1 || len(raws) != 1 || raws[0].(map[string]any)["id"] != id || mems[0].(map[string]any)["id"] != id ||
		keys(raws[0].(map[string]any)) != "id,score,values" {
		t.Errorf("search results: %v", body)
	}
	// The SDK's types require rawMatches[].values to be an array.
	if v, ok := raws[0].(map[string]any)["values"].([]any); !ok || len(v) != 0 {
		t.Errorf("rawMatches[0].values = %#v, want an empty array", raws[0].(map[string]any)["values"])
	}

	code, body, _ = e.do("PATCH", "/api/v1/memory/"+id, `{"metadata":null}`, orgA, "u1")
	if code != 200 || body["memory"].(map[string]any)["metadata"] != nil || body["memory"].(map[string]any)["content"] != "Hello World" {
		t.Errorf("patch: %d %v", code, body)
	}

	code, body, _ = e.do("DELETE", "/api/v1/memory/"+id, "", orgA, "u1")
	if code != 200 || keys(body) != "deleted,memoryId,message,status" || body["deleted"] != true || body["memoryId"] != id {
		t.Errorf("delete: %d %v", code, body)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/memory/"+id, "", orgA, "u1"); code != 404 {
		t.Errorf("second delete: %d", code)
	}
}

// TestSignatureRules: every way of not being the gateway is a 401.
func TestSignatureRules(t *testing.T) {
	e := newAPIEnv(t)
	other, _ := contract.NewSigner(testenv.GatewaySecret())
	cases := []struct {
		name string
		sign func(r *http.Request)
	}{
		{"no signature", func(r *http.Request) {}},
		{"signed with another secret", func(r *http.Request) {
			other.SignRequest(r, keyIdentity, contract.EmptyBodySHA256, time.Now())
		}},
		{"signature older than 60 s", func(r *http.Request) {
			e.signer.SignRequest(r, keyIdentity, contract.EmptyBodySHA256, time.Now().Add(-2*time.Minute))
		}},
		{"organization changed after signing", func(r *http.Request) {
			e.signer.SignRequest(r, keyIdentity, contract.EmptyBodySHA256, time.Now())
			r.Header.Set(contract.HeaderOrganizationID, orgB)
		}},
		{"query changed after signing", func(r *http.Request) {
			e.signer.SignRequest(r, keyIdentity, contract.EmptyBodySHA256, time.Now())
			r.URL.RawQuery = "per=100&userId=alice"
		}},
		{"body added after signing", func(r *http.Request) {
			e.signer.SignRequest(r, keyIdentity, contract.EmptyBodySHA256, time.Now())
			r.Body = io.NopCloser(strings.NewReader(`{"text":"forged"}`))
			r.ContentLength = 17
		}},
		{"a session without an organization", func(r *http.Request) {
			e.signer.SignRequest(r, contract.Identity{UserID: "u", KeyID: "s", Credential: contract.CredentialSession}, contract.EmptyBodySHA256, time.Now())
		}},
		{"signed for another path", func(r *http.Request) {
			r2, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/memory/search", nil)
			e.signer.SignRequest(r2, keyIdentity, contract.EmptyBodySHA256, time.Now())
			r.Header = r2.Header
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/memory", nil)
			c.sign(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			want, status := 401, "unauthorized"
			if c.name == "a session without an organization" {
				want, status = 403, "forbidden"
			}
			if resp.StatusCode != want || body["status"] != status || keys(body) != "code,message,status" {
				t.Errorf("%d %v", resp.StatusCode, body)
			}
		})
	}
}

// TestOperationalEndpoints: health, readiness and metrics need no signature.
func TestOperationalEndpoints(t *testing.T) {
	e := newAPIEnv(t)
	e.mustCreate("x")
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body, _ := e.do("GET", p, "", "", ""); code != 200 || body["status"] != "ok" {
			t.Errorf("%s: %d %v", p, code, body)
		}
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`azen_backend_requests_total{code="201",route="POST /api/v1/memory"} 1`,
		`azen_backend_request_duration_seconds_bucket{route="POST /api/v1/memory"`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestDecryptionFailureIsALogged500: the client sees only the generic
// message; the log has the request id and the cause, never the content.
func TestDecryptionFailureIsALogged500(t *testing.T) {
	e := newAPIEnv(t)
	id := e.mustCreate("confidential payroll figures")
	if _, err := e.store.db.Exec(e.store.db.Rebind(`UPDATE memories SET organization_id = ? WHERE id = ?`), orgB, id); err != nil {
		t.Fatal(err)
	}
	code, body, hdr := e.do("GET", "/api/v1/memory/"+id, "", orgB, "u1")
	if code != 500 || body["message"] != contract.MessageInternal || body["status"] != "internal_server_error" {
		t.Fatalf("%d %v", code, body)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, hdr.Get("X-Request-Id")) || !strings.Contains(logs, "decrypt") {
		t.Errorf("log lacks the request id or the cause: %s", logs)
	}
	if strings.Contains(logs, "payroll") {
		t.Errorf("log reveals content: %s", logs)
	}
}

var keyIdentity = contract.Identity{OrganizationID: orgA, UserID: "u", KeyID: "k", Credential: contract.CredentialKey}
