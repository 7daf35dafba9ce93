package console

import (
	"context"
	"errors"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/usage"
)

// Usage query limits (contract §9).
const (
	DefaultUsageDays = 30
	MaxUsageDays     = 90
)

// SeriesNames are the usage series, in the order they are shown: the
// contract's six, then the other route groups.
var SeriesNames = []string{
	usage.GroupCreate, usage.GroupSearch, "total", usage.OutcomeSuccess, usage.OutcomeError, usage.OutcomeRateLimited,
	usage.GroupRead, usage.GroupUpdate, usage.GroupDelete, usage.GroupOther,
}

// UsageQuery selects a report: the last Days UTC days (today included),
// of one key or (KeyID "") of every credential of the organization.
type UsageQuery struct {
	Days  int
	KeyID string
}

// UsageReport is the requests per UTC day. Series[name][i] counts
// Labels[i]; Summary[name] is the whole range's total. Quotas lists the
// quota use of the key asked for, or of every key with a quota.
type UsageReport struct {
	Start, End string // YYYY-MM-DD, both included
	Labels     []string
	Series     map[string][]int64
	Summary    map[string]int64
	Quotas     []KeyView
}

// Usage reads the organization's usage.
func (s *Service) Usage(ctx context.Context, a Actor, q UsageQuery) (UsageReport, error) {
	if err := a.need(""); err != nil {
		return UsageReport{}, err
	}
	if q.Days == 0 {
		q.Days = DefaultUsageDays
	}
	if q.Days < 1 || q.Days > MaxUsageDays {
		return UsageReport{}, invalid("days", "must be from 1 to 90")
	}
	var keys []apikey.Key
	if q.KeyID != "" {
		id, ok := ids.Parse(q.KeyID)
		if !ok {
			return UsageReport{}, invalid("keyId", "must be a UUID")
		}
		k, err := s.keys.ByID(ctx, a.OrganizationID, id)
		if errors.Is(err, apikey.ErrNotFound) {
			return UsageReport{}, ErrKeyNotFound
		}
		if err != nil {
			return UsageReport{}, err
		}
		q.KeyID, keys = id, []apikey.Key{k}
	} else {
		all, err := s.keys.List(ctx, a.OrganizationID)
		if err != nil {
			return UsageReport{}, err
		}
		keys = all
	}
	today := s.now().UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -(q.Days - 1))
	r := UsageReport{
		Start: start.Format(time.DateOnly), End: today.Format(time.DateOnly),
		Labels: make([]string, q.Days), Series: map[string][]int64{}, Summary: map[string]int64{},
	}
	index := map[string]int{}
	for i := range q.Days {
		r.Labels[i] = start.AddDate(0, 0, i).Format(time.DateOnly)
		index[r.Labels[i]] = i
	}
	for _, name := range SeriesNames {
		r.Series[name] = make([]int64, q.Days)
		r.Summary[name] = 0
	}
	rows, err := s.usage.Daily(ctx, usage.Filter{OrganizationID: a.OrganizationID, From: r.Start, To: r.End, CredentialID: q.KeyID})
	if err != nil {
		return UsageReport{}, err
	}
	for _, row := range rows {
		i, ok := index[row.Day]
		if !ok {
			continue
		}
		for _, name := range []string{row.Group, row.Outcome, "total"} {
			if _, known := r.Series[name]; known {
				r.Series[name][i] += row.Requests
				r.Summary[name] += row.Requests
			}
		}
	}
	for _, v := range s.views(ctx, keys) {
		if !v.Quota.IsZero() {
			r.Quotas = append(r.Quotas, v)
		}
	}
	return r, nil
}
