package limiter

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ratespec"
)

// Policy is a named limit: Count requests per Period with a bucket of Burst.
// The name is what clients see in RateLimit-Policy ("default", a tier name,
// or "key" for a per-key override).
type Policy struct {
	Name  string
	Rate  ratespec.Rate
	Burst int

	// Precomputed by NewPolicy to keep string building off the request path.
	bucketSuffix string
	policyField  string
	limitText    string // Rate.Count in decimal (X-RateLimit-Limit)
}

// NewPolicy builds a policy from a parsed ratespec policy; a missing burst
// (0) becomes the rate's count, one period's worth of requests.
func NewPolicy(name string, p ratespec.Policy) Policy {
	burst := p.Burst
	if burst == 0 {
		burst = p.Count
	}
	q := Policy{Name: name, Rate: p.Rate, Burst: burst}
	q.bucketSuffix = q.makeBucketSuffix()
	q.policyField = q.makePolicyField()
	q.limitText = strconv.Itoa(q.Rate.Count)
	return q
}

func (p Policy) makeBucketSuffix() string { return "}:" + p.Name + ":" + p.ID() }

// makePolicyField is the draft-10 RateLimit-Policy value: "NAME";q=COUNT;w=SECONDS.
func (p Policy) makePolicyField() string {
	return strconv.Quote(p.Name) + ";q=" + strconv.Itoa(p.Rate.Count) + ";w=" + strconv.FormatInt(p.WindowSeconds(), 10)
}

// Bounds that keep the GCRA arithmetic exact and far from overflow.
const (
	minEmission = time.Microsecond     // at most a million requests per second
	maxBucket   = 366 * 24 * time.Hour // a full bucket refills within a year
)

// Check reports a policy the limiter cannot apply exactly.
func (p Policy) Check() error {
	if p.Rate.Count < 1 || p.Rate.Period <= 0 || p.Burst < 1 {
		return fmt.Errorf("policy %s: count, period and burst must be positive", p)
	}
	e := p.Emission()
	if e < minEmission {
		return fmt.Errorf("rate %s is too high: at most one request per %s", p.Rate, minEmission)
	}
	if time.Duration(p.Burst) > maxBucket/e {
		return fmt.Errorf("burst %d at %s takes more than a year to refill", p.Burst, p.Rate)
	}
	return nil
}

// Emission is the GCRA emission interval: the time one request's worth of
// quota takes to come back.
func (p Policy) Emission() time.Duration {
	return p.Rate.Period / time.Duration(p.Rate.Count)
}

// emissionMicros is the emission interval in microseconds, unrounded: the
// unit the GCRA arithmetic (gcra.go, the lease script) counts in.
func (p Policy) emissionMicros() float64 {
	return float64(p.Rate.Period) / float64(p.Rate.Count) / 1e3
}

// ID names the policy's numbers compactly for bucket keys: 600/60s/100.
// Two policies with different numbers never share an ID.
func (p Policy) ID() string {
	return strconv.Itoa(p.Rate.Count) + "/" + durationID(p.Rate.Period) + "/" + strconv.Itoa(p.Burst)
}

func durationID(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// maxKeyPart bounds the client part of a bucket name; longer values (a
// placeholder that expanded to something large) are replaced by their hash.
const maxKeyPart = 128

// Bucket is the storage name of key's bucket under this policy:
// azen:rl:{<key>}:<policy name>:<count>/<period>/<burst>. The name and the
// numbers are both part of it, so two tiers, an override and the default
// never share a bucket, and changing a policy's numbers starts fresh
// buckets. The key is Redis Cluster's hash tag, so every record of one key
// (its buckets, and later its quota counters) lives in one slot and one
// script call can touch them together.
func (p Policy) Bucket(key string) string {
	suffix := p.bucketSuffix
	if suffix == "" {
		suffix = p.makeBucketSuffix()
	}
	return "azen:rl:{" + KeyTag(key) + suffix
}

// KeyTag is the part of a bucket name that names the key (its Cluster hash
// tag): the key itself, or its hash when it is longer than 128 bytes.
func KeyTag(key string) string {
	if len(key) > maxKeyPart {
		sum := sha256.Sum256([]byte(key))
		return "sha256-" + hex.EncodeToString(sum[:16])
	}
	return key
}

// Divide returns the share of p one of n gateways may grant on its own: the
// emission interval multiplied by n (so the rates of n gateways add up to
// p's) and the burst divided by n, rounded down but at least 1.
func (p Policy) Divide(n int) Policy {
	if n <= 1 {
		return p
	}
	q := p
	q.Rate.Period = p.Rate.Period * time.Duration(n)
	q.Burst = max(1, p.Burst/n)
	return q
}

// PeriodText is the period in words for messages: "minute", "10s".
func (p Policy) PeriodText() string {
	switch p.Rate.Period {
	case time.Second:
		return "second"
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	case 24 * time.Hour:
		return "day"
	}
	return p.Rate.Period.String()
}

// WindowSeconds is the period in whole seconds, rounded up, at least 1 (the
// draft-10 "w" parameter).
func (p Policy) WindowSeconds() int64 {
	return contract.RetryAfterSeconds(p.Rate.Period)
}

// String is the policy as an operator writes it.
func (p Policy) String() string {
	return fmt.Sprintf("%s %s burst %d", p.Name, p.Rate, p.Burst)
}

// Decision is the outcome of one limiter call.
type Decision struct {
	Allowed bool
	// Remaining is how many requests of cost 1 would pass right now.
	Remaining int
	// RetryAfter is how long until this request would pass (0 if allowed).
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}
