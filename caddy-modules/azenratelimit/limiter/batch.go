package limiter

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// batchingClient is the client the lease script runs on. It passes everything
// through except EVALSHA (the limiter script's normal path), which it
// queues: a few workers each take whatever has queued while they were busy
// and send it as one pipeline. Under light load a call goes out at once,
// alone; under heavy load many requests share one write and one read on
// each side, which is what a Redis on the same few CPUs as the gateway
// needs. Every request still makes exactly one script call, in at most one
// round trip.
type batchingClient struct {
	redis.UniversalClient
	inflight atomic.Int64 // EvalSha calls in progress
	queue    chan *batchItem
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

type batchItem struct {
	ctx  context.Context
	cmd  *redis.Cmd
	done chan struct{} // capacity 1; the worker signals each queued item once
}

// itemPool recycles batch items (and their done channels) between calls. Only
// a caller that received its item's signal puts it back: an item whose
// caller stopped waiting may still be signalled, so it is left to the GC.
var itemPool = sync.Pool{New: func() any { return &batchItem{done: make(chan struct{}, 1)} }}

const (
	batchWorkers = 4
	batchMax     = 256
	batchQueue   = 4096
)

var (
	errLimiterClosed = errors.New("rate limiter closed")
	errNoReply       = errors.New("no reply from Redis")
)

func newBatchingClient(c redis.UniversalClient) *batchingClient {
	b := &batchingClient{
		UniversalClient: c,
		queue:           make(chan *batchItem, batchQueue),
		stop:            make(chan struct{}),
	}
	for i := 0; i < batchWorkers; i++ {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

// EvalSha sends the call directly when it is the only one in progress (no
// hand-off to a worker, the lowest latency), and otherwise queues it and
// waits for its batch, or for ctx.
func (b *batchingClient) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	defer b.inflight.Add(-1)
	if b.inflight.Add(1) == 1 {
		select {
		case <-b.stop:
			return failedCmd(ctx, errLimiterClosed)
		default:
			return b.UniversalClient.EvalSha(ctx, sha1, keys, args...)
		}
	}
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", sha1, len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	select {
	case <-b.stop:
		return failedCmd(ctx, errLimiterClosed)
	default:
	}
	it := itemPool.Get().(*batchItem)
	it.ctx, it.cmd = ctx, redis.NewCmd(ctx, cmdArgs...)
	select {
	case b.queue <- it:
	case <-ctx.Done():
		it.ctx, it.cmd = nil, nil
		itemPool.Put(it)
		return failedCmd(ctx, ctx.Err())
	case <-b.stop:
		it.ctx, it.cmd = nil, nil
		itemPool.Put(it)
		return failedCmd(ctx, errLimiterClosed)
	}
	select {
	case <-it.done:
		cmd := it.cmd
		it.ctx, it.cmd = nil, nil
		itemPool.Put(it)
		return cmd
	case <-ctx.Done():
		// The worker may still fill it.cmd; hand back a separate one.
		return failedCmd(ctx, ctx.Err())
	case <-b.stop:
		// Closed while queued (a request of a config being unloaded).
		return failedCmd(ctx, errLimiterClosed)
	}
}

func failedCmd(ctx context.Context, err error) *redis.Cmd {
	c := redis.NewCmd(ctx)
	c.SetErr(err)
	return c
}

func (b *batchingClient) work() {
	defer b.wg.Done()
	items := make([]*batchItem, 0, batchMax)
	for {
		items = items[:0]
		select {
		case it := <-b.queue:
			items = append(items, it)
		case <-b.stop:
			return
		}
	drain:
		for len(items) < batchMax {
			select {
			case it := <-b.queue:
				items = append(items, it)
			default:
				break drain
			}
		}
		b.send(items)
	}
}

// send runs one pipeline for the items whose callers still wait, bounded by
// the latest of their deadlines (a caller with an earlier one stops waiting
// by itself).
func (b *batchingClient) send(items []*batchItem) {
	var latest time.Time
	live := 0
	for _, it := range items {
		if err := it.ctx.Err(); err != nil {
			it.cmd.SetErr(err)
			it.done <- struct{}{}
			continue
		}
		items[live] = it
		live++
		if d, ok := it.ctx.Deadline(); ok && d.After(latest) {
			latest = d
		}
	}
	items = items[:live]
	if live == 0 {
		return
	}
	if latest.IsZero() {
		latest = time.Now().Add(5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), latest)
	_, err := b.UniversalClient.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			_ = p.Process(ctx, it.cmd)
		}
		return nil
	})
	cancel()
	for _, it := range items {
		if it.cmd.Err() == nil && it.cmd.Val() == nil {
			// Never hand the caller an empty reply without an error.
			it.cmd.SetErr(errors.Join(errNoReply, err))
		}
		it.done <- struct{}{}
	}
}

// close stops the workers; callers still queued get an error.
func (b *batchingClient) close() {
	b.once.Do(func() {
		close(b.stop)
		b.wg.Wait()
		for {
			select {
			case it := <-b.queue:
				it.cmd.SetErr(errLimiterClosed)
				it.done <- struct{}{}
			default:
				return
			}
		}
	})
}
