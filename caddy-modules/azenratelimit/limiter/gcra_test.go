package limiter

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/ratespec"
)

// simHolder is a gateway as the lease arithmetic sees it: a pocket it may
// spend until its own expiry (earlier than the bucket's record of it).
type simHolder struct {
	id        string
	seq       int64
	confirm   int64
	pocket    int64
	pocketExp float64
	gen       string
	hint      float64
}

// runLeaseSim drives one bucket with three holders making random calls,
// spending their pockets, losing replies and sending stale calls, and
// returns every spend (time in µs, tokens) in time order. Holders never
// spend more than they were granted.
func runLeaseSim(t *testing.T, p Policy, seed uint64, steps int) (spends [][2]float64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	e := p.emissionMicros()
	ttl := float64(1 + rng.IntN(2_000_000))
	life := math.Floor(ttl / 2)
	var s gcraState
	holders := []*simHolder{{id: "a"}, {id: "b"}, {id: "c"}}
	now := float64(1e12)
	for i := 0; i < steps; i++ {
		h := holders[rng.IntN(len(holders))]
		if h.pocket > 0 && now >= h.pocketExp {
			h.pocket = 0
		}
		switch rng.IntN(4) {
		case 0: // spend from the pocket
			if h.pocket > 0 {
				k := 1 + rng.Int64N(h.pocket)
				h.pocket -= k
				spends = append(spends, [2]float64{now, float64(k)})
			}
		default: // a call
			h.seq++
			cost := int64(1 + rng.IntN(min(3, p.Burst)))
			a := leaseArgs{
				emission: e, burst: int64(p.Burst), holder: h.id, seq: h.seq,
				need: cost * int64(rng.IntN(3)), extra: rng.Int64N(int64(p.Burst) + 1),
				gateways: int64(1 + rng.IntN(3)), cost: cost, genSeen: h.gen, hint: h.hint,
				ttl: ttl, retain: 10e6,
			}
			returning := rng.IntN(3) == 0
			if h.pocket > 0 {
				a.confirm = h.confirm
				if returning {
					a.ret, h.pocket = h.pocket, 0 // out of the pocket before sending
				} else {
					a.keep = h.pocket
				}
			}
			if rng.IntN(15) == 0 {
				a.seq = max(1, h.seq-2) // a call that arrives after later ones
			}
			r := s.lease(now, a, nil)
			if r.stale {
				break
			}
			if rng.IntN(10) == 0 {
				break // the reply is lost: the holder never learns what it got
			}
			if r.need > a.need || r.need%cost != 0 || r.extra > a.extra {
				t.Fatalf("granted %d+%d for need %d extra %d", r.need, r.extra, a.need, a.extra)
			}
			if r.need > 0 {
				spends = append(spends, [2]float64{now, float64(r.need)})
			}
			if a.keep > 0 && !r.found {
				h.pocket = 0
			}
			h.pocket += r.extra
			if h.pocket > 0 {
				h.confirm, h.pocketExp = a.seq, now+life
			}
			h.gen, h.hint = r.gen, r.now+r.tatRel
		}
		now += float64(rng.IntN(int(3*e) + 2))
	}
	return spends
}

// conforms checks spends against the policy as a token bucket of burst
// tokens refilled one per emission: an independent formulation of GCRA.
func conforms(spends [][2]float64, p Policy) (bool, int) {
	e := p.emissionMicros()
	tokens := float64(p.Burst)
	last := math.Inf(-1)
	for i, sp := range spends {
		if !math.IsInf(last, -1) {
			tokens = math.Min(float64(p.Burst), tokens+(sp[0]-last)/e)
		}
		last = sp[0]
		tokens -= sp[1]
		if tokens < -1e-6 {
			return false, i
		}
	}
	return true, -1
}

// The lease arithmetic never lets more be spent than the policy allows,
// whatever holders do with their pockets (keep, spend, return, lose
// replies, send stale calls) and however time passes.
func TestLeaseSpendsConformToThePolicy(t *testing.T) {
	for seed := uint64(1); seed <= 200; seed++ {
		p := policy(t, "p", []string{"10/s burst 20", "7/s burst 5", "1000/s burst 50", "3/h burst 3", "60/m burst 1"}[seed%5])
		spends := runLeaseSim(t, p, seed, 400)
		if ok, at := conforms(spends, p); !ok {
			t.Fatalf("seed %d, %s: spend %d of %d breaks the policy", seed, p, at, len(spends))
		}
	}
}

func FuzzLeaseArithmetic(f *testing.F) {
	f.Add(uint64(1), 10, int64(1), 20)
	f.Add(uint64(7), 7, int64(1), 5)
	f.Add(uint64(42), 3, int64(3600), 3)
	f.Add(uint64(99), 1000, int64(1), 1)
	f.Fuzz(func(t *testing.T, seed uint64, count int, periodSec int64, burst int) {
		if count < 1 || count > 1e6 || periodSec < 1 || periodSec > 86400 || burst < 1 || burst > 1000 {
			return
		}
		p := NewPolicy("f", ratespec.Policy{Rate: ratespec.Rate{Count: count, Period: time.Duration(periodSec) * time.Second}, Burst: burst})
		if p.Check() != nil {
			return
		}
		spends := runLeaseSim(t, p, seed, 300)
		if ok, at := conforms(spends, p); !ok {
			t.Fatalf("%s: spend %d of %d breaks the policy", p, at, len(spends))
		}
	})
}

// Returned tokens are never more than the holder held, and never make the
// bucket fuller than full: held tokens count against the cap while held.
func TestLeaseReturnsNeverOverfill(t *testing.T) {
	p := policy(t, "p", "1000/s burst 1000")
	var s gcraState
	now := 1e12
	base := leaseArgs{emission: p.emissionMicros(), burst: 1000, holder: "a", cost: 1, gateways: 1, ttl: 1e6, retain: 1e7}
	a := base
	a.seq, a.extra = 1, 30
	r := s.lease(now, a, nil)
	if r.extra != 20 || r.avail != 980 { // a pocket is at most 2 % of the burst
		t.Fatalf("first lease %+v", r)
	}
	// Half a second later the bucket has refilled, but a's 20 still count.
	a = base
	a.seq, a.confirm, a.ret = 2, 1, 50 // returns more than it holds
	r = s.lease(now+5e5, a, nil)
	if !r.found || r.avail != 1000 {
		t.Fatalf("after return: %+v, want avail 1000 (full, not more)", r)
	}
	// A return with a confirmation that no longer holds changes nothing.
	a.seq = 3
	if r := s.lease(now+5e5, a, nil); r.found || r.avail != 1000 {
		t.Fatalf("second return %+v", r)
	}
}
