package redisconn

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestGoRedisLinesGoThroughTheLogger: with Redis down, go-redis's pool
// reports its failed dials through the function given to SetLogger, not as
// plain text, and a line repeated many times is passed on once with its
// count.
func TestGoRedisLinesGoThroughTheLogger(t *testing.T) {
	var mu sync.Mutex
	var got []string
	SetLogger(func(_ context.Context, msg string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, msg)
	})
	o, err := Parse("redis://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := o.NewClient()
	defer c.Close()
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_ = c.Ping(ctx).Err()
		cancel()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("go-redis logged nothing through SetLogger's function")
	}
	if len(got) > 2 {
		t.Errorf("%d lines for 5 failed pings; repeats should be folded: %q", len(got), got)
	}
	for _, m := range got {
		if strings.HasPrefix(m, "redis: ") || strings.Contains(m, ".go:") {
			t.Errorf("line keeps go-redis's prefix or file: %q", m)
		}
	}
}

func TestRepeatsAreCounted(t *testing.T) {
	var got []string
	p := &printer{log: func(_ context.Context, msg string) { got = append(got, msg) }, every: 50 * time.Millisecond, seen: map[string]*repeats{}}
	for range 5 {
		p.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 1, "refused")
	}
	p.Printf(context.Background(), "redis: another kind %s", "x")
	time.Sleep(60 * time.Millisecond)
	p.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v", 1, "refused")
	want := []string{
		"connection pool: failed to dial after 1 attempts: refused",
		"another kind x",
		"connection pool: failed to dial after 1 attempts: refused (and 4 more like it since the last such line)",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
