package tests

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

const (
	bkOrg   = "3b1f7c9e-5d2a-4e8b-9c1d-2a3b4c5d6e7f"
	bkOther = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
)

// bkClient signs requests as the gateway would for one backend process.
type bkClient struct {
	t      *testing.T
	url    string
	signer *contract.Signer
}

func newBkClient(t *testing.T, url, secret string) *bkClient {
	s, err := contract.NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return &bkClient{t: t, url: url, signer: s}
}

// do sends a signed request for org/user (unsigned when org is "") with a
// JSON body; the answer must be JSON with an X-Request-Id.
func (c *bkClient) do(method, path, body, org, user string) reply {
	c.t.Helper()
	opts := []callOption{withJSON(body)}
	if org != "" {
		id := contract.Identity{OrganizationID: org, UserID: user, KeyID: "key-" + user, Credential: contract.CredentialKey}
		opts = append(opts, signedAs(c.signer, id, contract.BodySHA256([]byte(body))))
	}
	r := call(c.t, method, c.url+path, opts...)
	if r.header.Get("X-Request-Id") == "" {
		c.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	var obj map[string]any
	if err := json.Unmarshal(r.raw, &obj); err != nil {
		c.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, r.status, r.raw)
	}
	return r
}

func (c *bkClient) create(org, user, text, extra string) string {
	c.t.Helper()
	b, _ := json.Marshal(text)
	r := c.do("POST", "/api/v1/memory", `{"text":`+string(b)+extra+`}`, org, user)
	if r.status != 201 {
		c.t.Fatalf("create: %v", r)
	}
	return r.created().MemoryID
}

// on is c for a subtest.
func (c *bkClient) on(t *testing.T) *bkClient { return &bkClient{t: t, url: c.url, signer: c.signer} }

// get is GET /api/v1/memory/{id} for org/user.
func (c *bkClient) get(id, org, user string) reply {
	c.t.Helper()
	return c.do("GET", "/api/v1/memory/"+id, "", org, user)
}

// search is POST /api/v1/memory/search with body for org/user.
func (c *bkClient) search(body, org, user string) searchResults {
	c.t.Helper()
	return c.do("POST", "/api/v1/memory/search", body, org, user).search()
}

// bkEnv is a backend's environment. The drain delay is 0 so that tests
// stop replicas at once; the SIGTERM test sets its own.
func bkEnv(dbURL, secret, keys string) map[string]string {
	return map[string]string{"AZEN_DATABASE_URL": dbURL, "AZEN_GATEWAY_SECRET": secret, "AZEN_ENCRYPTION_KEYS": keys,
		"AZEN_BACKEND_DRAIN_DELAY": "0s"}
}

// TestBackendBinary runs the real azen-backend against one shared
// PostgreSQL server, a fresh database per case.
func TestBackendBinary(t *testing.T) {
	pg := testenv.StartPostgres(t)

	t.Run("an existing client's flow: create, dedup, list all pages, search, patch, delete", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		b := testenv.StartBackend(t, bkEnv(pg.CreateDatabase(t), secret, testenv.EncryptionKeys("k1")))
		c := newBkClient(t, b.URL, secret)
		var ids []string
		for i := range 12 {
			ids = append(ids, c.create(bkOrg, "alice", fmt.Sprintf("note %d about the Lighthouse keeper", i), ""))
		}
		first := c.create(bkOrg, "bob", "Bob likes sailing boats", `,"dedupKey":"bob-1","metadata":{"tag":"hobby"}`)
		// Each rule runs on what the ones before it left.
		t.Run("a known dedupKey answers 200 with the stored memory's id", func(t *testing.T) {
			c := c.on(t)
			r := c.do("POST", "/api/v1/memory", `{"text":"again","dedupKey":"bob-1"}`, bkOrg, "alice")
			if r.status != 200 || !r.created().Duplicated || r.created().MemoryID != first {
				t.Errorf("dedup: %v", r)
			}
		})
		t.Run("pages list every memory of the organization once", func(t *testing.T) {
			c := c.on(t)
			seen := map[string]bool{}
			for page := 1; ; page++ {
				r := c.do("GET", fmt.Sprintf("/api/v1/memory?page=%d&per=5", page), "", bkOrg, "alice")
				p := r.page()
				if r.status != 200 || p.TotalCount != 13 || p.TotalPages != 3 {
					t.Fatalf("page %d: %v", page, r)
				}
				for _, m := range p.Memories {
					seen[m.ID] = true
				}
				if page == 3 {
					break
				}
			}
			if len(seen) != 13 {
				t.Errorf("pages listed %d distinct memories, want 13", len(seen))
			}
		})
		t.Run("userId filters the list", func(t *testing.T) {
			c := c.on(t)
			if r := c.do("GET", "/api/v1/memory?userId=bob", "", bkOrg, "alice"); r.status != 200 || r.page().TotalCount != 1 {
				t.Errorf("userId filter: %v", r)
			}
		})
		t.Run("search ignores case and scores the memory it returns", func(t *testing.T) {
			c := c.on(t)
			r := c.do("POST", "/api/v1/memory/search", `{"query":"SAILING boats","topK":3}`, bkOrg, "carol")
			if found := r.search(); r.status != 200 || len(found.Memories) != 1 || found.RawMatches[0].ID != first {
				t.Errorf("search: %v", r)
			}
		})
		t.Run("search filters by userId and honours topK", func(t *testing.T) {
			c := c.on(t)
			r := c.do("POST", "/api/v1/memory/search", `{"query":"lighthouse","topK":50,"userId":"alice"}`, bkOrg, "carol")
			if n := len(r.search().Memories); r.status != 200 || n != 12 {
				t.Errorf("search by user: %d, %d results", r.status, n)
			}
		})
		t.Run("another organization cannot read a memory", func(t *testing.T) {
			c := c.on(t)
			if code := c.get(first, bkOther, "eve").status; code != 404 {
				t.Errorf("another organization reads: %d", code)
			}
		})
		t.Run("a patch replaces the text and its search terms", func(t *testing.T) {
			c := c.on(t)
			r := c.do("PATCH", "/api/v1/memory/"+first, `{"text":"Bob likes mountains"}`, bkOrg, "bob")
			if r.status != 200 || r.memory().Content != "Bob likes mountains" {
				t.Errorf("patch: %v", r)
			}
			if found := c.search(`{"query":"sailing"}`, bkOrg, "bob"); len(found.Memories) != 0 {
				t.Errorf("old text still searchable: %+v", found)
			}
		})
		t.Run("deleted memories leave search, and a second delete is 404", func(t *testing.T) {
			c := c.on(t)
			for _, id := range ids {
				if r := c.do("DELETE", "/api/v1/memory/"+id, "", bkOrg, "alice"); r.status != 200 {
					t.Fatalf("delete: %v", r)
				}
			}
			if found := c.search(`{"query":"lighthouse"}`, bkOrg, "alice"); len(found.Memories) != 0 {
				t.Errorf("deleted memories searchable: %+v", found)
			}
			if code := c.do("DELETE", "/api/v1/memory/"+ids[0], "", bkOrg, "alice").status; code != 404 {
				t.Errorf("second delete: %d", code)
			}
		})
	})

	t.Run("requests not signed by the gateway are 401", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		b := testenv.StartBackend(t, bkEnv(pg.CreateDatabase(t), secret, testenv.EncryptionKeys("k1")))
		for name, c := range map[string]*bkClient{
			"unsigned":                   newBkClient(t, b.URL, secret),
			"signed with a wrong secret": newBkClient(t, b.URL, testenv.GatewaySecret()),
		} {
			org := bkOrg
			if name == "unsigned" {
				org = ""
			}
			opts := []callOption{withHeader(contract.HeaderOrganizationID, bkOrg)} // a forged, unsigned identity
			if org != "" {
				opts = append(opts, signedAs(c.signer, contract.Identity{OrganizationID: org, UserID: "u", KeyID: "k", Credential: contract.CredentialKey}, contract.EmptyBodySHA256))
			}
			e := wantAPIError(t, call(t, "GET", b.URL+"/api/v1/memory", opts...), 401)
			if e.Status != "unauthorized" {
				t.Errorf("%s: %v", name, e)
			}
		}
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			if code := call(t, "GET", b.URL+p).status; code != 200 {
				t.Errorf("%s: %d", p, code)
			}
		}
	})

	t.Run("replicas started together on one empty database all come up", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		env := bkEnv(pg.CreateDatabase(t), secret, testenv.EncryptionKeys("k1"))
		_, bin := testenv.Binaries(t)
		var urls []string
		var procs []*testenv.Process
		for i := range 4 {
			addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			e := map[string]string{"AZEN_BACKEND_ADDR": addr}
			for k, v := range env {
				e[k] = v
			}
			procs = append(procs, testenv.StartProcess(t, fmt.Sprint("replica-", i), bin, nil, e))
			urls = append(urls, "http://"+addr)
		}
		for i, u := range urls {
			waitFor(t, "replica healthy", func() bool {
				if procs[i].Exited() {
					t.Fatalf("replica %d exited:\n%s", i, procs[i].Output())
				}
				r, err := tryCall("GET", u+"/readyz")
				return err == nil && r.status == 200
			})
		}
		// A memory written through one replica is read through every other.
		id := newBkClient(t, urls[0], secret).create(bkOrg, "u", "shared by replicas", "")
		for _, u := range urls[1:] {
			if code := newBkClient(t, u, secret).get(id, bkOrg, "u").status; code != 200 {
				t.Errorf("%s: %d", u, code)
			}
		}
	})

	t.Run("pg_dump of the database holds no word of any memory", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		dbURL := pg.CreateDatabase(t)
		b := testenv.StartBackend(t, bkEnv(dbURL, secret, testenv.EncryptionKeys("k1")))
		c := newBkClient(t, b.URL, secret)
		words := []string{"Xylophone", "marmalade", "Quixotic", "zeppelin", "Blueberry", "tangerine"}
		c.create(bkOrg, "u", words[0]+" and "+words[1]+" on Tuesday", `,"dedupKey":"`+words[4]+`","metadata":{"note":"`+words[2]+`","`+words[5]+`":1}`)
		id := c.create(bkOrg, "u", "temporary", "")
		c.do("PATCH", "/api/v1/memory/"+id, `{"text":"`+words[3]+` flight"}`, bkOrg, "u")
		if found := c.search(`{"query":"zeppelin"}`, bkOrg, "u"); len(found.Memories) != 1 {
			t.Fatalf("search: %+v", found)
		}
		dump := strings.ToLower(pg.Dump(t, dbURL))
		if !strings.Contains(dump, "memory_terms") {
			t.Fatalf("dump lacks the backend's tables:\n%.2000s", dump)
		}
		for _, w := range append(words, "tuesday", "flight") {
			if strings.Contains(dump, strings.ToLower(w)) {
				t.Errorf("%q appears in pg_dump", w)
			}
		}
	})

	t.Run("SIGTERM drains: readyz fails while requests are served, in-flight ones finish, exit 0", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		env := bkEnv(pg.CreateDatabase(t), secret, testenv.EncryptionKeys("k1"))
		env["AZEN_BACKEND_DRAIN_DELAY"] = "1m" // ended below by a second signal
		b := testenv.StartBackend(t, env)
		c := newBkClient(t, b.URL, secret)
		body := []byte(`{"text":"written during shutdown"}`)
		req, _ := http.NewRequest("POST", b.URL+"/api/v1/memory", bytes.NewReader(body))
		c.signer.SignRequest(req, contract.Identity{OrganizationID: bkOrg, UserID: "u", KeyID: "k", Credential: contract.CredentialKey}, contract.BodySHA256(body), time.Now())
		conn, err := net.Dial("tcp", b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Send the headers and half the body: the request is now in flight.
		var head bytes.Buffer
		fmt.Fprintf(&head, "POST /api/v1/memory HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nContent-Type: application/json\r\n", b.Addr, len(body))
		for k, v := range req.Header {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v[0])
		}
		head.WriteString("\r\n")
		head.Write(body[:10])
		if _, err := conn.Write(head.Bytes()); err != nil {
			t.Fatal(err)
		}
		waitForLog(t, b.Process, `"listening"`)
		b.Signal(syscall.SIGTERM)
		waitForLog(t, b.Process, "draining")
		wantAPIError(t, call(t, "GET", b.URL+"/readyz"), 500)
		if r := c.do("GET", "/api/v1/memory", "", bkOrg, "u"); r.status != 200 {
			t.Errorf("API during the drain: %v", r)
		}
		b.Signal(syscall.SIGTERM) // a second signal ends the drain
		waitForLog(t, b.Process, "shutting down")
		if _, err := conn.Write(body[10:]); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), req)
		if err != nil {
			t.Fatalf("in-flight request lost: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Errorf("in-flight request: %d", resp.StatusCode)
		}
		if err := b.Wait(30 * time.Second); err != nil {
			t.Errorf("exit: %v\n%s", err, b.Output())
		}
		if !strings.Contains(b.Output(), `"stopped"`) {
			t.Errorf("no clean stop in the log:\n%s", b.Output())
		}
	})

	t.Run("rotate-keys re-encrypts every memory while a replica serves", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		dbURL := pg.CreateDatabase(t)
		oldKey, newKey := testenv.EncryptionKeys("old"), testenv.EncryptionKeys("new")
		b := testenv.StartBackend(t, bkEnv(dbURL, secret, oldKey))
		c := newBkClient(t, b.URL, secret)
		var ids []string
		for i := range 30 {
			ids = append(ids, c.create(bkOrg, "u", fmt.Sprintf("rotation memory number%d", i), fmt.Sprintf(`,"dedupKey":"r%d"`, i)))
		}
		b.Signal(syscall.SIGTERM)
		if err := b.Wait(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		// Step 2 of the documented procedure: the new key first, the old one still known.
		b2 := testenv.StartBackend(t, bkEnv(dbURL, secret, newKey+","+oldKey))
		c2 := newBkClient(t, b2.URL, secret)
		stdout, stderr, err := testenv.BackendCommand(t, bkEnv(dbURL, "", newKey+","+oldKey), "rotate-keys", "--batch", "7")
		if err != nil {
			t.Fatalf("rotate-keys: %v\n%s\n%s", err, stdout, stderr)
		}
		if !strings.Contains(stdout, `"memories":30`) {
			t.Errorf("rotate-keys output: %s", stdout)
		}
		if code := c2.get(ids[3], bkOrg, "u").status; code != 200 {
			t.Errorf("read during rotation window: %d", code)
		}
		b2.Signal(syscall.SIGTERM)
		_ = b2.Wait(30 * time.Second)
		// Step 3: the old key removed; everything still reads, searches and dedups.
		b3 := testenv.StartBackend(t, bkEnv(dbURL, secret, newKey))
		c3 := newBkClient(t, b3.URL, secret)
		for _, id := range ids {
			if r := c3.get(id, bkOrg, "u"); r.status != 200 {
				t.Fatalf("get after rotation: %v", r)
			}
		}
		if found := c3.search(`{"query":"number17"}`, bkOrg, "u"); len(found.Memories) != 1 {
			t.Errorf("search after rotation: %+v", found)
		}
		if r := c3.do("POST", "/api/v1/memory", `{"text":"x","dedupKey":"r9"}`, bkOrg, "u"); r.status != 200 || r.created().MemoryID != ids[9] {
			t.Errorf("dedup after rotation: %v", r)
		}
	})

	t.Run("a row whose key is not configured is a logged 500", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		dbURL := pg.CreateDatabase(t)
		b := testenv.StartBackend(t, bkEnv(dbURL, secret, testenv.EncryptionKeys("k1")))
		id := newBkClient(t, b.URL, secret).create(bkOrg, "u", "sealed with k1", "")
		b.Signal(syscall.SIGTERM)
		_ = b.Wait(30 * time.Second)
		b2 := testenv.StartBackend(t, bkEnv(dbURL, secret, testenv.EncryptionKeys("k2")))
		signed := signedAs(newBkClient(t, b2.URL, secret).signer, contract.Identity{OrganizationID: bkOrg, UserID: "u", KeyID: "k", Credential: contract.CredentialKey}, contract.EmptyBodySHA256)
		r := call(t, "GET", b2.URL+"/api/v1/memory/"+id, withHeader("X-Request-Id", "trace-me-123"), signed)
		if e := wantAPIError(t, r, 500); e.Message != contract.MessageInternal {
			t.Errorf("500 says %q", e.Message)
		}
		waitForLog(t, b2.Process, `"request_id":"trace-me-123"`)
		if !strings.Contains(b2.Output(), "encryption key not configured") || strings.Contains(b2.Output(), "sealed with") {
			t.Errorf("log:\n%s", b2.Output())
		}
	})

	// Last, because it stops the shared server.
	t.Run("a database outage is a clean 500 and readyz says so; recovery needs no restart", func(t *testing.T) {
		secret := testenv.GatewaySecret()
		dbURL := pg.CreateDatabase(t)
		b := testenv.StartBackend(t, bkEnv(dbURL, secret, testenv.EncryptionKeys("k1")))
		c := newBkClient(t, b.URL, secret)
		id := c.create(bkOrg, "u", "before the outage", "")
		// The test server commits asynchronously and Stop is a crash: write
		// everything to disk first so the restart finds the tables.
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CHECKPOINT"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		pg.Stop()
		for _, req := range []struct{ method, path, body string }{
			{"GET", "/api/v1/memory/" + id, ""},
			{"POST", "/api/v1/memory", `{"text":"during the outage"}`},
			{"POST", "/api/v1/memory/search", `{"query":"outage"}`},
			{"GET", "/api/v1/memory", ""},
		} {
			r := c.do(req.method, req.path, req.body, bkOrg, "u")
			if e := r.apiError(); r.status != 500 || e.Status != "internal_server_error" || e.Message != contract.MessageInternal {
				t.Errorf("%s %s: %v", req.method, req.path, r)
			}
		}
		wantAPIError(t, call(t, "GET", b.URL+"/readyz"), 500)
		if code := call(t, "GET", b.URL+"/healthz").status; code != 200 {
			t.Errorf("healthz during the outage: %d", code)
		}
		pg.Start()
		waitFor(t, "backend ready again", func() bool {
			r, err := tryCall("GET", b.URL+"/readyz")
			return err == nil && r.status == 200
		})
		waitFor(t, "API serving again", func() bool {
			return c.get(id, bkOrg, "u").status == 200
		})
		if b.Exited() {
			t.Errorf("backend exited:\n%s", b.Output())
		}
	})
}

// TestBackendSQLiteFileHoldsNoPlaintext runs the embedded default (an SQLite
// file) and reads the file and its WAL byte by byte.
func TestBackendSQLiteFileHoldsNoPlaintext(t *testing.T) {
	secret := testenv.GatewaySecret()
	path := filepath.Join(t.TempDir(), "azen.db")
	b := testenv.StartBackend(t, bkEnv("sqlite:"+path, secret, testenv.EncryptionKeys("k1")))
	c := newBkClient(t, b.URL, secret)
	c.create(bkOrg, "u", "Aardvark hibernation schedule", `,"metadata":{"Pomegranate":"Walrus"}`)
	if found := c.search(`{"query":"aardvark"}`, bkOrg, "u"); len(found.Memories) != 1 {
		t.Fatalf("search: %+v", found)
	}
	b.Signal(syscall.SIGTERM)
	if err := b.Wait(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if err == nil {
			all = append(all, bytes.ToLower(data)...)
		}
	}
	if !bytes.Contains(all, []byte("memory_terms")) {
		t.Fatal("the file does not hold the backend's tables")
	}
	for _, w := range []string{"aardvark", "hibernation", "schedule", "pomegranate", "walrus"} {
		if bytes.Contains(all, []byte(w)) {
			t.Errorf("%q appears in the SQLite file", w)
		}
	}
}

// TestBackendStartupErrors: a bad variable stops the process with one line
// naming it, and no secret in it.
func TestBackendStartupErrors(t *testing.T) {
	secret := testenv.GatewaySecret()
	keys := testenv.EncryptionKeys("k1")
	db := "sqlite:" + filepath.Join(t.TempDir(), "a.db")
	cases := []struct {
		name, variable string
		env            map[string]string
	}{
		{"missing secret", "AZEN_GATEWAY_SECRET", map[string]string{"AZEN_DATABASE_URL": db, "AZEN_ENCRYPTION_KEYS": keys}},
		{"short secret", "AZEN_GATEWAY_SECRET", bkEnv(db, "short-secret", keys)},
		{"missing keys", "AZEN_ENCRYPTION_KEYS", map[string]string{"AZEN_DATABASE_URL": db, "AZEN_GATEWAY_SECRET": secret}},
		{"key of 16 bytes", "AZEN_ENCRYPTION_KEYS", bkEnv(db, secret, "k1:AAAAAAAAAAAAAAAAAAAAAA==")},
		{"bad database URL", "AZEN_DATABASE_URL", bkEnv("mysql://x", secret, keys)},
		{"bad drain delay", "AZEN_BACKEND_DRAIN_DELAY", func() map[string]string {
			e := bkEnv(db, secret, keys)
			e["AZEN_BACKEND_DRAIN_DELAY"] = "forever"
			return e
		}()},
		{"bad listen address", "AZEN_BACKEND_ADDR", func() map[string]string {
			e := bkEnv(db, secret, keys)
			e["AZEN_BACKEND_ADDR"] = "nowhere"
			return e
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := testenv.BackendCommand(t, c.env)
			if err == nil {
				t.Fatal("started anyway")
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.variable) || strings.Contains(stderr, "panic") {
				t.Errorf("stderr %q does not name %s in one line", stderr, c.variable)
			}
			if strings.Contains(stderr, secret) || strings.Contains(stderr, strings.SplitN(keys, ":", 2)[1]) {
				t.Errorf("stderr leaks a secret: %q", stderr)
			}
		})
	}
}
