package azenauth

import (
	"context"
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
)

// Principal is who azen_auth admitted: the credential and what it may do.
// Handlers after azen_auth (azen_permissions, azen_ratelimit through the
// placeholders) read it without another lookup.
type Principal struct {
	Credential     string // contract.CredentialKey or contract.CredentialSession
	ID             string // the key's or the session's id
	OrganizationID string // "" for a session without an active organization
	UserID         string
	Role           string // a session's role in its organization
	Tier           string
	RateLimit      string // ratespec.Policy text, "" when none
	Permissions    []string
	Quota          apikey.Quota

	// placeholders answers {azen.*} for this principal from values boxed
	// once, when the principal is built (once per cache entry), so that
	// publishing them costs no allocation per request.
	placeholders caddy.ReplacerFunc
}

// seal boxes the placeholder values; call it once a principal is complete.
func (p *Principal) seal() *Principal {
	vals := map[string]any{
		"azen.key_id":     p.ID,
		"azen.org_id":     p.OrganizationID,
		"azen.user_id":    p.UserID,
		"azen.credential": p.Credential,
		"azen.tier":       p.Tier,
		"azen.rate_limit": p.RateLimit,
		"azen.quota":      p.Quota.String(),
	}
	p.placeholders = func(key string) (any, bool) {
		v, ok := vals[key]
		return v, ok
	}
	return p
}

// principalVar is the request variable holding the *Principal.
const principalVar = "azen.principal"

// PrincipalFrom returns who azen_auth admitted for this request, or nil.
func PrincipalFrom(r *http.Request) *Principal {
	p, _ := caddyhttp.GetVar(r.Context(), principalVar).(*Principal)
	return p
}

func setPrincipal(ctx context.Context, p *Principal) { caddyhttp.SetVar(ctx, principalVar, p) }

// Has reports whether the principal carries permission perm.
func (p *Principal) Has(perm string) bool { return slices.Contains(p.Permissions, perm) }

// identity is what the gateway signs for the upstream.
func (p *Principal) identity() contract.Identity {
	return contract.Identity{OrganizationID: p.OrganizationID, UserID: p.UserID, KeyID: p.ID, Credential: p.Credential}
}

// lacks is the 403 of a principal without a permission (contract §10).
func (p *Principal) lacks(perm string) string {
	if p.Credential == contract.CredentialSession {
		return "Your role (" + p.Role + ") lacks permission " + perm
	}
	return "API key lacks permission " + perm
}
