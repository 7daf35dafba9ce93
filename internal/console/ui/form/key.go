package form

import (
	"strconv"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/console"
)

// ExpiryChoices are the create form's lifetimes, in seconds.
var ExpiryChoices = []struct {
	Seconds int64
	Label   string
}{{0, "Never"}, {86400, "1 day"}, {7 * 86400, "7 days"}, {30 * 86400, "30 days"}, {90 * 86400, "90 days"}, {365 * 86400, "1 year"}}

// GraceChoices are the reroll form's grace periods, in seconds.
var GraceChoices = []struct {
	Seconds int64
	Label   string
}{{0, "None: the old key stops now"}, {300, "5 minutes"}, {3600, "1 hour"}, {6 * 3600, "6 hours"}, {86400, "24 hours"}}

// ExpiresAtLayout is the edit form's expiry (an <input type="datetime-local">, read as UTC).
const ExpiresAtLayout = "2006-01-02T15:04"

// KeyDefaults are a new key's form values.
func KeyDefaults() *State {
	s := New(nil)
	s.Values["permissions"] = append([]string(nil), apikey.DefaultPermissions...)
	s.Values.Set("quotaPeriod", apikey.PeriodMonth)
	return s
}

// KeyValues are an existing key's form values.
func KeyValues(k apikey.Key) *State {
	s := New(nil)
	s.Values.Set("name", k.Name)
	s.Values.Set("tier", k.Tier)
	s.Values.Set("rateLimit", k.RateLimit)
	s.Values["permissions"] = append([]string(nil), k.Permissions...)
	s.Values.Set("quotaPeriod", apikey.PeriodMonth)
	if !k.Quota.IsZero() {
		s.Values.Set("quotaLimit", itoa(k.Quota.Limit))
		s.Values.Set("quotaPeriod", k.Quota.Period)
	}
	if !k.ExpiresAt.IsZero() {
		s.Values.Set("expiresAt", k.ExpiresAt.UTC().Format(ExpiresAtLayout))
	}
	return s
}

// NewKey reads the create form. ok is false when a field could not be read.
func NewKey(s *State) (console.KeyInput, bool) {
	in := console.KeyInput{
		Name: s.Value("name"), Tier: strings.TrimSpace(s.Value("tier")),
		RateLimit: s.Value("rateLimit"), Permissions: permissions(s),
	}
	exp, _, ok1 := s.integer("expiresIn")
	in.ExpiresIn = exp
	q, ok2 := quota(s)
	in.Quota = q
	return in, ok1 && ok2
}

// EditKey reads the edit form: every field is sent, so every field is set.
func EditKey(s *State) (console.KeyPatch, bool) {
	name, tier, rate := s.Value("name"), strings.TrimSpace(s.Value("tier")), s.Value("rateLimit")
	p := console.KeyPatch{Name: &name, Tier: &tier, RateLimit: &rate, Permissions: permissions(s)}
	ok := true
	var exp time.Time
	if raw := strings.TrimSpace(s.Value("expiresAt")); raw != "" {
		t, err := time.Parse(ExpiresAtLayout, raw)
		if err != nil {
			s.Fail("expiresAt", "must be a date and time such as 2030-01-31T12:00, or empty for never")
			ok = false
		}
		exp = t.UTC()
	}
	p.ExpiresAt = &exp
	q, qok := quota(s)
	p.Quota = &q
	return p, ok && qok
}

// Grace reads the reroll form's grace period.
func Grace(s *State) (int64, bool) {
	n, _, ok := s.integer("gracePeriod")
	return n, ok
}

// permissions are the checked boxes; none checked is an empty list (which
// the service refuses, naming the field), not "the defaults".
func permissions(s *State) []string {
	if list := s.Values["permissions"]; list != nil {
		return list
	}
	return []string{}
}

func quota(s *State) (apikey.Quota, bool) {
	limit, present, ok := s.integer("quotaLimit")
	if !ok {
		return apikey.Quota{}, false
	}
	if !present || limit == 0 {
		return apikey.Quota{}, true
	}
	return apikey.Quota{Limit: limit, Period: s.Value("quotaPeriod")}, true
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
