package tests

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// minimalProxyCaddyfile is the smallest gateway an operator could write: no
// active health checks, no passive ones, only retries of failed dials. A
// draining replica is noticed only through its answers and, at the end,
// its closed listener.
const minimalProxyCaddyfile = `{
	admin {$AZEN_ADMIN_ADDR}
}
{$AZEN_SITE_ADDRESS} {
	handle /api/v1/* {
		azen_auth {
			database {env.AZEN_DATABASE_URL}
			secret {env.AZEN_GATEWAY_SECRET}
		}
		reverse_proxy {$BACKENDS} {
			lb_try_duration 5s
		}
	}
	handle_errors {
		azen_error
	}
}
`

// TestReplicaDrainUnderKeepAliveLosesNothing stops one of two real backend
// replicas with SIGTERM while eight clients create memories through a
// minimal reverse_proxy that keeps connections alive. While it drains the
// replica answers `Connection: close`, so the proxy retires its
// connections one by one before the listener closes; no create may fail,
// and every acknowledged one must be readable afterwards.
func TestReplicaDrainUnderKeepAliveLosesNothing(t *testing.T) {
	pg := testenv.StartPostgres(t)
	env := map[string]string{
		"AZEN_DATABASE_URL":        pg.CreateDatabase(t),
		"AZEN_GATEWAY_SECRET":      testenv.GatewaySecret(),
		"AZEN_ENCRYPTION_KEYS":     testenv.EncryptionKeys("k1"),
		"AZEN_BACKEND_DRAIN_DELAY": "2s",
	}
	a, b := testenv.StartBackend(t, env), testenv.StartBackend(t, env)
	key := testenv.CreateKeyFull(t, env)
	gwEnv := map[string]string{"BACKENDS": a.Addr + " " + b.Addr}
	for k, v := range env {
		gwEnv[k] = v
	}
	gw := testenv.StartGateway(t, minimalProxyCaddyfile, gwEnv)

	var (
		stop     atomic.Bool
		mu       sync.Mutex
		acked    []string
		failures []string
		sent     atomic.Int64
		wg       sync.WaitGroup
	)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				body := withJSON(fmt.Sprintf(`{"text":"writer %d create %d"}`, w, i))
				sent.Add(1)
				r, err := tryJSON("POST", gw.URL+"/api/v1/memory", via(client), withKey(key.Key), body)
				mu.Lock()
				if err != nil || r.status != 201 {
					failures = append(failures, fmt.Sprintf("%v %v", r, err))
				} else {
					acked = append(acked, r.created().MemoryID)
				}
				mu.Unlock()
			}
		}(w)
	}
	waitFor(t, "steady load", func() bool { return sent.Load() > 300 })
	a.Signal(syscall.SIGTERM)
	waitForLog(t, a.Process, "draining")

	// While it drains, the replica asks every client to close.
	resp, err := http.Get(a.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Errorf("a draining replica answered without Connection: close (header %q)", resp.Header.Get("Connection"))
	}

	if err := a.Wait(30 * time.Second); err != nil {
		t.Errorf("replica did not exit cleanly: %v", err)
	}
	before := sent.Load()
	waitFor(t, "load carried on by the other replica", func() bool { return sent.Load() > before+100 })
	stop.Store(true)
	wg.Wait()

	t.Logf("%d creates sent, %d acknowledged, %d failed", sent.Load(), len(acked), len(failures))
	if len(failures) > 0 {
		t.Fatalf("%d of %d creates failed while a replica drained; first: %s", len(failures), sent.Load(), failures[0])
	}
	// Read everything back, a hundred at a time (the dead replica costs a
	// retried dial on some of these requests).
	stored := map[string]bool{}
	for page := 1; ; page++ {
		r, err := tryJSON("GET", fmt.Sprintf("%s/api/v1/memory?per=100&page=%d", gw.URL, page), via(client), withKey(key.Key))
		if err != nil || r.status != 200 {
			t.Fatalf("list page %d: %v %v", page, r, err)
		}
		mems := r.page().Memories
		for _, m := range mems {
			stored[m.ID] = true
		}
		if len(mems) < 100 {
			break
		}
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged create %s lost", id)
		}
	}
}
