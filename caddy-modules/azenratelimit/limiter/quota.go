package limiter

import (
	"strings"
	"sync"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/quota"
)

// Quotas (contract §10): a key may have N requests (cost units) per UTC day
// or month. With Redis they are counted in the key's counter
// (internal/quota.Key), in the same script call as the rate limit; leases
// take quota units with their tokens. Without Redis, or while it fails,
// each gateway counts in process (docs/ratelimit.md, "Quotas").

// Quota tuning (docs/ratelimit.md explains it).
const (
	// quotaLeaseMargin: no lease is granted this close to the end of a
	// quota period (on Redis's clock), so every pocket is spent or gone
	// before the period ends. Longer than leaseLife and holdTTL.
	quotaLeaseMargin = 2 * time.Second
	// quotaStand is how long a quota refusal answers further requests of
	// the key on this gateway without a call (at most until the period
	// ends): other gateways may still return leased units, or the key's
	// quota may be raised.
	quotaStand = time.Second
)

// QuotaStatus is a key's quota as seen by one decision (Limit 0: none).
type QuotaStatus struct {
	Limit  int64
	Period string // apikey.PeriodDay or apikey.PeriodMonth
	// Remaining is what this gateway knows is left in the period: the
	// count as of its last Redis answer, less what it admitted since.
	Remaining int64
	// ResetAfter is how long until the period ends (the count restarts).
	ResetAfter time.Duration
	// Window is the length of the current period.
	Window time.Duration
	// Exceeded: this request was refused because the quota is spent.
	Exceeded bool

	policyItem string // `, "quota";q=…;w=…`, built once per period
}

// quotaEntry is this gateway's side of one key's quota in its current
// period: which counter, the count as of the last answer, and what local
// mode admitted on its share. Lock order: an entry's mu, then this mu.
type quotaEntry struct {
	mu    sync.Mutex
	owner string
	quota apikey.Quota

	// The current period: its counter, its mark (the period, as the store
	// records it on holds: "2026-12-01", "2026-12"), its bounds on the store's clock (µs since
	// leaseEpoch) and its end on this gateway's clock.
	key        string
	localKey   string // the counter's ledger of local-mode charges
	mark       string
	start, end float64
	endLocal   time.Time
	window     time.Duration
	policyItem string // its RateLimit-Policy item (SetQuotaHeaders)

	// answered: used is the counter as of an answer in this period. With no
	// store, used is the count itself.
	answered bool
	used     int64
	// Admitted by local mode in the period, in all (sent as is, so the
	// store charges it once), and how much of it an answer confirmed
	// charged (and so in used).
	localTotal, localAcked int64
	// A refusal stands until standUntil for requests above standLeft.
	standLeft  int64
	standUntil time.Time

	lastUse time.Time
	dead    bool
}

// roll moves q to the period holding storeNow (the store's clock plus the
// test offset), seen at now on this gateway's clock. A new period starts
// with nothing used, nothing owed: local admissions of a period that
// ended and were not charged are dropped (docs/ratelimit.md says what that
// loses).
func (q *quotaEntry) roll(now, storeNow time.Time) {
	start, end := q.quota.Window(storeNow)
	q.endLocal = now.Add(end.Sub(storeNow))
	key := quota.Key(q.owner, q.quota, storeNow)
	if key == q.key {
		return
	}
	q.key = key
	q.localKey = quota.LocalKey(q.owner, q.quota, storeNow)
	q.mark = key[strings.LastIndexByte(key, ':')+1:]
	q.start, q.end = leaseMicros(start), leaseMicros(end)
	q.window = end.Sub(start)
	q.policyItem = quotaPolicyItem(q.quota.Limit, q.window)
	q.answered, q.used, q.localTotal, q.localAcked = false, 0, 0, 0
	q.standLeft, q.standUntil = 0, time.Time{}
}

// periodArgs puts q's period into a: its counter, ledger and bounds, the
// count it last saw, and what local mode admitted in it if not all of
// that is known charged (then as a total, for the store to charge once).
func (q *quotaEntry) periodArgs(a *leaseArgs) {
	a.qkey, a.qmark, a.qstart, a.qend = q.key, q.mark, q.start, q.end
	a.qdebt, a.qacked, a.qledger = 0, 0, ""
	if q.owed() > 0 {
		a.qdebt, a.qacked, a.qledger = q.localTotal, q.localAcked, q.localKey
	}
	a.qhint = 0
	if q.answered {
		a.qhint = q.used
	}
}

// refresh rolls q over when its period has ended on this gateway's clock.
func (q *quotaEntry) refresh(now time.Time, storeNow func(time.Time) time.Time) {
	q.lastUse = now
	if q.key == "" || !now.Before(q.endLocal) {
		q.roll(now, storeNow(now))
	}
}

// status is q as of now; pocket is the units this gateway holds leased
// under q and has not spent (counted as used in the store, but available
// to this gateway's next requests).
func (q *quotaEntry) status(now time.Time, pocket int) QuotaStatus {
	left := q.quota.Limit - q.used - q.owed() + int64(pocket)
	return QuotaStatus{
		Limit:      q.quota.Limit,
		Period:     q.quota.Period,
		Remaining:  min(q.quota.Limit, max(0, left)),
		ResetAfter: max(0, q.endLocal.Sub(now)),
		Window:     q.window,
		policyItem: q.policyItem,
	}
}

// stands reports whether a refusal of the last answer still answers a
// request of cost.
func (q *quotaEntry) stands(now time.Time, cost int) bool {
	return int64(cost) > q.standLeft && now.Before(q.standUntil)
}

// localAllows reports whether local mode may admit cost more units on this
// gateway's share: what the last answer left, divided by the n gateways.
// A period this gateway has no answer for counts from 0.
func (q *quotaEntry) localAllows(n, cost int) bool {
	share := (q.quota.Limit - q.used) / int64(max(1, n))
	return q.owed()+int64(cost) <= share
}

// owed is what local mode admitted and no answer confirmed charged.
func (q *quotaEntry) owed() int64 { return q.localTotal - q.localAcked }

// quotaID names a quota entry: the owner (key id) and its quota.
type quotaID struct {
	owner  string
	limit  int64
	period string
}

// quotaTable is the table of quota entries, one per owner and quota.
type quotaTable struct{ table[quotaID, quotaEntry] }

// init: shared means the counts live in a store, so an entry is only a
// cache and may be forgotten when idle; without one, only once its period
// ended.
func (t *quotaTable) init(shared bool) {
	t.table.init(func(e *quotaEntry, now time.Time) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		// Nothing owed, and the entry no longer counts.
		idle := e.owed() == 0 && (!now.Before(e.endLocal) || (shared && now.Sub(e.lastUse) > entryIdle))
		e.dead = e.dead || idle
		return idle
	})
}

// lock returns the entry of owner's quota q, locked.
func (t *quotaTable) lock(owner string, q apikey.Quota, now time.Time) *quotaEntry {
	for {
		e := t.get(owner, q, now)
		e.mu.Lock()
		if !e.dead {
			return e
		}
		e.mu.Unlock()
	}
}

func (t *quotaTable) get(owner string, q apikey.Quota, now time.Time) *quotaEntry {
	id := quotaID{owner: owner, limit: q.Limit, period: q.Period}
	return t.table.get(id, owner, now, func() *quotaEntry { return &quotaEntry{owner: owner, quota: q} })
}

// leaseMicros is t in the store's unit: µs since leaseEpoch.
func leaseMicros(t time.Time) float64 {
	return float64(t.UnixMicro() - leaseEpoch*1_000_000)
}

// leaseTime is the inverse of leaseMicros.
func leaseTime(us float64) time.Time {
	return time.UnixMicro(int64(us) + leaseEpoch*1_000_000)
}

// owes reports whether local mode admitted units of q not yet charged to
// the store (q may be nil).
func (q *quotaEntry) owes() bool {
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.owed() > 0
}
