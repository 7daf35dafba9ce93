package console

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/quota"
	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/revocation"
)

// Limits of a key's fields.
const (
	MaxKeyNameRunes = 255
	MaxExpiresIn    = 10 * 365 * 24 * 3600 // seconds: ten years
	MaxGracePeriod  = 86400                // seconds (contract §10)
)

// KeyView is a key as the console shows it: never its secret or hash.
// QuotaUsed is the quota spent in the current period, nil when unknown
// (no Redis, or Redis did not answer).
type KeyView struct {
	apikey.Key
	QuotaUsed *int64
	// InGrace reports whether the previous secret of a reroll still works.
	InGrace bool
}

// KeyInput is a new key.
type KeyInput struct {
	Name        string
	ExpiresIn   int64 // seconds; 0: never
	Tier        string
	RateLimit   string   // "120/m burst 20"; "": the tier's
	Permissions []string // nil: apikey.DefaultPermissions
	Quota       apikey.Quota
}

// KeyPatch is a change in place: nil fields stay as they are.
type KeyPatch struct {
	Name        *string
	Tier        *string
	RateLimit   *string       // "": remove the override
	ExpiresAt   *time.Time    // zero: never expires
	Permissions []string      // nil: unchanged
	Quota       *apikey.Quota // zero: no quota
}

// The field rules, shared by create and update.

func checkKeyName(p *problems, name string) {
	switch n := utf8.RuneCountInString(name); {
	case strings.TrimSpace(name) == "":
		p.add("name", "is required")
	case n > MaxKeyNameRunes:
		p.add("name", "must be at most 255 characters")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		p.add("name", "must be one line without control characters")
	}
}

func checkTier(p *problems, tier string) {
	if tier != "" && !ratespec.ValidTierName(tier) {
		p.add("tier", "is not valid: "+ratespec.TierNameRule)
	}
}

// normalRateLimit checks "RATE [burst N]" and returns the form stored.
func normalRateLimit(p *problems, s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	pol, err := ratespec.ParsePolicy(s)
	if err != nil {
		p.add("rateLimit", "is not RATE or RATE burst N such as 120/m burst 20 ("+err.Error()+")")
		return ""
	}
	return pol.String()
}

func normalPermissions(p *problems, list []string) []string {
	out, err := apikey.NormalizePermissions(list)
	if err != nil {
		p.add("permissions", err.Error())
	}
	return out
}

func checkQuota(p *problems, q apikey.Quota) {
	if err := q.Check(); err != nil {
		p.add("quota", lowerFirst(err.Error()))
	}
}

// ListKeys lists the organization's keys, oldest first, with quota use.
func (s *Service) ListKeys(ctx context.Context, a Actor) ([]KeyView, error) {
	if err := a.need(apikey.KeysRead); err != nil {
		return nil, err
	}
	keys, err := s.keys.List(ctx, a.OrganizationID)
	if err != nil {
		return nil, err
	}
	return s.views(ctx, keys), nil
}

// Key loads one key of the organization.
func (s *Service) Key(ctx context.Context, a Actor, id string) (KeyView, error) {
	if err := a.need(apikey.KeysRead); err != nil {
		return KeyView{}, err
	}
	k, err := s.keys.ByID(ctx, a.OrganizationID, id)
	if errors.Is(err, apikey.ErrNotFound) {
		return KeyView{}, ErrKeyNotFound
	}
	if err != nil {
		return KeyView{}, err
	}
	return s.views(ctx, []apikey.Key{k})[0], nil
}

// CreateKey creates a key for the organization, owned by the caller's
// person (userId); it returns the plaintext, the only time it exists.
func (s *Service) CreateKey(ctx context.Context, a Actor, in KeyInput) (KeyView, string, error) {
	if err := a.need(apikey.KeysWrite); err != nil {
		return KeyView{}, "", err
	}
	var p problems
	checkKeyName(&p, in.Name)
	if in.ExpiresIn < 0 || in.ExpiresIn > MaxExpiresIn {
		p.add("expiresIn", "must be from 1 to 315360000 seconds (ten years)")
	}
	checkTier(&p, in.Tier)
	rate := normalRateLimit(&p, in.RateLimit)
	perms := apikey.DefaultPermissions
	if in.Permissions != nil {
		perms = normalPermissions(&p, in.Permissions)
	}
	checkQuota(&p, in.Quota)
	if err := p.err(); err != nil {
		return KeyView{}, "", err
	}
	now := s.now()
	nk := apikey.NewKey{
		OrganizationID: a.OrganizationID, UserID: a.UserID, Name: strings.TrimSpace(in.Name),
		Tier: in.Tier, RateLimit: rate, Permissions: perms, Quota: in.Quota,
	}
	if in.ExpiresIn > 0 {
		nk.ExpiresAt = now.Add(time.Duration(in.ExpiresIn) * time.Second)
	}
	k, plain, err := s.keys.Create(ctx, nk, now)
	if err != nil {
		return KeyView{}, "", err
	}
	return s.views(ctx, []apikey.Key{k})[0], plain, nil
}

// SetKeyEnabled disables or enables a key; every gateway applies it
// within a second.
func (s *Service) SetKeyEnabled(ctx context.Context, a Actor, id string, enabled bool) (KeyView, error) {
	if err := a.need(apikey.KeysWrite); err != nil {
		return KeyView{}, err
	}
	if err := s.keys.SetEnabled(ctx, a.OrganizationID, id, enabled); err != nil {
		return KeyView{}, keyErr(err)
	}
	s.announce(ctx, revocation.Key(id))
	return s.Key(ctx, a, id)
}

// DeleteKey deletes a key; every gateway refuses it within a second.
func (s *Service) DeleteKey(ctx context.Context, a Actor, id string) error {
	if err := a.need(apikey.KeysWrite); err != nil {
		return err
	}
	if err := s.keys.Delete(ctx, a.OrganizationID, id); err != nil {
		return keyErr(err)
	}
	s.announce(ctx, revocation.Key(id))
	return nil
}

// UpdateKey changes a key in place, field by field (contract §10).
func (s *Service) UpdateKey(ctx context.Context, a Actor, id string, in KeyPatch) (KeyView, error) {
	if err := a.need(apikey.KeysWrite); err != nil {
		return KeyView{}, err
	}
	var p problems
	patch := apikey.Patch{Name: in.Name, Tier: in.Tier, ExpiresAt: in.ExpiresAt, Quota: in.Quota}
	if in.Name != nil {
		checkKeyName(&p, *in.Name)
		trimmed := strings.TrimSpace(*in.Name)
		patch.Name = &trimmed
	}
	if in.Tier != nil {
		checkTier(&p, *in.Tier)
	}
	if in.RateLimit != nil {
		rate := normalRateLimit(&p, *in.RateLimit)
		patch.RateLimit = &rate
	}
	if in.ExpiresAt != nil && !in.ExpiresAt.IsZero() && !in.ExpiresAt.After(s.now()) {
		p.add("expiresAt", "must be in the future (disable the key to stop it now)")
	}
	if in.Permissions != nil {
		patch.Permissions = normalPermissions(&p, in.Permissions)
	}
	if in.Quota != nil {
		checkQuota(&p, *in.Quota)
	}
	if err := p.err(); err != nil {
		return KeyView{}, err
	}
	if patch.Empty() {
		return KeyView{}, badRequest("Request body must change at least one of name, tier, rateLimit, expiresAt, permissions, quota")
	}
	k, err := s.keys.Update(ctx, a.OrganizationID, id, patch)
	if err != nil {
		return KeyView{}, keyErr(err)
	}
	s.announce(ctx, revocation.Key(id))
	return s.views(ctx, []apikey.Key{k})[0], nil
}

// RerollKey gives a key a new secret (returned, shown once) and keeps its
// id, settings and usage; the old secret works for grace more seconds.
func (s *Service) RerollKey(ctx context.Context, a Actor, id string, grace int64) (KeyView, string, error) {
	if err := a.need(apikey.KeysWrite); err != nil {
		return KeyView{}, "", err
	}
	if grace < 0 || grace > MaxGracePeriod {
		return KeyView{}, "", invalid("gracePeriod", "must be from 0 to 86400 seconds")
	}
	k, plain, err := s.keys.Reroll(ctx, a.OrganizationID, id, time.Duration(grace)*time.Second, s.now())
	if err != nil {
		return KeyView{}, "", keyErr(err)
	}
	s.announce(ctx, revocation.Key(id))
	return s.views(ctx, []apikey.Key{k})[0], plain, nil
}

func keyErr(err error) error {
	if errors.Is(err, apikey.ErrNotFound) {
		return ErrKeyNotFound
	}
	return err
}

// views adds each key's quota use, read from Redis in one pipeline. Redis
// failing leaves the use unknown (logged at most once a minute): the key
// list never fails because of it.
func (s *Service) views(ctx context.Context, keys []apikey.Key) []KeyView {
	now := s.now()
	out := make([]KeyView, len(keys))
	var withQuota []int
	for i, k := range keys {
		out[i] = KeyView{Key: k, InGrace: !k.PreviousExpiresAt.IsZero() && now.Before(k.PreviousExpiresAt)}
		if !k.Quota.IsZero() {
			withQuota = append(withQuota, i)
		}
	}
	if s.redis == nil || len(withQuota) == 0 {
		return out
	}
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	cmds := make([]*redis.StringCmd, len(withQuota))
	_, err := s.redis.Pipelined(rctx, func(pl redis.Pipeliner) error {
		for j, i := range withQuota {
			cmds[j] = pl.Get(rctx, quota.Key(keys[i].ID, keys[i].Quota, now))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		if s.warnOnce(&s.redisWarned) {
			s.logger.Warn("could not read quota use from Redis; shown as unknown (logged at most once a minute)", "error", err.Error())
		}
		return out
	}
	for j, i := range withQuota {
		n, err := cmds[j].Int64()
		if errors.Is(err, redis.Nil) {
			n, err = 0, nil
		}
		if err == nil {
			out[i].QuotaUsed = &n
		}
	}
	return out
}
