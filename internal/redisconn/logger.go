package redisconn

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own log lines (a failed dial in its connection
// pool, a dropped connection: otherwise plain text on stderr, such as
// "redis: 2026/12/01 10:00:00 pool.go:770: …") to log, one message each,
// without go-redis's prefix, date and file. While Redis is down go-redis
// repeats the same line many times a second; each kind of line is passed on
// at most once every 10 s, with the number of repeats it stands for.
// It applies to the whole process, as go-redis's logger does.
func SetLogger(log func(ctx context.Context, msg string)) {
	redis.SetLogger(&printer{log: log, every: 10 * time.Second, seen: map[string]*repeats{}})
}

type printer struct {
	log   func(ctx context.Context, msg string)
	every time.Duration

	mu   sync.Mutex
	seen map[string]*repeats // by format: go-redis has a fixed set of them
}

type repeats struct {
	next    time.Time
	skipped int
}

// Printf implements go-redis's logging interface.
func (p *printer) Printf(ctx context.Context, format string, v ...any) {
	now := time.Now()
	p.mu.Lock()
	r := p.seen[format]
	if r == nil {
		r = &repeats{}
		p.seen[format] = r
	}
	if now.Before(r.next) {
		r.skipped++
		p.mu.Unlock()
		return
	}
	skipped := r.skipped
	r.next, r.skipped = now.Add(p.every), 0
	p.mu.Unlock()

	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	if skipped > 0 {
		msg += fmt.Sprintf(" (and %d more like it since the last such line)", skipped)
	}
	p.log(ctx, msg)
}
