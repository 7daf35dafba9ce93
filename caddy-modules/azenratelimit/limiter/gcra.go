package limiter

import (
	"math"
	"sort"
	"strconv"
)

// This file is the one GCRA implementation in Go. It is the arithmetic of
// the lease script (leaseScript, redis.go) step for step, in the same
// units (microseconds as float64) and the same order of operations, and it
// is what the in-process limiter and the local fallback shares run. A test
// (TestLeaseScriptMatchesGo) runs random sequences through both and
// compares every answer.
//
// The model. A bucket is GCRA's theoretical arrival time (TAT): the bucket
// holds avail = burst - (tat - now)/emission tokens, and a request of cost
// c passes while avail >= c. A lease moves tokens out of the bucket into a
// holder's pocket (a "hold": holder, sequence number, tokens, expiry). Held
// tokens still count as being in the bucket for its cap: tat never falls
// below now + held*emission, so the bucket plus every pocket never holds
// more than burst, and the requests admitted from pockets, wherever and
// whenever they are spent, conform to the policy exactly. A holder settles
// its pocket in its next call (it keeps what it still holds, gives back
// what it returns, the rest counts as spent); a hold that is not settled by
// its expiry counts as spent at its expiry.

// A pocket is at most burst / (50 × gateways) tokens (what it keeps
// included), so all pockets together never hold more than
// 2 % of the bucket: even if none were spent or returned, at least 98 % of
// what the policy allows stays grantable.
//
// Quotas (contract §10) are counted in the same call: a counter per key
// and UTC period (internal/quota names it) holds the units granted in the
// period, leased ones included. Grants are bounded by what the counter has
// left; a lease of n tokens takes n units from the counter too, a return
// gives both back, and a hold records which period (its mark: the
// counter) its units were counted under, so a pocket is never settled
// against another counter. No lease is granted within qmargin of the period's end, so no
// pocket outlives its period. Units admitted while the store could not be
// asked are added even past the limit; a holder sends the total it
// admitted so in the period (qdebt), and the store adds only what it has
// not charged yet (its ledger, the hash at quota.LocalKey), so a call
// that timed out and still reached the store, or a retry, never charges
// twice.
//
// leaseEpoch is 2017-01-01T00:00:00Z in Unix seconds: the script counts
// microseconds from it (as redis_rate does) to keep numbers well inside a
// float64's exact range.
const leaseEpoch = 1483228800

// availEpsilon absorbs floating-point noise when counting whole tokens: a
// bucket whose exact content is 3 tokens must not read as 2.9999999.
const availEpsilon = 1e-9

// hold is one holder's pocket as the bucket records it. n == 0 means the
// holder holds nothing; the record is kept (for a while) so a late, stale
// call from it is recognised by its sequence number.
type hold struct {
	seq  int64
	n    int64
	exp  float64 // µs; when n == 0, the time of the last write
	mark string  // the quota period its tokens were counted under ("" for none)
}

// quotaCell is a quota counter as the store keeps it (the string at
// KEYS[2] in Redis), with its ledger of local-mode charges per holder (the
// hash at KEYS[3]).
type quotaCell struct {
	exists bool
	used   int64
	ledger map[string]int64
}

// gcraState is one bucket.
type gcraState struct {
	exists bool
	tat    float64
	gen    string
	taken  int64 // tokens taken since the bucket was created, net of returns
	holds  map[string]*hold
}

// leaseArgs is one call on a bucket. The in-process limiter uses only
// emission, burst, need and cost.
type leaseArgs struct {
	emission float64 // µs per token
	burst    int64
	holder   string
	seq      int64 // this call's number, increasing per holder
	confirm  int64 // seq of the hold that covers the holder's pocket (0: none)
	keep     int64 // tokens of the pocket the holder keeps
	ret      int64 // tokens of the pocket the holder gives back
	need     int64 // tokens wanted now, granted in multiples of cost
	extra    int64 // tokens wanted for the pocket
	debt     int64 // tokens spent while the bucket could not be asked
	gateways int64 // gateways sharing the bucket (extra is shared out)
	cost     int64 // the unit of need; Retry-After is for this cost
	genSeen  string
	hint     float64 // the TAT the holder last saw (µs), for a bucket recreated since
	ttl      float64 // hold lifetime, µs
	retain   float64 // how long records outlive a full bucket, µs

	// The key's quota, when qlimit > 0 (see the top of this file).
	qkey    string  // the counter (KEYS[2]); quota.Key
	qledger string  // its ledger (KEYS[3], when qdebt > 0); quota.LocalKey
	qlimit  int64   // units per period
	qmark   string  // names the period (the counter): "2026-12-01", "2026-12"
	qstart  float64 // the period, µs since leaseEpoch: [qstart, qend)
	qend    float64
	qoff    float64 // added to the store's clock for the quota (tests only; 0)
	qdebt   int64   // units this holder admitted in the period while the store could not be asked, in all
	qacked  int64   // of qdebt, what the holder knows was charged (for a ledger the store lost)
	qhint   int64   // the count this holder last saw, for a counter the store lost
	qmargin float64 // no lease this close to the period's end, µs
}

// leaseResult is the answer.
type leaseResult struct {
	stale    bool    // the call was older than one already applied: nothing changed
	need     int64   // tokens granted now
	extra    int64   // tokens granted into the pocket
	found    bool    // the holder's previous pocket was still covered
	avail    int64   // whole tokens left in the bucket, pockets excluded
	tatRel   float64 // tat - now, µs, rounded up
	retryRel float64 // until a request of cost would pass, µs, rounded up (<= 0: now)
	now      float64
	gen      string
	ttlRel   float64 // how long the bucket's record must live, µs

	// wrongPeriod: the store's clock is outside [qstart, qend): nothing
	// changed; ask again with the period holding now.
	wrongPeriod bool
	qused       int64 // the quota counter after the call (-1: no quota)
}

// lease applies one call to s at now (µs since leaseEpoch), and to the
// quota counter qc when a.qlimit > 0. It is the lease script, line for
// line.
func (s *gcraState) lease(now float64, a leaseArgs, qc *quotaCell) leaseResult {
	e := a.emission
	burst := float64(a.burst)
	gateways := float64(max(1, a.gateways))
	if own := s.holds[a.holder]; own != nil && own.seq >= a.seq {
		return leaseResult{stale: true, qused: -1}
	}
	// The quota's period is decided on the store's clock: a caller that
	// named another period's counter asks again (nothing changed).
	quota := a.qlimit > 0
	if quota {
		if qnow := now + a.qoff; qnow < a.qstart || qnow >= a.qend {
			return leaseResult{wrongPeriod: true, now: now, qused: -1}
		}
	}
	if !s.exists {
		s.exists = true
		s.tat = now
		s.taken = 0
		s.holds = nil
		if a.holder != "" { // the in-process limiter has no holders and no generations
			sec := int64(now)/1e6 + leaseEpoch
			usec := int64(now) % 1e6
			s.gen = strconv.FormatInt(sec, 10) + "." + strconv.FormatInt(usec, 10) + "-" + a.holder
		}
	}
	if a.hint > 0 && a.genSeen != s.gen {
		// A bucket the store lost starts from what this holder last saw of
		// it (plus what was taken since), not full.
		s.tat = math.Max(s.tat, a.hint+float64(s.taken)*e)
	}
	own := s.holds[a.holder]
	qused := int64(-1)
	if quota {
		// A counter the store lost starts from what this holder last saw.
		qused = max(0, a.qhint)
		if qc.exists {
			qused = qc.used
		}
		if a.qdebt > 0 {
			charged, ok := qc.ledger[a.holder]
			if !ok {
				charged = a.qacked
			}
			qused += max(0, a.qdebt-charged)
			if qc.ledger == nil {
				qc.ledger = map[string]int64{}
			}
			qc.ledger[a.holder] = max(charged, a.qdebt)
		}
	}

	// Holds past their expiry count as spent at their expiry.
	var held int64
	var expired []*hold
	for _, h := range s.holds {
		if h.n > 0 {
			held += h.n
			if h.exp <= now {
				expired = append(expired, h)
			}
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].exp < expired[j].exp })
	for _, h := range expired {
		s.tat = math.Max(s.tat, h.exp+float64(held)*e)
		held -= h.n
		h.n = 0
	}
	s.tat = math.Max(s.tat, now+float64(held)*e)

	// The holder's previous pocket: what it keeps stays held, what it
	// returns goes back to the bucket, the rest was spent.
	keep, ret := a.keep, a.ret
	// Its quota units were counted under own.mark: settled only against
	// the same counter.
	found := own != nil && own.n > 0 && a.confirm > 0 && own.seq >= a.confirm && own.mark == a.qmark
	if found {
		keep = min(keep, own.n)
		ret = min(ret, own.n-keep)
		held -= own.n
		s.tat -= float64(ret) * e
		if quota {
			qused = max(0, qused-ret)
		}
	} else {
		keep, ret = 0, 0
	}
	s.tat = math.Max(s.tat, now+float64(held)*e)
	s.tat += float64(a.debt) * e

	avail := burst - (s.tat-now)/e
	cost := max(1, a.cost)
	gNeed := max(0, min(a.need, int64(math.Floor((avail+availEpsilon)/float64(cost)))*cost))
	var qleft int64
	if quota {
		// The quota bounds the grant: whole requests of cost from what is left.
		qleft = max(0, a.qlimit-qused)
		gNeed = min(gNeed, qleft/cost*cost)
	}
	var gExtra int64
	if a.extra > 0 {
		spare := avail - float64(gNeed)
		gExtra = max(0, min(a.extra, int64(math.Floor((spare+availEpsilon)/(2*gateways))),
			int64(math.Floor(burst/(50*gateways)))-keep))
		if quota {
			// Leases take quota units too: at most half of what is left
			// shared by the gateways, all pockets together at most 2 % of
			// the quota, none near the period's end.
			if a.qend-(now+a.qoff) < a.qmargin {
				gExtra = 0
			} else {
				gw := int64(gateways)
				gExtra = max(0, min(gExtra, (qleft-gNeed)/(2*gw), a.qlimit/(50*gw)-keep))
			}
		}
	}
	if quota {
		qused += gNeed + gExtra
		qc.exists, qc.used = true, qused
	}
	s.tat += float64(gNeed+gExtra) * e
	s.taken += a.debt + gNeed + gExtra - ret
	ownHeld := keep + gExtra
	avail = burst - (s.tat-now)/e

	if a.holder != "" {
		if s.holds == nil {
			s.holds = map[string]*hold{}
		}
		if ownHeld > 0 {
			s.holds[a.holder] = &hold{seq: a.seq, n: ownHeld, exp: math.Floor(now + a.ttl), mark: a.qmark}
		} else {
			s.holds[a.holder] = &hold{seq: a.seq, n: 0, exp: now}
		}
	}

	// When would a request of cost pass if nobody spent anything more? Held
	// tokens block it while more than burst - cost are held; each hold is
	// taken to be spent at its expiry.
	at := s.tat + float64(cost-a.burst)*e
	allHeld := held + ownHeld
	if allHeld > a.burst-cost {
		var active []*hold
		for _, h := range s.holds {
			if h.n > 0 {
				active = append(active, h)
			}
		}
		sort.Slice(active, func(i, j int) bool { return active[i].exp < active[j].exp })
		t := s.tat
		for _, h := range active {
			t = math.Max(t, h.exp+float64(allHeld)*e)
			allHeld -= h.n
			if allHeld <= a.burst-cost {
				at = math.Max(t+float64(cost-a.burst)*e, h.exp)
				break
			}
		}
	}

	// Forget records of holders that hold nothing and were last heard of
	// long ago; the bucket's record lives while it is not full or anything
	// is held, and retain longer.
	live := s.tat - now
	for id, h := range s.holds {
		if h.n > 0 {
			live = math.Max(live, h.exp-now)
		} else if h.exp+a.retain < now {
			delete(s.holds, id)
		}
	}
	return leaseResult{
		need:     gNeed,
		extra:    gExtra,
		found:    found,
		avail:    int64(math.Floor(avail + availEpsilon)),
		tatRel:   math.Ceil(s.tat - now),
		retryRel: math.Ceil(at - now),
		now:      now,
		gen:      s.gen,
		ttlRel:   math.Max(live, 0) + a.retain,
		qused:    qused,
	}
}
