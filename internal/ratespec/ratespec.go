// Package ratespec parses the rate syntax operators write in the Caddyfile
// and on the command line: "60/m", "600/h", "100/10s", optionally followed by
// "burst N" (as in a tier line or a per-key override: "120/m burst 20").
package ratespec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is Count events per Period.
type Rate struct {
	Count  int
	Period time.Duration
}

// Policy is a rate with a burst (the bucket size). Burst 0 means "not given".
type Policy struct {
	Rate
	Burst int
}

// ParseRate reads COUNT/UNIT where UNIT is s, m, h, d or a Go duration
// ("10s", "1m30s"); COUNT is a positive integer.
func ParseRate(s string) (Rate, error) {
	count, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want COUNT/UNIT such as 60/m", s)
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		return Rate{}, fmt.Errorf("rate %q: count must be a positive integer", s)
	}
	var period time.Duration
	switch unit {
	case "s", "sec", "second":
		period = time.Second
	case "m", "min", "minute":
		period = time.Minute
	case "h", "hour":
		period = time.Hour
	case "d", "day":
		period = 24 * time.Hour
	default:
		period, err = time.ParseDuration(unit)
		if err != nil {
			return Rate{}, fmt.Errorf("rate %q: unit must be s, m, h, d or a duration such as 10s", s)
		}
	}
	if period < time.Millisecond || period > 7*24*time.Hour {
		return Rate{}, fmt.Errorf("rate %q: period must be between 1ms and 7 days", s)
	}
	return Rate{Count: n, Period: period}, nil
}

// ParsePolicy reads "RATE" or "RATE burst N". A missing burst is 0.
func ParsePolicy(s string) (Policy, error) {
	f := strings.Fields(s)
	if len(f) != 1 && len(f) != 3 {
		return Policy{}, fmt.Errorf("policy %q: want RATE [burst N]", s)
	}
	r, err := ParseRate(f[0])
	if err != nil {
		return Policy{}, err
	}
	p := Policy{Rate: r}
	if len(f) == 3 {
		if f[1] != "burst" {
			return Policy{}, fmt.Errorf("policy %q: want RATE [burst N]", s)
		}
		b, err := ParseBurst(f[2])
		if err != nil {
			return Policy{}, err
		}
		p.Burst = b
	}
	return p, nil
}

// ParseBurst reads a positive burst size.
func ParseBurst(s string) (int, error) {
	b, err := strconv.Atoi(s)
	if err != nil || b < 1 {
		return 0, errors.New("burst must be a whole number of at least 1, got " + strconv.Quote(s))
	}
	return b, nil
}

// String writes the rate back in the shortest form ParseRate reads.
func (r Rate) String() string {
	switch r.Period {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Count)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Count)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Count)
	case 24 * time.Hour:
		return fmt.Sprintf("%d/d", r.Count)
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Period)
}

// String writes the policy back as ParsePolicy reads it.
func (p Policy) String() string {
	if p.Burst == 0 {
		return p.Rate.String()
	}
	return fmt.Sprintf("%s burst %d", p.Rate, p.Burst)
}
