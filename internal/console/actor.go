package console

import (
	"context"
	"errors"
	"slices"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
)

// Actor is who calls: a person through their session, or an API key with
// keys:read / keys:write (contract §10).
type Actor struct {
	Credential     string // contract.CredentialSession or contract.CredentialKey
	ID             string // the session's or the key's id
	UserID         string
	OrganizationID string // "" when the session has none
	Role           string // the person's role there ("" for a key)
	Permissions    []string
}

// IsSession reports whether a person is calling.
func (a Actor) IsSession() bool { return a.Credential == contract.CredentialSession }

// Can reports whether the actor carries perm.
func (a Actor) Can(perm string) bool { return slices.Contains(a.Permissions, perm) }

// IsOwner reports whether a person owns the active organization.
func (a Actor) IsOwner() bool { return a.IsSession() && a.Role == account.RoleOwner }

// need refuses an actor without an active organization or without perm.
func (a Actor) need(perm string) error {
	if a.OrganizationID == "" {
		return ErrNoOrganization
	}
	if perm != "" && !a.Can(perm) {
		if a.IsSession() {
			return forbidden("Your role (" + a.Role + ") lacks permission " + perm)
		}
		return forbidden("API key lacks permission " + perm)
	}
	return nil
}

// needSession refuses a key on the routes that only people use.
func (a Actor) needSession() error {
	if !a.IsSession() {
		return ErrNoSession
	}
	return nil
}

// Actor turns the gateway's signed identity into the caller, with the role
// or permissions it has now. A person no longer in the organization the
// identity names has no active organization (the gateway drops such a
// session within a second; this closes the gap).
func (s *Service) Actor(ctx context.Context, id contract.Identity) (Actor, error) {
	a := Actor{Credential: id.Credential, ID: id.KeyID, UserID: id.UserID}
	switch id.Credential {
	case contract.CredentialSession:
		if id.OrganizationID == "" {
			return a, nil
		}
		m, err := s.accounts.MembershipOf(ctx, id.UserID, id.OrganizationID)
		if errors.Is(err, account.ErrNotMember) {
			return a, nil
		}
		if err != nil {
			return Actor{}, err
		}
		a.OrganizationID, a.Role, a.Permissions = m.ID, m.Role, account.RolePermissions(m.Role)
		return a, nil
	case contract.CredentialKey:
		k, err := s.keys.ByID(ctx, id.OrganizationID, id.KeyID)
		if errors.Is(err, apikey.ErrNotFound) {
			return Actor{}, ErrUnknownKey
		}
		if err != nil {
			return Actor{}, err
		}
		if !k.Enabled || k.Expired(s.now()) {
			return Actor{}, ErrUnknownKey
		}
		a.OrganizationID, a.Permissions = k.OrganizationID, k.Permissions
		return a, nil
	}
	return Actor{}, ErrNoSession
}

// ErrForbiddenRole is the 403 of an actor without perm (pages check it
// before showing a form the service would refuse).
func ErrForbiddenRole(a Actor, perm string) error { return a.need(perm) }
