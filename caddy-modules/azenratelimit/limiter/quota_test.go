package limiter

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/ratespec"
)

// quotaSim is the outcome of runQuotaSim for one period.
type quotaSim struct {
	granted int64 // units granted (need and leases), less credited returns
	spent   int64 // units spent by requests (grants for requests, pocket spends)
	debts   int64 // units charged as local-mode debts
	counter int64 // the counter as the store left it
	maxLim  int64 // the largest limit any call named
}

// runQuotaSim drives one bucket and its quota counter with three holders
// making random calls through the lease arithmetic (gcraState.lease):
// spending their pockets, keeping and returning them, losing replies,
// sending stale calls, changing the quota under a pocket, charging debts,
// across several periods. It returns what happened in each period.
func runQuotaSim(t *testing.T, p Policy, seed uint64, steps int, limits []int64) map[int64]*quotaSim {
	rng := rand.New(rand.NewPCG(seed, seed^0x51a7e))
	e := p.emissionMicros()
	ttl := float64(1 + rng.IntN(2_000_000))
	life := math.Floor(ttl / 2)
	margin := 2 * ttl
	periodLen := float64(1+rng.IntN(40)) * 1e6 // 1 to 40 s
	var s gcraState
	cells := map[int64]*quotaCell{}
	sims := map[int64]*quotaSim{}
	type holder struct {
		simHolder
		pocketPeriod int64
		pocketMark   string
		local        map[int64]int64 // units admitted locally per period, in all
		acked        map[int64]int64 // of which an answer confirmed charged
	}
	holders := []*holder{{simHolder: simHolder{id: "a"}}, {simHolder: simHolder{id: "b"}}, {simHolder: simHolder{id: "c"}}}
	for _, h := range holders {
		h.local, h.acked = map[int64]int64{}, map[int64]int64{}
	}
	now := float64(1e12)
	for i := 0; i < steps; i++ {
		period := int64(math.Floor(now / periodLen))
		sim := sims[period]
		if sim == nil {
			sim = &quotaSim{}
			sims[period] = sim
		}
		h := holders[rng.IntN(len(holders))]
		if h.pocket > 0 && now >= h.pocketExp {
			h.pocket = 0
		}
		switch rng.IntN(5) {
		case 4: // local mode admits a unit (the store could not be asked)
			h.local[period]++
		case 0: // spend from the pocket
			if h.pocket > 0 {
				if h.pocketPeriod != period {
					t.Fatalf("seed %d: a pocket of period %d spent in period %d", seed, h.pocketPeriod, period)
				}
				k := 1 + rng.Int64N(h.pocket)
				h.pocket -= k
				sim.spent += k
			}
		default: // a call
			h.seq++
			cost := int64(1 + rng.IntN(min(3, p.Burst)))
			limit := limits[rng.IntN(len(limits))]
			sim.maxLim = max(sim.maxLim, limit)
			mark := strconv.FormatInt(period, 10) + "/" + strconv.FormatInt(limit, 10)
			a := leaseArgs{
				emission: e, burst: int64(p.Burst), holder: h.id, seq: h.seq,
				need: cost * int64(rng.IntN(3)), extra: rng.Int64N(int64(p.Burst) + 1),
				gateways: int64(1 + rng.IntN(3)), cost: cost, genSeen: h.gen, hint: h.hint,
				ttl: ttl, retain: 10e6,
				qkey: "q" + strconv.FormatInt(period, 10), qlimit: limit, qmark: mark,
				qstart: float64(period) * periodLen, qend: float64(period+1) * periodLen, qmargin: margin,
			}
			if h.local[period] > h.acked[period] && rng.IntN(2) == 0 {
				// What local mode admitted, in all, however often it was
				// sent before (calls that timed out, replies lost).
				a.qdebt, a.qacked, a.qledger = h.local[period], h.acked[period], "l"
			}
			returning := rng.IntN(3) == 0
			otherMark := false
			switch {
			case h.pocket > 0 && h.pocketMark == mark:
				a.confirm = h.confirm
				if returning {
					a.ret, h.pocket = h.pocket, 0 // out of the pocket before sending
				} else {
					a.keep = h.pocket
				}
			case h.pocket > 0 && rng.IntN(2) == 0:
				// A return moved to another period or quota (Limiter.rewindow):
				// nothing may be credited to this counter.
				a.confirm, a.ret, h.pocket = h.confirm, h.pocket, 0
				otherMark = true
			default:
				h.pocket = 0 // another quota: the gateway drops its pocket (Limiter.startCall)
			}
			if rng.IntN(15) == 0 {
				a.seq = max(1, h.seq-2) // a call that arrives after later ones
			}
			qc := cells[period]
			if qc == nil {
				qc = &quotaCell{}
				cells[period] = qc
			}
			before, ledgerBefore := qc.used, qc.ledger[h.id]
			r := s.lease(now, a, qc)
			if r.stale || r.wrongPeriod {
				if qc.used != before {
					t.Fatalf("seed %d: a call that changed nothing changed the counter", seed)
				}
				break
			}
			if r.need > a.need || r.need%cost != 0 || r.extra > a.extra {
				t.Fatalf("granted %d+%d for need %d extra %d", r.need, r.extra, a.need, a.extra)
			}
			charged := qc.ledger[h.id] - ledgerBefore
			if qc.ledger[h.id] > h.local[period] {
				t.Fatalf("seed %d: %d charged for %d admitted locally", seed, qc.ledger[h.id], h.local[period])
			}
			credited := before + charged + r.need + r.extra - qc.used // the return credited
			if credited < 0 || credited > a.ret || (otherMark && credited != 0) {
				t.Fatalf("seed %d: %d credited for a return of %d (counted under another quota: %v)", seed, credited, a.ret, otherMark)
			}
			sim.granted += r.need + r.extra - credited
			sim.debts += charged
			sim.counter = qc.used
			if rng.IntN(10) == 0 {
				break // the reply is lost: the holder never learns what it got
			}
			sim.spent += r.need
			h.acked[period] = max(h.acked[period], a.qdebt)
			if a.keep > 0 && !r.found {
				h.pocket = 0
			}
			h.pocket += r.extra
			if h.pocket > 0 {
				h.confirm, h.pocketExp = a.seq, now+life
				h.pocketPeriod, h.pocketMark = period, mark
			}
			h.gen, h.hint = r.gen, r.now+r.tatRel
		}
		now += float64(rng.IntN(int(min(3*e, periodLen/20)) + 2))
	}
	return sims
}

// checkQuotaSim checks the quota's invariants for every period.
func checkQuotaSim(t *testing.T, seed uint64, sims map[int64]*quotaSim) {
	t.Helper()
	for period, sim := range sims {
		switch {
		case sim.granted > sim.maxLim:
			t.Fatalf("seed %d, period %d: %d units granted, quota %d", seed, period, sim.granted, sim.maxLim)
		case sim.spent > sim.granted:
			t.Fatalf("seed %d, period %d: %d units spent, %d granted", seed, period, sim.spent, sim.granted)
		case sim.counter != sim.granted+sim.debts:
			t.Fatalf("seed %d, period %d: counter %d, want granted %d + debts %d", seed, period, sim.counter, sim.granted, sim.debts)
		}
	}
}

// The lease arithmetic never grants more than the quota left, whatever
// holders do with their pockets, however the quota changes and time
// passes across periods; the counter shows exactly what was granted and
// charged, and no pocket is spent after its period.
func TestQuotaNeverGrantsMoreThanLeft(t *testing.T) {
	limitSets := [][]int64{{25}, {1}, {1000}, {7, 30}, {100, 3}}
	for seed := uint64(1); seed <= 300; seed++ {
		p := policy(t, "p", []string{"10/s burst 20", "1000/s burst 500", "100/s burst 50", "60/m burst 1"}[seed%4])
		sims := runQuotaSim(t, p, seed, 600, limitSets[seed%uint64(len(limitSets))])
		checkQuotaSim(t, seed, sims)
	}
}

// With demand above it, the quota is granted in full: a single holder
// that spends what it gets reaches exactly the quota.
func TestQuotaGrantsAllOfIt(t *testing.T) {
	p := policy(t, "p", "1000000/s burst 1000")
	var s gcraState
	qc := &quotaCell{}
	now := 1e12
	var spent int64
	for seq := int64(1); seq <= 200; seq++ {
		r := s.lease(now, leaseArgs{
			emission: p.emissionMicros(), burst: 1000, holder: "g", seq: seq, need: 1, cost: 1, gateways: 1,
			ttl: 1e6, retain: 1e7, qkey: "q", qlimit: 37, qmark: "m", qstart: 0, qend: 2e12, qmargin: 2e6,
		}, qc)
		spent += r.need
		now += 10
	}
	if spent != 37 || qc.used != 37 {
		t.Fatalf("spent %d, counter %d, want 37", spent, qc.used)
	}
}

func FuzzQuotaArithmetic(f *testing.F) {
	f.Add(uint64(1), 10, int64(1), 20, int64(25), int64(25))
	f.Add(uint64(7), 1000, int64(1), 500, int64(1000), int64(3))
	f.Add(uint64(42), 3, int64(3600), 3, int64(1), int64(2))
	f.Add(uint64(99), 100000, int64(1), 1000, int64(10000), int64(10000))
	f.Fuzz(func(t *testing.T, seed uint64, count int, periodSec int64, burst int, lim1, lim2 int64) {
		if count < 1 || count > 1e6 || periodSec < 1 || periodSec > 86400 || burst < 1 || burst > 1000 ||
			lim1 < 1 || lim1 > 1e6 || lim2 < 1 || lim2 > 1e6 {
			return
		}
		p := NewPolicy("f", ratespec.Policy{Rate: ratespec.Rate{Count: count, Period: time.Duration(periodSec) * time.Second}, Burst: burst})
		if p.Check() != nil {
			return
		}
		checkQuotaSim(t, seed, runQuotaSim(t, p, seed, 300, []int64{lim1, lim2}))
	})
}

// The quota is the second item of the draft-10 Lists; the X-RateLimit-*
// fields stay the rate limit's; Retry-After is the decision's (the
// Limiter makes it the time until the period ends for a quota refusal).
func TestQuotaHeaders(t *testing.T) {
	p := policy(t, "default", "60/m")
	tests := []struct {
		name string
		d    Decision
		q    QuotaStatus
		want map[string]string
	}{
		{"allowed", Decision{Allowed: true, Remaining: 59, ResetAfter: 900 * time.Millisecond},
			QuotaStatus{Limit: 10000, Period: "month", Remaining: 9988, ResetAfter: 1036799500 * time.Millisecond, Window: 31 * 24 * time.Hour},
			map[string]string{
				"RateLimit-Policy":  `"default";q=60;w=60, "quota";q=10000;w=2678400`,
				"RateLimit":         `"default";r=59;t=1, "quota";r=9988;t=1036800`,
				"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59", "Retry-After": "",
			}},
		{"quota spent", Decision{Remaining: 60, RetryAfter: 3*time.Hour + 1}, QuotaStatus{Limit: 25, Period: "day", ResetAfter: 3*time.Hour + 1, Window: 24 * time.Hour, Exceeded: true},
			map[string]string{
				"RateLimit-Policy": `"default";q=60;w=60, "quota";q=25;w=86400`,
				"RateLimit":        `"default";r=60;t=0, "quota";r=0;t=10801`,
				"Retry-After":      "10801", "X-RateLimit-Remaining": "60",
			}},
		{"no quota adds nothing", Decision{Allowed: true, Remaining: 1}, QuotaStatus{},
			map[string]string{"RateLimit-Policy": `"default";q=60;w=60`, "RateLimit": `"default";r=1;t=0`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			SetHeaders(h, p, tt.d)
			SetQuotaHeaders(h, tt.q)
			for k, v := range tt.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestQuotaRefusalMessage(t *testing.T) {
	tests := []struct {
		q    QuotaStatus
		want string
	}{
		{QuotaStatus{Limit: 10000, Period: "month", ResetAfter: 3*24*time.Hour + 3*time.Hour + 10*time.Minute},
			"Quota exceeded: 10000 requests per month. Resets in 3 d 4 h."},
		{QuotaStatus{Limit: 1, Period: "day", ResetAfter: 11*time.Minute + 30*time.Second},
			"Quota exceeded: 1 request per day. Resets in 12 min."},
	}
	for _, tt := range tests {
		if got := QuotaRefusalMessage(tt.q); got != tt.want {
			t.Errorf("%q, want %q", got, tt.want)
		}
	}
}

// DurationWords rounds up, so a client that waits as long as it says is
// never early, and drops a zero second part.
func TestDurationWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                    "1 s",
		400 * time.Millisecond:               "1 s",
		40 * time.Second:                     "40 s",
		59*time.Second + time.Millisecond:    "1 min",
		12 * time.Minute:                     "12 min",
		11*time.Minute + time.Second:         "12 min",
		59*time.Minute + 1*time.Second:       "1 h",
		time.Hour:                            "1 h",
		5*time.Hour + 29*time.Minute + 1:     "5 h 30 min",
		23*time.Hour + 59*time.Minute + 1:    "1 d",
		24 * time.Hour:                       "1 d",
		2*24*time.Hour + time.Second:         "2 d 1 h",
		3*24*time.Hour + 4*time.Hour:         "3 d 4 h",
		30*24*time.Hour + 23*time.Hour + 100: "31 d",
	} {
		if got := DurationWords(d); got != want {
			t.Errorf("DurationWords(%s) = %q, want %q", d, got, want)
		}
	}
}
