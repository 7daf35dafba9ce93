package limiter

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/testenv"
)

func newTestRedis(t testing.TB) (*testenv.Redis, redis.UniversalClient) {
	t.Helper()
	rs := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, PoolSize: 32})
	t.Cleanup(func() { client.Close() })
	return rs, client
}

// The lease script and gcra.go are one algorithm: random sequences of
// calls from three holders, each applied to Redis and then to the Go code
// at the time Redis reports, give the same answers, and the same state,
// with and without a quota (its counter, debts, hints for a lost counter,
// a change of quota under a pocket, a call naming another period).
func TestLeaseScriptMatchesGo(t *testing.T) {
	for _, withQuota := range []bool{false, true} {
		t.Run(map[bool]string{false: "rate only", true: "with a quota"}[withQuota], func(t *testing.T) {
			testLeaseScriptMatchesGo(t, withQuota)
		})
	}
}

func testLeaseScriptMatchesGo(t *testing.T, withQuota bool) {
	_, client := newTestRedis(t)
	r := NewRedis(client)
	defer r.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	policies := []Policy{
		policy(t, "a", "10/s burst 20"),
		policy(t, "b", "7/s burst 5"),     // emission not a whole number of µs
		policy(t, "c", "1000/s burst 50"), // refills within the test
		policy(t, "d", "3/h burst 3"),
	}
	ctx := context.Background()
	for pi, p := range policies {
		owner := "diff-" + strconv.Itoa(pi)
		bucket := p.Bucket(owner)
		var model gcraState
		qcells := map[string]*quotaCell{}
		holders := []string{"g1", "g2", "g3"}
		seq := map[string]int64{}
		confirm := map[string]int64{}
		pocket := map[string]int64{}
		gen := map[string]string{}
		hint := map[string]float64{}
		qhint := map[string]int64{}
		for step := 0; step < 120; step++ {
			h := holders[rng.IntN(len(holders))]
			seq[h]++
			a := leaseArgs{
				emission: p.emissionMicros(), burst: int64(p.Burst), holder: h,
				seq: seq[h], confirm: confirm[h], gateways: int64(1 + rng.IntN(3)),
				cost: int64(1 + rng.IntN(min(3, p.Burst))), genSeen: gen[h], hint: hint[h],
				ttl: float64([]int{2000, 50000, 1000000}[rng.IntN(3)]), retain: 10e6,
			}
			a.need = a.cost * int64(rng.IntN(3))
			a.extra = int64(rng.IntN(10))
			if rng.IntN(4) == 0 {
				a.debt = int64(rng.IntN(3))
			}
			switch rng.IntN(3) {
			case 0: // keep the whole pocket
				a.keep = pocket[h]
			case 1: // give it back
				a.ret = pocket[h]
			case 2: // spent part of it
				a.keep = pocket[h] / 2
			}
			if rng.IntN(20) == 0 {
				a.seq = max(1, seq[h]-5) // a stale call
			}
			if withQuota {
				now := leaseMicros(time.Now())
				// Two quotas of the key (a change of quota), in a period
				// around now, whose end is sometimes near (no leases).
				limit := []int64{40, 1000}[rng.IntN(2)]
				a.qkey = "azen:quota:{" + owner + "}:" + strconv.FormatInt(limit, 10)
				a.qlimit, a.qmark = limit, "p/"+strconv.FormatInt(limit, 10)
				a.qstart, a.qend = now-3600e6, now+[]float64{3600e6, 1e6}[rng.IntN(2)]
				a.qoff = []float64{0, 0, -1800e6}[rng.IntN(3)]
				a.qmargin = 2e6
				a.qledger = a.qkey + ":local"
				if rng.IntN(4) == 0 {
					a.qdebt = int64(rng.IntN(8))
					a.qacked = int64(rng.IntN(int(a.qdebt) + 1))
				}
				a.qhint = qhint[a.qkey]
				if rng.IntN(25) == 0 {
					a.qend = now - 7200e6 // a period that ended
				}
				if rng.IntN(25) == 0 {
					client.Del(ctx, a.qkey, a.qledger) // Redis lost the counter
					delete(qcells, a.qkey)
				}
			}
			got, err := r.lease(ctx, bucket, a)
			if err != nil {
				t.Fatalf("%s step %d: %v", p, step, err)
			}
			var qc *quotaCell
			if a.qlimit > 0 {
				if qc = qcells[a.qkey]; qc == nil {
					qc = &quotaCell{}
					qcells[a.qkey] = qc
				}
			}
			want := model.lease(got.now, a, qc)
			want.ttlRel = 0
			if got.stale != want.stale || got.need != want.need || got.extra != want.extra ||
				got.found != want.found || got.avail != want.avail || got.gen != want.gen ||
				got.wrongPeriod != want.wrongPeriod || got.qused != want.qused ||
				math.Abs(got.tatRel-want.tatRel) > 1 || math.Abs(got.retryRel-want.retryRel) > 1 {
				t.Fatalf("%s step %d (%+v):\nredis %+v\ngo    %+v", p, step, a, got, want)
			}
			if got.stale || got.wrongPeriod {
				continue
			}
			stored, err := client.HGet(ctx, bucket, "t").Float64()
			if err != nil || math.Abs(stored-model.tat) > 1e-6*math.Abs(model.tat) {
				t.Fatalf("%s step %d: stored tat %v (%v), go %v", p, step, stored, err, model.tat)
			}
			if a.qlimit > 0 {
				if n, err := client.Get(ctx, a.qkey).Int64(); err != nil || n != qc.used || n != got.qused {
					t.Fatalf("%s step %d: stored count %d (%v), go %d", p, step, n, err, qc.used)
				}
				if a.qdebt > 0 {
					if n, err := client.HGet(ctx, a.qledger, h).Int64(); err != nil || n != qc.ledger[h] {
						t.Fatalf("%s step %d: ledger %d (%v), go %d", p, step, n, err, qc.ledger[h])
					}
				}
				// It lives a day past its period's end.
				ttl := client.PTTL(ctx, a.qkey).Val()
				wantTTL := time.Duration(a.qend-(got.now+a.qoff))*time.Microsecond + 24*time.Hour
				if ttl > wantTTL+time.Second || ttl < wantTTL-time.Second {
					t.Fatalf("%s step %d: counter TTL %s, want %s", p, step, ttl, wantTTL)
				}
				qhint[a.qkey] = got.qused
			}
			if a.keep > 0 && got.found {
				pocket[h] = a.keep + got.extra
			} else {
				pocket[h] = got.extra
			}
			confirm[h] = 0
			if pocket[h] > 0 {
				confirm[h] = a.seq
			}
			gen[h], hint[h] = got.gen, got.now+got.tatRel
			if rng.IntN(30) == 0 {
				time.Sleep(3 * time.Millisecond) // let holds expire
			}
		}
	}
}

// Many concurrent calls are pipelined together, yet each is one script
// call and the bucket stays exact; callers whose context ends are answered
// at once; a closed store refuses calls.
func TestRedisPipelinedCallsStayExact(t *testing.T) {
	_, client := newTestRedis(t)
	r := NewRedis(client)
	defer r.Close()
	p := policy(t, "default", "100/h burst 100")
	bucket := p.Bucket("pipelined")
	call := func(ctx context.Context, seq int64) (leaseResult, error) {
		return r.lease(ctx, bucket, leaseArgs{
			emission: p.emissionMicros(), burst: 100, holder: "h" + strconv.FormatInt(seq, 10), seq: 1,
			need: 1, cost: 1, gateways: 1, ttl: 1e6, retain: 1e7,
		})
	}
	if err := r.LoadScript(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := client.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	var allowed, refused, seq atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				res, err := call(context.Background(), seq.Add(1))
				if err != nil {
					t.Error(err)
					return
				}
				if res.need == 1 {
					allowed.Add(1)
				} else {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if allowed.Load() != 100 || refused.Load() != 220 {
		t.Fatalf("allowed %d refused %d, want exactly 100 and 220", allowed.Load(), refused.Load())
	}
	info, _ := client.Info(context.Background(), "commandstats").Result()
	if calls := scriptCalls(info); calls != 320 {
		t.Errorf("%d script calls for 320 decisions", calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := call(ctx, seq.Add(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	r.Close()
	if _, err := call(context.Background(), seq.Add(1)); err == nil {
		t.Error("call after Close succeeded")
	}
}

func scriptCalls(info string) int {
	n := 0
	for _, prefix := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
		if i := strings.Index(info, prefix); i >= 0 {
			j := i + len(prefix)
			v := 0
			for j < len(info) && info[j] >= '0' && info[j] <= '9' {
				v = v*10 + int(info[j]-'0')
				j++
			}
			n += v
		}
	}
	return n
}

func TestParseLeaseReplyRejectsMalformedReplies(t *testing.T) {
	for name, v := range map[string][]any{
		"empty":          {},
		"short":          {int64(1), int64(2)},
		"no quota count": {int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "g"},
		"not a number":   {"x", int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "g", int64(-1)},
		"gen not string": {int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(5), int64(-1)},
		"negative grant": {int64(-2), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "g", int64(-1)},
		"bad count":      {int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "g", int64(-5)},
		"count a string": {int64(1), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), "g", "7"},
		"bad period":     {int64(-2), "x"},
	} {
		if _, err := parseLeaseReply(v); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if r, err := parseLeaseReply([]any{int64(-1)}); err != nil || !r.stale {
		t.Errorf("stale reply: %+v %v", r, err)
	}
	if r, err := parseLeaseReply([]any{int64(-2), int64(123)}); err != nil || !r.wrongPeriod || r.now != 123 {
		t.Errorf("wrong-period reply: %+v %v", r, err)
	}
	if r, err := parseLeaseReply([]any{int64(1), int64(2), int64(1), int64(3), int64(4), int64(0), int64(9), "g", int64(17)}); err != nil ||
		r.need != 1 || r.extra != 2 || !r.found || r.qused != 17 || r.gen != "g" {
		t.Errorf("reply: %+v %v", r, err)
	}
}
