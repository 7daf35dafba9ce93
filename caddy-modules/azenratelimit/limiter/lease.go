package limiter

import (
	"math"
	"sync"
	"time"
)

// entry is this gateway's side of one shared bucket: its view of the bucket
// as of the last Redis answer, the pocket of leased tokens, the demand
// estimate that sizes leases, the call in flight and who waits for it, and
// the local fallback share with its debt.
type entry struct {
	mu       sync.Mutex
	bucket   string
	emission float64 // µs
	burst    int64

	// The bucket as of the last answer.
	answered  bool
	gen       string
	hint      float64   // its TAT on the store's clock (µs)
	tat       time.Time // the same on this gateway's clock, never earlier
	remaining int       // tokens left (pocket included) at the answer
	spare     int       // tokens left outside every pocket at the answer
	spent     int       // tokens spent from the pocket since
	denyCost  int       // a request of this cost is refused until denyUntil
	denyUntil time.Time

	// The pocket: tokens leased to this gateway, and the quota their units
	// were counted under (nil: none).
	pocket      int
	pocketExp   time.Time
	confirm     int64 // the call whose hold covers the pocket
	pocketQuota *quotaEntry

	// Demand on this gateway, and the settings of its last request.
	units    int
	unitsAt  time.Time
	rate     float64 // units per second, smoothed
	lastUse  time.Time
	cost     int
	timeout  time.Duration
	gateways int
	quota    *quotaEntry // of the last request (nil: none)

	call    *call
	pending []*waiter // waiting for the next call
	tracked bool      // in Limiter.active
	dead    bool      // swept from the table: look it up again

	// on_redis_error local: this gateway's share, and what it spent from
	// it, to be charged to the shared bucket when Redis answers again.
	share gcraState
	debt  int
}

// call is one call to the store in flight.
type call struct {
	args    leaseArgs
	sent    time.Time
	timeout time.Duration
	batch   []*waiter
	quota   *quotaEntry // the quota in args (nil: none)
}

// waiter is a request waiting for a call.
type waiter struct {
	cost      int
	wake      chan struct{} // capacity 1
	call      *call         // the call asking for it (nil: pending)
	queued    bool          // in entry.pending
	done      bool
	abandoned bool
	res       Decision
	overQuota bool // refused for the quota
	err       error
}

func (e *entry) noteUse(now time.Time, r Request, gateways int) {
	e.gateways = gateways
	e.units += r.Cost
	e.lastUse = now
	e.cost = r.Cost
	e.timeout = r.Timeout
}

// serve decides without a call if it can: a token of the pocket (counted
// under the request's quota q), or a refusal the last answer still stands
// for.
func (e *entry) serve(now time.Time, cost int, q *quotaEntry) (Decision, bool) {
	if e.pocket > 0 && !now.Before(e.pocketExp) {
		e.pocket = 0 // expired: the store counts it as spent
	}
	if e.pocket >= cost && e.pocketQuota == q {
		e.pocket -= cost
		e.spent += cost
		return e.leased(now), true
	}
	if cost == e.denyCost && now.Before(e.denyUntil) {
		return Decision{RetryAfter: e.denyUntil.Sub(now), ResetAfter: max(0, e.tat.Sub(now))}, true
	}
	return Decision{}, false
}

// leased is the decision for a token just spent from the pocket.
func (e *entry) leased(now time.Time) Decision {
	return Decision{Allowed: true, Remaining: max(0, e.remaining-e.spent), ResetAfter: max(0, e.tat.Sub(now))}
}

// refusedForQuota is a refusal for the quota: the bucket as this gateway
// last saw it, untouched (Limiter.result adds the Retry-After).
func (e *entry) refusedForQuota(now time.Time) Decision {
	return Decision{Remaining: max(0, e.remaining-e.spent), ResetAfter: max(0, e.tat.Sub(now))}
}

// updateRate folds the demand since the last call into the estimate.
func (e *entry) updateRate(now time.Time) {
	if e.unitsAt.IsZero() {
		e.unitsAt, e.units = now, 0
		return
	}
	dt := now.Sub(e.unitsAt)
	if dt < time.Millisecond {
		return
	}
	inst := float64(e.units) / dt.Seconds()
	if e.rate == 0 {
		e.rate = inst
	} else {
		e.rate = (e.rate + inst) / 2
	}
	e.units, e.unitsAt = 0, now
}

// want is the lease size this gateway's demand calls for.
func (e *entry) want() int {
	w := e.rate * leaseHorizon.Seconds()
	if w < 1 {
		return 0
	}
	return int(min(w, float64(e.burst)))
}

// apply takes in a successful answer received at now.
func (e *entry) apply(c *call, r leaseResult, now time.Time) {
	a := c.args
	if a.keep > 0 && !r.found {
		e.pocket = 0 // Redis no longer covers it (the bucket was lost)
	}
	e.pocket += int(r.extra)
	if e.pocket > 0 {
		e.confirm = a.seq
		e.pocketExp = c.sent.Add(leaseLife)
		e.pocketQuota = c.quota
	} else {
		e.confirm = 0
		e.pocketQuota = nil
	}
	// The quota: the counter as Redis left it, and whether what is left
	// still admits a request of the call's cost (else that refusal stands).
	qleft := int64(math.MaxInt64)
	if a.qlimit > 0 && r.qused >= 0 {
		qleft = a.qlimit - r.qused
		if q := c.quota; q != nil {
			q.mu.Lock()
			if q.mark == a.qmark {
				// The period ends where Redis's clock says: its end on this
				// gateway's clock is re-derived from each answer, so a
				// gateway whose clock is off (or whose skew was not known
				// when the period began) tells clients when it really resets.
				q.endLocal = now.Add(microsDuration(q.end - (r.now + a.qoff)))
				q.answered, q.used = true, r.qused
				q.localAcked = max(q.localAcked, a.qdebt)
				if qleft < a.cost {
					q.standLeft, q.standUntil = qleft, now.Add(min(quotaStand, q.endLocal.Sub(now)))
				} else {
					q.standUntil = time.Time{}
				}
			}
			q.mu.Unlock()
		}
	}
	e.answered = true
	e.gen = r.gen
	e.hint = r.now + r.tatRel
	e.tat = now.Add(microsDuration(r.tatRel))
	e.remaining = int(r.avail) + e.pocket
	e.spare = int(r.avail)
	e.spent = 0
	if r.retryRel > 0 {
		e.denyCost, e.denyUntil = int(a.cost), now.Add(microsDuration(r.retryRel))
	} else {
		e.denyCost, e.denyUntil = 0, time.Time{}
	}
	units := int(r.need)
	for _, w := range c.batch {
		if w.abandoned {
			continue // its token, if granted, is lost
		}
		w.done = true
		if units >= w.cost {
			units -= w.cost
			w.res = Decision{Allowed: true, Remaining: e.remaining + units, ResetAfter: max(0, e.tat.Sub(now))}
		} else if qleft < int64(w.cost) {
			w.res, w.overQuota = e.refusedForQuota(now), true
		} else {
			w.res = Decision{
				RetryAfter: max(time.Nanosecond, microsDuration(r.retryRel)),
				ResetAfter: max(0, e.tat.Sub(now)),
			}
		}
		signal(w)
	}
}

// fail ends c's waiters, and those queued behind it, with err: Redis just
// failed, so they are decided by the fallback rather than by another call.
func (e *entry) fail(c *call, err error) {
	e.debt += int(c.args.debt)
	// (A quota's local admissions stay owed until an answer confirms them.)
	for _, w := range c.batch {
		if !w.abandoned {
			w.done, w.err = true, err
			signal(w)
		}
	}
	for _, w := range e.pending {
		w.done, w.err, w.queued = true, err, false
		signal(w)
	}
	e.pending = nil
}

// wakePending lets the waiters queued behind a finished call try again
// (the first of them makes the next call, for all that are still there).
func (e *entry) wakePending() {
	for _, w := range e.pending {
		signal(w)
	}
}

func (e *entry) unqueue(w *waiter) {
	if !w.queued {
		return
	}
	w.queued = false
	for i, x := range e.pending {
		if x == w {
			e.pending = append(e.pending[:i], e.pending[i+1:]...)
			return
		}
	}
}

func signal(w *waiter) {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// entries is the table of lease entries, one per bucket.
type entries struct{ table[string, entry] }

// entryIdle is how long an entry with nothing to look after is kept once
// its bucket may still be partly empty.
const entryIdle = 10 * time.Minute

func (t *entries) init() { t.table.init(forgetEntry) }

func (t *entries) get(bucket string, p Policy, now time.Time) *entry {
	return t.table.get(bucket, bucket, now, func() *entry {
		return &entry{bucket: bucket, emission: p.emissionMicros(), burst: int64(p.Burst)}
	})
}

// forgetEntry lets an entry go when it has nothing in hand and its bucket
// is full again (or it was not used for entryIdle): it would start the
// same.
func forgetEntry(e *entry, now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	// A local share in use (Redis down) must not start full again.
	idle := e.call == nil && len(e.pending) == 0 && e.pocket == 0 && e.debt == 0 && !e.tracked &&
		(now.Sub(e.lastUse) > entryIdle || (!e.tat.After(now) && !e.share.exists))
	e.dead = e.dead || idle
	return idle
}
