package api

import (
	"time"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/console"
)

type userJSON struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
}

func toUser(u account.User) userJSON { return userJSON{ID: u.ID, Email: u.Email, Name: u.Name} }

// sessionJSON answers sign-in and GET /auth/session.
type sessionJSON struct {
	User                 userJSON `json:"user"`
	ActiveOrganizationID *string  `json:"activeOrganizationId"`
}

func toSession(u account.User, org string) sessionJSON {
	return sessionJSON{User: toUser(u), ActiveOrganizationID: optString(org)}
}

type organizationJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

func toOrganization(m account.Membership) organizationJSON {
	return organizationJSON{ID: m.ID, Name: m.Name, Role: m.Role}
}

type quotaJSON struct {
	Limit  int64  `json:"limit"`
	Period string `json:"period"`
	Used   *int64 `json:"used"` // null when unknown (no Redis)
}

// keyJSON is a key as the console API shows it: never its hash; Key (the
// plaintext) only right after create and reroll.
type keyJSON struct {
	ID                string     `json:"id"`
	Key               string     `json:"key,omitempty"`
	Name              string     `json:"name"`
	Prefix            string     `json:"prefix"`
	Enabled           bool       `json:"enabled"`
	ExpiresAt         *string    `json:"expiresAt"`
	CreatedAt         string     `json:"createdAt"`
	LastUsedAt        *string    `json:"lastUsedAt"`
	Tier              string     `json:"tier"`
	RateLimit         *string    `json:"rateLimit"`
	Permissions       []string   `json:"permissions"`
	Quota             *quotaJSON `json:"quota"`
	PreviousExpiresAt *string    `json:"previousExpiresAt,omitempty"`
	OrganizationID    string     `json:"organizationId"`
	UserID            string     `json:"userId"`
}

func toKey(v console.KeyView) keyJSON {
	j := keyJSON{
		ID: v.ID, Name: v.Name, Prefix: v.Prefix, Enabled: v.Enabled,
		ExpiresAt: optTime(v.ExpiresAt), CreatedAt: v.CreatedAt.UTC().Format(time.RFC3339),
		LastUsedAt: optTime(v.LastUsedAt), Tier: v.Tier, RateLimit: optString(v.RateLimit),
		Permissions: v.Permissions, OrganizationID: v.OrganizationID, UserID: v.UserID,
	}
	if j.Permissions == nil {
		j.Permissions = []string{}
	}
	if !v.Quota.IsZero() {
		j.Quota = &quotaJSON{Limit: v.Quota.Limit, Period: v.Quota.Period, Used: v.QuotaUsed}
	}
	if v.InGrace {
		j.PreviousExpiresAt = optTime(v.PreviousExpiresAt)
	}
	return j
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}
