package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// sysStack is the whole system as it is deployed: PostgreSQL, Redis, N
// backend replicas and M gateways running the shipped Caddyfile.
type sysStack struct {
	env      map[string]string // shared by every process and the keys CLI
	backends []*testenv.Backend
	gateways []*testenv.Gateway
}

func startSystem(t *testing.T, nBackends, nGateways int) *sysStack {
	t.Helper()
	return startSystemWith(t, nBackends, nGateways, nil)
}

// startSystemWith is startSystem with the shipped Caddyfile passed through
// edit first (nil: as shipped).
func startSystemWith(t *testing.T, nBackends, nGateways int, edit func(caddyfile string) string) *sysStack {
	t.Helper()
	pg := testenv.StartPostgres(t)
	rd := testenv.StartRedis(t)
	s := &sysStack{env: map[string]string{
		"AZEN_DATABASE_URL":    pg.CreateDatabase(t),
		"AZEN_REDIS_URL":       rd.URL(),
		"AZEN_GATEWAY_SECRET":  testenv.GatewaySecret(),
		"AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1"),
	}}
	addrs := ""
	for i := 0; i < nBackends; i++ {
		b := testenv.StartBackend(t, s.env)
		s.backends = append(s.backends, b)
		addrs += b.Addr + " "
	}
	caddyfile := shippedCaddyfile(t)
	if edit != nil {
		caddyfile = edit(caddyfile)
	}
	gwEnv := map[string]string{"AZEN_BACKENDS": addrs}
	for k, v := range s.env {
		gwEnv[k] = v
	}
	for i := 0; i < nGateways; i++ {
		s.gateways = append(s.gateways, testenv.StartGateway(t, caddyfile, gwEnv))
	}
	return s
}

// sysCall sends a JSON request with an API key; the answer must be JSON.
func sysCall(t *testing.T, method, url, key string, body any) reply {
	t.Helper()
	r, err := sysTry(method, url, key, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	r.t = t
	return r
}

func sysTry(method, url, key string, body any) (reply, error) {
	opts := []callOption{withKey(key), withHeader("Content-Type", "application/json")}
	if body != nil {
		opts = append(opts, withJSON(body))
	}
	return tryJSON(method, url, opts...)
}

// TestSystemThroughTwoGateways is the client's whole journey, as the Azen
// SDK makes it, through both gateways of a two-replica deployment.
func TestSystemThroughTwoGateways(t *testing.T) {
	s := startSystem(t, 2, 2)
	org := testenv.NewUUID()
	key := testenv.CreateKeyFull(t, s.env, "--org", org, "--user", "alice", "--rate", "6000/m", "--burst", "1000")
	otherKey := testenv.CreateKeyFull(t, s.env, "--user", "mallory")
	gw1, gw2 := s.gateways[0].URL+"/api/v1", s.gateways[1].URL+"/api/v1"

	// Create through both gateways.
	texts := []string{
		"Alice prefers green tea in the morning",
		"Alice is allergic to peanuts",
		"The quarterly report is due on Friday",
		"Green tea with jasmine is Alice's favourite",
		"Bob likes espresso",
	}
	ids := map[string]string{}
	for i, text := range texts {
		gw := gw1
		if i%2 == 1 {
			gw = gw2
		}
		r := sysCall(t, "POST", gw+"/memory", key.Key, map[string]any{"text": text, "metadata": map[string]any{"n": i}})
		c := r.created()
		if r.status != 201 || c.Status != "success" || c.MemoryID == "" || c.EmbeddingStatus != "completed" {
			t.Fatalf("create %q: %v", text, r)
		}
		ids[c.MemoryID] = text
	}

	t.Run("dedupKey is honoured across gateways", func(t *testing.T) {
		first := sysCall(t, "POST", gw1+"/memory", key.Key, map[string]any{"text": "dedup me", "dedupKey": "pref:tea"})
		if first.status != 201 {
			t.Fatalf("first: %v", first)
		}
		second := sysCall(t, "POST", gw2+"/memory", key.Key, map[string]any{"text": "dedup me again", "dedupKey": "pref:tea"})
		if second.status != 200 || !second.created().Duplicated || second.created().MemoryID != first.created().MemoryID {
			t.Fatalf("second: %v", second)
		}
		ids[first.created().MemoryID] = "dedup me"
	})

	t.Run("list every page through the other gateway", func(t *testing.T) {
		seen := map[string]bool{}
		for page := 1; ; page++ {
			r := sysCall(t, "GET", fmt.Sprintf("%s/memory?page=%d&per=2", gw2, page), key.Key, nil)
			if r.status != 200 {
				t.Fatalf("page %d: %v", page, r)
			}
			p := r.page()
			for _, m := range p.Memories {
				if m.Content != ids[m.ID] || m.UserID != "alice" || !m.Embedded {
					t.Errorf("memory %+v", m)
				}
				seen[m.ID] = true
			}
			if total := p.TotalCount; total != len(ids) {
				t.Fatalf("total_count %d, want %d", total, len(ids))
			}
			if page >= p.TotalPages {
				break
			}
		}
		if len(seen) != len(ids) {
			t.Fatalf("listed %d memories, want %d", len(seen), len(ids))
		}
	})

	t.Run("search finds the right memories best first", func(t *testing.T) {
		r := sysCall(t, "POST", gw1+"/memory/search", key.Key, map[string]any{"query": "GREEN tea", "topK": 3})
		if r.status != 200 {
			t.Fatalf("%v", r)
		}
		found := r.search()
		if len(found.Memories) != 2 || len(found.RawMatches) != 2 {
			t.Fatalf("search returned %d memories, %d matches: %v", len(found.Memories), len(found.RawMatches), r)
		}
		// The SDK's types require values, an array: read as raw JSON.
		raw, _ := r.fields()["rawMatches"].([]any)
		for i := range found.Memories {
			if found.Memories[i].ID != found.RawMatches[i].ID {
				t.Errorf("rawMatches[%d] does not score memories[%d]", i, i)
			}
			if _, ok := raw[i].(map[string]any)["values"].([]any); !ok {
				t.Errorf("rawMatches[%d].values = %#v, want an array", i, raw[i].(map[string]any)["values"])
			}
		}
	})

	t.Run("another organization sees nothing", func(t *testing.T) {
		for id := range ids {
			r := sysCall(t, "GET", gw1+"/memory/"+id, otherKey.Key, nil)
			if r.status != 404 || r.apiError().Status != "not_found" {
				t.Fatalf("other org GET: %v", r)
			}
			break
		}
		r := sysCall(t, "POST", gw2+"/memory/search", otherKey.Key, map[string]any{"query": "tea"})
		if r.status != 200 || len(r.search().Memories) != 0 {
			t.Fatalf("other org search: %v", r)
		}
	})

	t.Run("update and delete show at once on the other gateway", func(t *testing.T) {
		var id string
		for i, text := range ids {
			if text == texts[4] {
				id = i
			}
		}
		r := sysCall(t, "PATCH", gw1+"/memory/"+id, key.Key, map[string]any{"text": "Bob now prefers matcha"})
		if r.status != 200 || r.memory().Content != "Bob now prefers matcha" {
			t.Fatalf("patch: %v", r)
		}
		r = sysCall(t, "POST", gw2+"/memory/search", key.Key, map[string]any{"query": "matcha"})
		if r.status != 200 || len(r.search().Memories) != 1 {
			t.Fatalf("search after patch: %v", r)
		}
		r = sysCall(t, "DELETE", gw2+"/memory/"+id, key.Key, nil)
		if r.status != 200 || !r.deleted().Deleted {
			t.Fatalf("delete: %v", r)
		}
		if code := sysCall(t, "GET", gw1+"/memory/"+id, key.Key, nil).status; code != 404 {
			t.Fatalf("GET after delete: %d", code)
		}
		if code := sysCall(t, "DELETE", gw1+"/memory/"+id, key.Key, nil).status; code != 404 {
			t.Fatalf("second delete: %d", code)
		}
		r = sysCall(t, "POST", gw1+"/memory/search", key.Key, map[string]any{"query": "matcha"})
		if r.status != 200 || len(r.search().Memories) != 0 {
			t.Fatalf("search after delete: %v", r)
		}
	})

	t.Run("a disabled key stops on both gateways", func(t *testing.T) {
		testenv.Command(t, s.env, "keys", "disable", key.ID)
		deadline := time.Now().Add(time.Second)
		for _, gw := range []string{gw1, gw2} {
			for {
				r := sysCall(t, "GET", gw+"/memory", key.Key, nil)
				if r.status == 403 && r.apiError().Status == "forbidden" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s still answers %d a second after disable", gw, r.status)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
}

// TestSystemLosesNothingWhenAReplicaStops sends steady writes and reads
// through the gateway while one backend replica is stopped with SIGTERM:
// no request may fail and every acknowledged write must be readable after.
func TestSystemLosesNothingWhenAReplicaStops(t *testing.T) {
	s := startSystem(t, 2, 1)
	key := testenv.CreateKeyFull(t, s.env, "--rate", "100000/m", "--burst", "100000")
	api := s.gateways[0].URL + "/api/v1"

	var (
		stop     atomic.Bool
		mu       sync.Mutex
		acked    []string
		failures []string
		requests atomic.Int64
		wg       sync.WaitGroup
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				r, err := sysTry("POST", api+"/memory", key.Key, map[string]any{"text": fmt.Sprintf("worker %d write %d", w, i)})
				requests.Add(1)
				mu.Lock()
				if err != nil || r.status != 201 {
					failures = append(failures, fmt.Sprintf("POST: %v %v", r, err))
				} else {
					acked = append(acked, r.created().MemoryID)
				}
				mu.Unlock()
				r, err = sysTry("GET", api+"/memory?per=5", key.Key, nil)
				requests.Add(1)
				if err != nil || r.status != 200 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("GET: %v %v", r, err))
					mu.Unlock()
				}
			}
		}(w)
	}

	time.Sleep(1500 * time.Millisecond)
	s.backends[0].Signal(syscall.SIGTERM)
	if err := s.backends[0].Wait(30 * time.Second); err != nil {
		t.Errorf("backend did not exit cleanly on SIGTERM: %v", err)
	}
	time.Sleep(1500 * time.Millisecond) // keep the load on the survivor
	stop.Store(true)
	wg.Wait()

	t.Logf("%d requests, %d acknowledged writes", requests.Load(), len(acked))
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed while a replica stopped; first: %s", len(failures), requests.Load(), failures[0])
	}
	if len(acked) < 20 {
		t.Fatalf("only %d writes acknowledged: the load was not steady", len(acked))
	}
	for _, id := range acked {
		if r := sysCall(t, "GET", api+"/memory/"+id, key.Key, nil); r.status != 200 {
			t.Fatalf("acknowledged write %s lost: %v", id, r)
		}
	}
}

// TestSystemEdgeRefusesAbuseCleanly checks the shipped Caddyfile's answers to
// clients that misbehave: each gets a contract error, and none of them can
// take the only backend replica out of rotation or dodge a limit.
func TestSystemEdgeRefusesAbuseCleanly(t *testing.T) {
	s := startSystem(t, 1, 1)
	gw := s.gateways[0]
	key := testenv.CreateKeyFull(t, s.env, "--rate", "100000/m", "--burst", "100000")
	other := testenv.CreateKeyFull(t, s.env, "--rate", "100000/m", "--burst", "100000")
	api := gw.URL + "/api/v1"
	stillServes := func(t *testing.T) {
		t.Helper()
		if r := sysCall(t, "GET", api+"/memory", other.Key, nil); r.status != 200 {
			t.Fatalf("the replica stopped serving others: %v", r)
		}
	}

	t.Run("a body over 1 MiB is a 400 and harms no one", func(t *testing.T) {
		big := bytes.Repeat([]byte("a"), 2<<20)
		body := withBody(bytes.NewReader(append(append([]byte(`{"text":"`), big...), '"', '}')))
		e := wantAPIError(t, call(t, "POST", api+"/memory", withKey(key.Key), body), 400)
		if e.Message != "Request body must not exceed 1 MiB." {
			t.Errorf("message %q", e.Message)
		}
		stillServes(t)
	})
	t.Run("an aborted upload harms no one", func(t *testing.T) {
		for range 3 {
			c := mustDial(t, fmt.Sprintf("127.0.0.1:%d", gw.Port))
			fmt.Fprintf(c, "POST /api/v1/memory HTTP/1.1\r\nHost: x\r\nazen-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"text\":", key.Key)
			c.Close()
		}
		stillServes(t)
	})
	t.Run("only GET and HEAD reach /healthz", func(t *testing.T) {
		wantAPIError(t, call(t, "POST", gw.URL+"/healthz", withHeader("Content-Type", "application/json")), 404)
	})
	t.Run("non-canonical paths are a JSON 404, never a redirect", func(t *testing.T) {
		for _, p := range []string{"/api/v1//memory", "/api/v1/./memory", "/api/v1/memory/"} {
			c := mustDial(t, fmt.Sprintf("127.0.0.1:%d", gw.Port))
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nazen-api-key: %s\r\nConnection: close\r\n\r\n", p, key.Key)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			getJSONError(t, resp, 404)
			c.Close()
		}
	})
	t.Run("a forged X-Forwarded-For does not dodge the failed-attempt limit", func(t *testing.T) {
		limited := false
		for i := 0; i < 25 && !limited; i++ {
			// A client prepends addresses of its choice. The shipped
			// Caddyfile trusts no proxy, so the peer is the client; were
			// loopback trusted, strict mode would take the last address.
			forged := withHeader("X-Forwarded-For", fmt.Sprintf("198.51.100.%d, 203.0.113.77", i))
			limited = call(t, "GET", api+"/memory", withKey("azen_"+strings.Repeat("x", 49)), forged).status == 429
		}
		if !limited {
			t.Fatal("25 bad keys with rotating forged addresses were never limited")
		}
	})
}
