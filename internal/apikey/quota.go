package apikey

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Quota periods (contract §10): UTC calendar days and months.
const (
	PeriodDay   = "day"
	PeriodMonth = "month"
)

// MaxQuota bounds a quota's limit, far above any plan and far from overflow.
const MaxQuota = 1_000_000_000_000

// Quota is a key's allowance of requests per UTC day or month. The zero
// value means no quota.
type Quota struct {
	Limit  int64  `json:"limit"`
	Period string `json:"period"`
}

// IsZero reports whether q is "no quota".
func (q Quota) IsZero() bool { return q.Limit == 0 }

// String is the flag form: "10000/month".
func (q Quota) String() string {
	if q.IsZero() {
		return ""
	}
	return strconv.FormatInt(q.Limit, 10) + "/" + q.Period
}

// Check reports a quota that cannot be applied.
func (q Quota) Check() error {
	if q.IsZero() && q.Period == "" {
		return nil
	}
	if q.Period != PeriodDay && q.Period != PeriodMonth {
		return fmt.Errorf("period must be %q or %q, got %q", PeriodDay, PeriodMonth, q.Period)
	}
	if q.Limit < 1 || q.Limit > MaxQuota {
		return fmt.Errorf("limit must be from 1 to %d, got %d", int64(MaxQuota), q.Limit)
	}
	return nil
}

// ParseQuota reads "N/day" or "N/month" ("" and "none" mean no quota).
func ParseQuota(s string) (Quota, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return Quota{}, nil
	}
	n, period, ok := strings.Cut(s, "/")
	if !ok {
		return Quota{}, fmt.Errorf("%q is not N/day or N/month", s)
	}
	limit, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return Quota{}, fmt.Errorf("%q is not N/day or N/month", s)
	}
	q := Quota{Limit: limit, Period: period}
	if err := q.Check(); err != nil {
		return Quota{}, err
	}
	return q, nil
}

// Window is the quota period that holds t: its UTC start and end.
func (q Quota) Window(t time.Time) (start, end time.Time) {
	t = t.UTC()
	if q.Period == PeriodMonth {
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 0, 1)
}
