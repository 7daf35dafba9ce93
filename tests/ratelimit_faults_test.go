package tests

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// The faults of docs/ratelimit.md ("Worst case per fault"), each measured
// with two gateways, a 60/m burst 20 key and steady load (more demand than
// the limit on both gateways): admitted requests are counted against what
// the policy allows over the test, B + r·T, and must stay within the bound
// the document states for that fault.

const faultPolicy = "rate 60/m\nburst 20\ntimeout 50ms"

// steadyLoad keeps conc clients per target sending requests for key until
// stop, and counts the admitted ones. targets can change while it runs (a
// restarted gateway).
type steadyLoad struct {
	targets  atomic.Pointer[[]string]
	admitted atomic.Int64
	other    atomic.Int64
	start    time.Time
	end      time.Time
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startSteadyLoad(t *testing.T, key string, conc int, targets ...string) *steadyLoad {
	l := &steadyLoad{stop: make(chan struct{}), start: time.Now()}
	l.setTargets(targets...)
	for w := 0; w < conc*len(targets); w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ts := *l.targets.Load()
				resp, err := tryCall("GET", ts[i%len(ts)]+"/api/v1/memory", via(rlClient), withHeader("X-Client", key))
				if err != nil {
					// A gateway being restarted: not a decision.
					time.Sleep(5 * time.Millisecond)
					continue
				}
				switch resp.status {
				case 200:
					l.admitted.Add(1)
				case 429:
				default:
					l.other.Add(1)
				}
				time.Sleep(2 * time.Millisecond) // steady, not a CPU-bound loop
			}
		}()
	}
	return l
}

func (l *steadyLoad) setTargets(ts ...string) { l.targets.Store(&ts) }

func (l *steadyLoad) finish() {
	close(l.stop)
	l.wg.Wait()
	l.end = time.Now()
}

// allowedOver is what 60/m burst 20 allows from a full bucket over l's run.
func (l *steadyLoad) allowed() int {
	return allowedBy(20, 1, l.end.Sub(l.start))
}

func (l *steadyLoad) report(t *testing.T, fault string, bound int) {
	t.Helper()
	got, allowed := int(l.admitted.Load()), l.allowed()
	t.Logf("%s: admitted %d, policy allows %d over %s (bound: %d more)", fault, got, allowed, l.end.Sub(l.start).Round(time.Millisecond), bound)
	if got > allowed+bound {
		t.Errorf("%s: admitted %d, more than the %d allowed + %d", fault, got, allowed, bound)
	}
	if got < allowed-allowed/4 {
		t.Errorf("%s: admitted only %d of %d allowed", fault, got, allowed)
	}
}

// Redis shut down for 3 s and restarted empty: local shares start from
// the last state Redis reported, and their spending is charged to the new
// bucket, which starts from what the gateways last saw. Bound: n·c (the
// requests in flight when the breakers switch) plus what one gateway took
// after the other's last answer (a couple of tokens under this load).
func TestRateLimitFaultRedisRestarted(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed(faultPolicy)), env)
	waitGatewaysSeen(t, rs.URL(), 2)
	load := startSteadyLoad(t, uniqueKey(t), 2, gws[0].URL, gws[1].URL)
	time.Sleep(1500 * time.Millisecond)
	rs.Stop()
	time.Sleep(3 * time.Second)
	rs.Start()
	time.Sleep(2500 * time.Millisecond)
	load.finish()
	if load.other.Load() != 0 {
		t.Errorf("%d answers neither 200 nor 429", load.other.Load())
	}
	load.report(t, "Redis restarted", 2+2)
}

// Redis frozen for 3 s (SIGSTOP): calls time out, the breakers open, local
// shares start from the last state; when Redis resumes it still has the
// bucket, and local spending is charged to it. Bound: n·c plus a couple of
// tokens for views a call old.
func TestRateLimitFaultRedisFrozen(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed(faultPolicy)), env)
	waitGatewaysSeen(t, rs.URL(), 2)
	pid := redisPID(t, rs.URL())
	load := startSteadyLoad(t, uniqueKey(t), 2, gws[0].URL, gws[1].URL)
	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	load.finish()
	for _, g := range gws {
		waitForLog(t, g.Process, "Redis failing")
	}
	load.report(t, "Redis frozen", 2+2)
}

// A gateway restarted while Redis is down (frozen) divides by the gateway
// count it kept on disk (2), not by 1; knowing nothing of the bucket, its
// share starts full, and what it spends is charged to the bucket when Redis
// answers again. Bound: floor(B/n) + n·c.
func TestRateLimitFaultGatewayRestartedDuringOutage(t *testing.T) {
	rs := testenv.StartRedis(t)
	dataDir := t.TempDir()
	envA := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr, "XDG_DATA_HOME": dataDir}
	envB := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": envA["UP"]}
	cf := rlCaddyfile(headerKeyed(faultPolicy))
	a := testenv.StartGateway(t, cf, envA)
	b := testenv.StartGateway(t, cf, envB)
	waitGatewaysSeen(t, rs.URL(), 2)
	pid := redisPID(t, rs.URL())
	load := startSteadyLoad(t, uniqueKey(t), 2, a.URL, b.URL)
	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p1 := load.admitted.Load()
	time.Sleep(500 * time.Millisecond)
	a.Kill()
	p2 := load.admitted.Load()
	a2 := testenv.StartGateway(t, cf, envA)
	load.setTargets(a2.URL, b.URL)
	time.Sleep(2 * time.Second)
	p3 := load.admitted.Load()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	load.finish()
	t.Logf("admitted before the outage %d, during it %d, after the restart %d, after Redis resumed %d",
		p1, p2-p1, p3-p2, load.admitted.Load()-p3)
	load.report(t, "gateway restarted during the outage", 20/2+2)
}

// No fault at all, but a busy machine: 1000 concurrent requests for a
// 100/m key over two gateways with the default 50 ms timeout. Leases,
// one call in flight per bucket and cached refusals keep calls few, and a
// slow call does not open the breaker while Redis answers: exactly the
// burst is admitted.
func TestRateLimitFaultBusyMachine(t *testing.T) {
	rs := testenv.StartRedis(t)
	env := map[string]string{"AZEN_REDIS_URL": rs.URL(), "UP": startUpstream(t).Addr}
	gws := startGateways(t, 2, rlCaddyfile(headerKeyed("rate 100/m")), env)
	// Connections and the script warm first: this is about concurrency, not
	// about a cold start (a bucket never answered starts its local share full).
	for _, g := range gws {
		rlGet(t, g.URL, uniqueKey(t)+"-warm")
	}
	got := runLoad(t, gws, uniqueKey(t), 1000, 1000, nil, nil)
	most := allowedBy(100, 100.0/60, got.elapsed())
	t.Logf("admitted %d of at most %d (1000 concurrent requests in %s)", got.admitted.Load(), most, got.elapsed())
	if n := int(got.admitted.Load()); n > most || n < 98 || got.other.Load() != 0 {
		t.Fatalf("admitted %d (other %d), want 98..%d", n, got.other.Load(), most)
	}
	for _, g := range gws {
		if strings.Contains(g.Output(), "Redis failing") {
			t.Errorf("a gateway opened its breaker with Redis answering")
		}
	}
}

// redisPID asks Redis for its process id.
func redisPID(t *testing.T, url string) int {
	t.Helper()
	info, err := redisClient(t, url).Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err == nil {
				return pid
			}
		}
	}
	t.Fatal("no process_id in INFO server")
	return 0
}
