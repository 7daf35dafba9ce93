package limiter

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
)

// Mode is what a Limiter does for a request while the shared store cannot
// be asked (on_redis_error).
type Mode int

const (
	// ModeLocal decides on this gateway alone, with its share of the policy.
	ModeLocal Mode = iota
	// ModeAllow lets the request through without a decision.
	ModeAllow
	// ModeDeny fails the request.
	ModeDeny
)

// Source says who made a decision.
type Source int

const (
	// SourceShared: the shared bucket (a Redis answer, a token of this
	// gateway's lease, or a refusal Redis gave and that still holds).
	SourceShared Source = iota
	// SourceLocal: this gateway alone (no Redis, or on_redis_error local).
	SourceLocal
	// SourceAllow: no decision (on_redis_error allow).
	SourceAllow
	// SourceDeny: refused for want of Redis (on_redis_error deny).
	SourceDeny
)

// Request asks for Cost units of a bucket.
type Request struct {
	Bucket string // Policy.Bucket(key)
	Policy Policy
	Cost   int
	// Mode and Timeout apply while Redis fails; Timeout bounds each call.
	Mode    Mode
	Timeout time.Duration
	// MinGateways is the fewest gateways local mode divides the policy by
	// (min_gateways), whatever the count last seen.
	MinGateways int
	// Quota, when not zero, is the key's quota (contract §10), counted
	// under QuotaOwner (the key id) in the same store call as the bucket.
	// Bucket must carry the same Cluster hash tag: Policy.Bucket(QuotaOwner).
	Quota      apikey.Quota
	QuotaOwner string
}

// Result is a Limiter's answer. Decided is false when the request passes
// without a decision (Source SourceAllow): no rate-limit headers then. A
// request refused for its quota has Quota.Exceeded, and a RetryAfter until
// the quota's period ends.
type Result struct {
	Decision Decision
	Decided  bool
	Source   Source
	Quota    QuotaStatus
}

// Events receives what a Limiter wants told (logs, metrics); every method
// may be called from any goroutine.
type Events interface {
	// CallDone reports one call to the shared store and its latency.
	CallDone(elapsed time.Duration, err error)
	// Degraded reports that the breaker opened: Redis is failing.
	Degraded(cause error)
	// Recovered reports that the breaker closed again.
	Recovered()
}

// Tuning that the contract leaves to us (docs/ratelimit.md explains it).
const (
	// leaseHorizon sizes a lease: about this long of this gateway's demand.
	leaseHorizon = 100 * time.Millisecond
	// leaseLife is how long a pocket may be spent after the call that
	// granted or extended it was sent.
	leaseLife = 500 * time.Millisecond
	// holdTTL is how long the store keeps a hold after the call: longer
	// than leaseLife, so a pocket always expires on the gateway first.
	holdTTL = time.Second
	// idleReturn: a pocket untouched this long goes back to the bucket.
	idleReturn = 100 * time.Millisecond
	// returnBefore: a pocket goes back this long before it would expire.
	returnBefore = 100 * time.Millisecond
	// maintainEvery is how often pockets and debts are looked after.
	maintainEvery = 20 * time.Millisecond
	// breakerThreshold consecutive failed calls open the breaker, which
	// then keeps calls off Redis for breakerCooldown before one probe.
	breakerThreshold = 3
	breakerCooldown  = time.Second
)

var (
	errBreakerOpen = errors.New("redis circuit breaker is open")
	errClosed      = errors.New("rate limiter closed")
	errWrongPeriod = errors.New("redis refused the quota period the call named, twice")
)

// Limiter is azen_ratelimit's decision: the shared bucket in Redis reached
// through leases, the in-process fallback, and the circuit breaker between
// them. With a nil store it is the in-process limiter alone.
//
// Consistency: a gateway spends the tokens of its lease without asking
// Redis, so the policy holds exactly across any number of gateways (held
// tokens count against the bucket until spent or returned), while the
// headers a gateway sends reflect the bucket as of its last Redis answer
// less its own spending since: other gateways' spending since is not seen.
type Limiter struct {
	store    store
	local    *Local
	breaker  *Breaker
	clock    clock
	holder   string
	gateways func() int

	entries entries
	quotas  quotaTable
	seq     atomic.Int64
	events  atomic.Pointer[Events]
	// skew is the store's clock less this gateway's (ns), as of the last
	// answer to a call with a quota; quotaOffset shifts both (tests only).
	skew        atomic.Int64
	quotaOffset time.Duration

	activeMu sync.Mutex
	active   map[*entry]struct{}
	stalls   stallWatch // ticked by maintain

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// store is where shared buckets live: *Redis, or a fake in tests.
type store interface {
	lease(ctx context.Context, bucket string, a leaseArgs) (leaseResult, error)
}

// Config builds a Limiter.
type Config struct {
	// Redis is the shared store; nil for the in-process limiter alone.
	Redis *Redis
	// Holder names this gateway in the store's records (unique per process).
	Holder string
	// Gateways is the number of gateways last seen alive (nil: 1).
	Gateways func() int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// QuotaClockOffset is added to the clock (Redis's, and this
	// gateway's) when deciding a quota's period. Only tests set it, to
	// cross a period boundary; it is 0 in every gateway.
	QuotaClockOffset time.Duration
}

// New returns a Limiter; Close stops its background work.
func New(cfg Config) *Limiter {
	var s store
	if cfg.Redis != nil {
		s = cfg.Redis
	}
	return newLimiter(s, cfg)
}

func newLimiter(s store, cfg Config) *Limiter {
	if cfg.Gateways == nil {
		cfg.Gateways = func() int { return 1 }
	}
	l := &Limiter{
		store:       s,
		local:       NewLocal(cfg.Now),
		breaker:     NewBreaker(breakerThreshold, breakerCooldown, cfg.Now),
		clock:       newClock(cfg.Now),
		holder:      cfg.Holder,
		gateways:    cfg.Gateways,
		active:      map[*entry]struct{}{},
		quotaOffset: cfg.QuotaClockOffset,
	}
	l.entries.init()
	l.quotas.init(s != nil)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if s != nil {
		l.wg.Add(1)
		go l.maintain()
	}
	return l
}

// SetEvents sets who hears about calls and degradation (the configuration
// loaded last).
func (l *Limiter) SetEvents(ev Events) { l.events.Store(&ev) }

// Close returns nothing more to Redis and stops the background work.
func (l *Limiter) Close() {
	l.cancel()
	l.wg.Wait()
}

// Shared reports whether a shared store is configured.
func (l *Limiter) Shared() bool { return l.store != nil }

// BreakerOpen reports whether calls are kept off Redis now.
func (l *Limiter) BreakerOpen() bool { return l.breaker.Open() }

// Allow decides whether r.Cost units of r.Bucket (and of r.Quota) may be
// spent now. The error is a request that cannot be decided (ModeDeny while
// Redis fails, or the request's context ending while it waited).
func (l *Limiter) Allow(ctx context.Context, r Request) (Result, error) {
	if l.store == nil {
		return l.allowAlone(r), nil
	}
	now := l.clock.now()
	var q *quotaEntry
	if r.Quota.Limit > 0 {
		q = l.quotas.get(r.QuotaOwner, r.Quota, now)
	}
	e := l.entries.get(r.Bucket, r.Policy, now)
	e.mu.Lock()
	for e.dead { // swept between the lookup and the lock
		e.mu.Unlock()
		e = l.entries.get(r.Bucket, r.Policy, now)
		e.mu.Lock()
	}
	e.noteUse(now, r, max(l.gateways(), r.MinGateways, 1))
	e.quota = q
	if d, over, ok := l.serve(e, q, now, r.Cost); ok {
		l.maybePrefetch(e, now)
		res := l.result(e, q, d, over, now, SourceShared)
		e.mu.Unlock()
		return res, nil
	}
	w := &waiter{cost: r.Cost, wake: make(chan struct{}, 1)}
	for {
		if w.done {
			if w.err != nil {
				e.mu.Unlock()
				return l.degraded(e, r, q, w.err)
			}
			res := l.result(e, q, w.res, w.overQuota, now, SourceShared)
			e.mu.Unlock()
			return res, nil
		}
		if w.call == nil {
			if d, over, ok := l.serve(e, q, now, r.Cost); ok {
				e.unqueue(w)
				res := l.result(e, q, d, over, now, SourceShared)
				e.mu.Unlock()
				return res, nil
			}
			if e.call == nil {
				e.unqueue(w)
				if !l.breaker.Allow() {
					e.mu.Unlock()
					return l.degraded(e, r, q, errBreakerOpen)
				}
				c := l.startCall(e, now, append(e.pending, w))
				e.pending = nil
				e.mu.Unlock()
				l.run(e, c)
				e.mu.Lock()
				continue
			}
			if !w.queued {
				w.queued = true
				e.pending = append(e.pending, w)
			}
		}
		e.mu.Unlock()
		select {
		case <-w.wake:
		case <-ctx.Done():
			e.mu.Lock()
			if !w.done {
				w.abandoned = true
				e.unqueue(w)
			}
			e.mu.Unlock()
			return Result{}, fmt.Errorf("request ended while asking Redis: %w", ctx.Err())
		}
		e.mu.Lock()
		now = l.clock.now()
	}
}

// serve decides without a call if it can (e's lock held): a token of the
// pocket, or a refusal the last answer still stands for. over is a
// refusal for the quota.
func (l *Limiter) serve(e *entry, q *quotaEntry, now time.Time, cost int) (d Decision, over, ok bool) {
	if d, ok := e.serve(now, cost, q); ok {
		return d, false, true
	}
	if q == nil {
		return Decision{}, false, false
	}
	q.mu.Lock()
	q.refresh(now, l.storeNow)
	stands := q.stands(now, cost)
	q.mu.Unlock()
	if stands {
		return e.refusedForQuota(now), true, true
	}
	return Decision{}, false, false
}

// result completes d with the quota's status (e's lock held).
func (l *Limiter) result(e *entry, q *quotaEntry, d Decision, over bool, now time.Time, src Source) Result {
	res := Result{Decision: d, Decided: true, Source: src}
	if q == nil {
		return res
	}
	pocket := 0
	if e.pocketQuota == q && now.Before(e.pocketExp) {
		pocket = e.pocket
	}
	q.mu.Lock()
	q.refresh(now, l.storeNow)
	res.Quota = q.status(now, pocket)
	q.mu.Unlock()
	if over {
		res.Quota.Exceeded = true
		res.Decision.Allowed = false
		res.Decision.RetryAfter = max(res.Decision.RetryAfter, res.Quota.ResetAfter, time.Nanosecond)
	}
	return res
}

// storeNow is the store's clock at now on this gateway's, as of the last
// answer, plus the test offset: what decides a quota's period.
func (l *Limiter) storeNow(now time.Time) time.Time {
	return now.Add(time.Duration(l.skew.Load()) + l.quotaOffset)
}

// allowAlone is the decision without a store: the in-process bucket, and
// the quota counted on this gateway alone.
func (l *Limiter) allowAlone(r Request) Result {
	if r.Quota.Limit == 0 {
		return Result{Decision: l.local.Allow(r.Bucket, r.Policy, r.Cost), Decided: true, Source: SourceLocal}
	}
	now := l.clock.now()
	q := l.quotas.lock(r.QuotaOwner, r.Quota, now)
	defer q.mu.Unlock()
	q.refresh(now, l.storeNow)
	var d Decision
	over := q.used+int64(r.Cost) > r.Quota.Limit
	if over {
		d = l.local.Allow(r.Bucket, r.Policy, 0) // the bucket as it is, for the headers
		d.Allowed = false
	} else if d = l.local.Allow(r.Bucket, r.Policy, r.Cost); d.Allowed {
		q.used += int64(r.Cost)
	}
	res := Result{Decision: d, Decided: true, Source: SourceLocal, Quota: q.status(now, 0)}
	if over {
		res.Quota.Exceeded = true
		res.Decision.RetryAfter = max(res.Quota.ResetAfter, time.Nanosecond)
	}
	return res
}

// degraded decides a request that Redis could not decide, by r.Mode.
func (l *Limiter) degraded(e *entry, r Request, q *quotaEntry, cause error) (Result, error) {
	switch r.Mode {
	case ModeAllow:
		return Result{Source: SourceAllow}, nil
	case ModeDeny:
		return Result{Source: SourceDeny}, fmt.Errorf("on_redis_error deny: %w", cause)
	}
	now := l.clock.now()
	n := max(l.gateways(), r.MinGateways, 1)
	e.mu.Lock()
	defer e.mu.Unlock()
	// Tokens Redis leased to this gateway are still good until they expire
	// (their quota units were counted with them).
	if e.pocket >= r.Cost && now.Before(e.pocketExp) && e.pocketQuota == q {
		e.pocket -= r.Cost
		e.spent += r.Cost
		return l.result(e, q, e.leased(now), false, now, SourceShared), nil
	}
	if q != nil {
		// The quota's share first, held locked until the request is
		// charged to it (another bucket of the key may share it).
		q.mu.Lock()
		q.refresh(now, l.storeNow)
		if !q.localAllows(n, r.Cost) {
			q.mu.Unlock()
			return l.result(e, q, e.refusedForQuota(now), true, now, SourceLocal), nil
		}
	}
	share := r.Policy.Divide(n)
	cost := min(r.Cost, share.Burst)
	if e.answered {
		// The share starts from the bucket as Redis last reported it (this
		// gateway's part of what was left), not from a full bucket.
		seed := l.clock.micros(e.tat)
		if !e.share.exists {
			e.share.exists, e.share.tat = true, seed
		} else {
			e.share.tat = max(e.share.tat, seed)
		}
	}
	d := e.share.allow(l.clock.micros(now), share, cost)
	if d.Allowed {
		// Charged to the shared bucket (and the quota) once Redis answers
		// again.
		e.debt += r.Cost
		if q != nil {
			q.localTotal += int64(r.Cost)
		}
		l.track(e)
	}
	if q != nil {
		q.mu.Unlock()
	}
	return l.result(e, q, d, false, now, SourceLocal), nil
}

// startCall builds the next call for e (its lock held) with the waiters of
// batch, whose need it asks for; their need is granted in one piece each.
func (l *Limiter) startCall(e *entry, now time.Time, batch []*waiter) *call {
	c := &call{sent: now, batch: batch, timeout: e.timeout}
	need, cost := 0, e.cost
	for _, w := range batch {
		w.call = c
		need += w.cost
		cost = max(cost, w.cost)
	}
	e.updateRate(now)
	c.args = l.baseArgs(e)
	c.args.need = int64(need)
	c.args.cost = int64(max(1, cost))
	c.args.extra = int64(e.want())
	switch {
	case e.pocket > 0 && e.pocketQuota != e.quota:
		// The key's quota changed (keys update): the pocket was counted
		// under the old one and is not spent under the new one. It goes
		// back in this call, credited to the counter if that is the same
		// (the same period), lost otherwise.
		c.args.ret, c.args.confirm = int64(e.pocket), e.confirm
		e.pocket = 0
	case e.pocket > 0:
		c.args.keep = int64(e.pocket)
		c.args.confirm = e.confirm
	}
	c.args.debt = int64(e.debt)
	e.debt = 0
	l.quotaArgs(c, e.quota, now)
	e.call = c
	return c
}

// startReturn builds a call that gives e's pocket back.
func (l *Limiter) startReturn(e *entry, now time.Time) *call {
	c := &call{sent: now, timeout: e.timeout}
	c.args = l.baseArgs(e)
	c.args.cost = int64(max(1, e.cost))
	c.args.ret = int64(e.pocket)
	c.args.confirm = e.confirm
	c.args.debt = int64(e.debt)
	e.debt = 0
	l.quotaArgs(c, e.pocketQuota, now)
	e.pocket = 0
	e.call = c
	return c
}

// quotaArgs adds quota q (nil: none) to call c: the counter of the period
// holding now, and what local mode admitted in it if not all of that is
// known charged.
func (l *Limiter) quotaArgs(c *call, q *quotaEntry, now time.Time) {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refresh(now, l.storeNow)
	c.quota = q
	c.args.qlimit = q.quota.Limit
	c.args.qoff = float64(l.quotaOffset / time.Microsecond)
	c.args.qmargin = float64(quotaLeaseMargin / time.Microsecond)
	q.periodArgs(&c.args)
}

// rewindow moves call c to the quota period the store says holds its now
// (µs since leaseEpoch), after the store refused the period c named. What
// local mode admitted in the period c named is not charged to another
// (docs/ratelimit.md: lost).
func (l *Limiter) rewindow(c *call, storeMicros float64) {
	q := c.quota
	now := l.clock.now()
	storeTime := leaseTime(storeMicros)
	l.skew.Store(int64(storeTime.Sub(now)))
	q.mu.Lock()
	defer q.mu.Unlock()
	q.roll(now, storeTime.Add(l.quotaOffset))
	q.periodArgs(&c.args)
}

func (l *Limiter) baseArgs(e *entry) leaseArgs {
	a := leaseArgs{
		emission: e.emission,
		burst:    e.burst,
		holder:   l.holder,
		seq:      l.seq.Add(1),
		gateways: int64(max(1, e.gateways)),
		genSeen:  e.gen,
		ttl:      float64(holdTTL / time.Microsecond),
		retain:   float64((10*time.Second + 2*e.timeout) / time.Microsecond),
	}
	if e.answered {
		a.hint = e.hint
	}
	return a
}

// run makes call c for e and applies its answer.
func (l *Limiter) run(e *entry, c *call) {
	timeout := c.timeout
	if timeout <= 0 {
		timeout = 50 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	start := l.clock.now()
	started := time.Now() // for l.stalls, on the machine's clock
	res, err := l.store.lease(ctx, e.bucket, c.args)
	if err == nil && res.wrongPeriod {
		// The quota's period is Redis's: ask again for the one it holds.
		if c.quota == nil {
			err = errWrongPeriod
		} else {
			l.rewindow(c, res.now)
			if res, err = l.store.lease(ctx, e.bucket, c.args); err == nil && res.wrongPeriod {
				err = errWrongPeriod
			}
		}
	}
	cancel()
	ev := l.eventSink()
	if ev != nil {
		ev.CallDone(l.clock.now().Sub(start), err)
	}
	if err == nil && res.stale {
		err = errStaleCall
	}
	var recovered, opened bool
	switch {
	case err == nil:
		recovered = l.breaker.Success()
	case l.ctx.Err() != nil:
		err = errClosed
	case isTimeout(err) && l.ownTimeout(started, timeout):
		// Timed out while this gateway was not running (stopped or
		// starved of CPU), not by Redis: nothing learnt about Redis. (A
		// probe of a half-open breaker lets the next request probe.)
		l.breaker.Abandon()
	case !errors.Is(err, errStaleCall):
		opened = l.breaker.Failure(start)
	}
	now := l.clock.now()
	if err == nil && c.quota != nil {
		l.skew.Store(int64(leaseTime(res.now).Sub(now)))
	}
	e.mu.Lock()
	e.call = nil
	if err != nil {
		e.fail(c, err)
	} else {
		e.apply(c, res, now)
	}
	e.wakePending()
	if e.pocket > 0 || e.debt > 0 || (err != nil && c.args.qdebt > 0) { // a debt to send again
		l.track(e)
	}
	e.mu.Unlock()
	if ev != nil {
		if opened {
			ev.Degraded(err)
		}
		if recovered {
			ev.Recovered()
		}
	}
}

// ownTimeout reports whether a call started at started (on the machine's
// clock) that failed for its deadline was timed out by this gateway not
// running, rather than by Redis: the process stalled meanwhile, or it
// noticed the deadline much later than it passed (its goroutines were
// not scheduled).
func (l *Limiter) ownTimeout(started time.Time, timeout time.Duration) bool {
	now := time.Now()
	late := max(timeout/4, minStall)
	return now.Sub(started) > timeout+late || l.stalls.during(started, now, late)
}

// isTimeout reports whether a call failed for its deadline (the
// context's, or the socket's that go-redis derives from it).
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

func (l *Limiter) eventSink() Events {
	if p := l.events.Load(); p != nil {
		return *p
	}
	return nil
}

// maybePrefetch renews e's lease in the background before its pocket runs
// dry, when this gateway is busy on the bucket (e's lock held).
func (l *Limiter) maybePrefetch(e *entry, now time.Time) {
	if e.call != nil || !l.breaker.Closed() {
		return
	}
	want := e.want()
	if want < 2 || e.pocket >= want/2 {
		return
	}
	if e.spare < 2*max(1, e.gateways) {
		// Near empty at the last answer: a lease would bring nothing, and
		// requests ask for their own tokens.
		return
	}
	c := l.startCall(e, now, nil)
	go l.run(e, c)
}

// Calls made in the background (prefetches, returns, debts) run on their
// own goroutine; Close cancels them through l.ctx.

// track remembers that e holds a pocket or a debt to look after.
func (l *Limiter) track(e *entry) {
	if e.tracked {
		return
	}
	e.tracked = true
	l.activeMu.Lock()
	l.active[e] = struct{}{}
	l.activeMu.Unlock()
}

// maintain gives back pockets no longer needed, drops expired ones, and
// charges the debts of local mode to Redis once it answers.
func (l *Limiter) maintain() {
	defer l.wg.Done()
	tick := time.NewTicker(maintainEvery)
	defer tick.Stop()
	var list []*entry
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
		}
		l.stalls.tick(time.Now())
		list = list[:0]
		l.activeMu.Lock()
		for e := range l.active {
			list = append(list, e)
		}
		l.activeMu.Unlock()
		for _, e := range list {
			l.look(e)
		}
	}
}

func (l *Limiter) look(e *entry) {
	now := l.clock.now()
	e.mu.Lock()
	var c *call
	if e.call == nil {
		if e.pocket > 0 && !now.Before(e.pocketExp) {
			e.pocket = 0 // expired: the store counts it as spent
		}
		switch {
		case e.pocket > 0 && (now.Sub(e.lastUse) >= idleReturn || e.pocketExp.Sub(now) <= returnBefore):
			if l.breaker.Closed() {
				c = l.startReturn(e, now)
			}
		case (e.debt > 0 || e.quota.owes()) && l.breaker.Allow():
			c = l.startCall(e, now, nil)
			c.args.extra = 0
		}
	}
	if c == nil && e.call == nil && e.pocket == 0 && e.debt == 0 && !e.quota.owes() {
		e.tracked = false
		l.activeMu.Lock()
		delete(l.active, e)
		l.activeMu.Unlock()
	}
	e.mu.Unlock()
	if c != nil {
		go l.run(e, c)
	}
}
