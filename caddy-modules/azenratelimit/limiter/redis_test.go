package limiter

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/testenv"
)

// Many concurrent calls are pipelined together, yet each is one script
// call and the bucket stays exact; callers whose context ends are answered
// at once and change nothing they were not told about.
func TestRedisPipelinedCallsStayExact(t *testing.T) {
	rs := testenv.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1, PoolSize: 16})
	defer client.Close()
	r := NewRedis(client)
	defer r.Close()
	p := policy(t, "default", "100/h burst 100")
	bucket := p.Bucket("pipelined")
	// Load the script (a cold Redis answers the first EVALSHAs with
	// NOSCRIPT, and redis_rate retries those with EVAL), then count.
	if _, err := r.Allow(context.Background(), p.Bucket("warm-up"), p, 1); err != nil {
		t.Fatal(err)
	}
	if err := client.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}

	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				d, err := r.Allow(context.Background(), bucket, p, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
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

	// Cancelled and expired contexts come back at once with their error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Allow(ctx, bucket, p, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
	var wg2 sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(g)*50*time.Microsecond)
			defer cancel()
			_, _ = r.Allow(ctx, p.Bucket("short"), p, 1)
		}()
	}
	wg2.Wait()

	r.Close()
	if _, err := r.Allow(context.Background(), bucket, p, 1); err == nil {
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
