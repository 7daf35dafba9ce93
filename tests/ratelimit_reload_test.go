package tests

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// Reloading under load drops no request, keeps the Redis connections, and
// applies the new limits at once.
func TestRateLimitReloadUnderLoad(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	loose := rlCaddyfile(headerKeyed("rate 100000/m\nburst 100000"))
	g := testenv.StartGateway(t, loose, env)
	rc := redisClient(t, rs.URL())
	connections := func() int64 {
		info, err := rc.Info(context.Background(), "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no total_connections_received in INFO stats")
		return 0
	}

	// Load: workers send requests with their own keys until told to stop.
	const workers = 8
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := uniqueKey(t) + "-w" + strconv.Itoa(w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp := rlGet(t, g.URL, key)
				sent.Add(1)
				if resp.status != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, resp.String())
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	connsBefore := connections()

	// Reload twice under load, changing the limits (still far above the
	// load) and the timeout.
	for i := 0; i < 2; i++ {
		cf := rlCaddyfile(headerKeyed("rate " + strconv.Itoa(200000*(i+1)) + "/m\nburst 100000\ntimeout " + strconv.Itoa(40+i) + "ms"))
		if out, err := g.Reload(cf); err != nil {
			t.Fatalf("reload %d: %v\n%s", i, err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if sent.Load() < 100 {
		t.Fatalf("only %d requests sent under load", sent.Load())
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads (first: %v)", failed.Load(), sent.Load(), firstFailure.Load())
	}
	// The pool kept its connections: a new client would have opened about
	// one per worker.
	if d := connections() - connsBefore; d >= workers/2 {
		t.Errorf("%d new Redis connections across reloads; the client was not kept", d)
	}

	// New limits apply at once: the reload returns, the next requests obey.
	if out, err := g.Reload(rlCaddyfile(headerKeyed("rate 2/h"))); err != nil {
		t.Fatalf("reload: %v\n%s", err, out)
	}
	key := uniqueKey(t)
	for i, want := range []int{200, 200, 429} {
		resp := rlGet(t, g.URL, key)
		if resp.status != want || resp.header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("after reload, request %d: %d limit %q, want %d under 2/h", i+1, resp.status, resp.header.Get("X-RateLimit-Limit"), want)
		}
	}
}
