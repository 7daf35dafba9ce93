package console

import (
	"context"
	"errors"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/revocation"
)

// Organizations lists the person's organizations, oldest first.
func (s *Service) Organizations(ctx context.Context, a Actor) ([]account.Membership, error) {
	if err := a.needSession(); err != nil {
		return nil, err
	}
	return s.accounts.Memberships(ctx, a.UserID)
}

// Created is a new organization; Token is set when it became the active
// one (the browser's new session, see package doc).
type Created struct {
	Organization account.Membership
	Token        string
}

// CreateOrganization creates an organization owned by the person. It
// becomes active when the session has none.
func (s *Service) CreateOrganization(ctx context.Context, a Actor, name string) (Created, error) {
	if err := a.needSession(); err != nil {
		return Created{}, err
	}
	if err := account.CheckName(name); err != nil {
		return Created{}, invalid("name", err.Error())
	}
	m, err := s.accounts.CreateOrganization(ctx, a.UserID, name, s.now())
	if err != nil {
		return Created{}, err
	}
	out := Created{Organization: m}
	if a.OrganizationID == "" {
		if out.Token, err = s.switchSession(ctx, a, m.ID); err != nil {
			return Created{}, err
		}
	}
	return out, nil
}

// ChooseOrganization makes orgID the active organization: the person gets
// a new session there (Token), and the old one ends on every gateway.
func (s *Service) ChooseOrganization(ctx context.Context, a Actor, orgID string) (account.Membership, string, error) {
	if err := a.needSession(); err != nil {
		return account.Membership{}, "", err
	}
	id, ok := ids.Parse(orgID)
	if !ok {
		return account.Membership{}, "", invalid("organizationId", "must be a UUID")
	}
	m, err := s.accounts.MembershipOf(ctx, a.UserID, id)
	if errors.Is(err, account.ErrNotMember) {
		return account.Membership{}, "", ErrNotMember
	}
	if err != nil {
		return account.Membership{}, "", err
	}
	token, err := s.switchSession(ctx, a, m.ID)
	if err != nil {
		return account.Membership{}, "", err
	}
	return m, token, nil
}

// switchSession replaces the actor's session by one whose active
// organization is orgID and returns its token.
func (s *Service) switchSession(ctx context.Context, a Actor, orgID string) (string, error) {
	_, token, err := s.accounts.CreateSession(ctx, a.UserID, orgID, s.SessionTTL, s.now())
	if err != nil {
		return "", err
	}
	if err := s.accounts.DeleteSession(ctx, a.ID); err != nil {
		return "", err
	}
	s.announce(ctx, revocation.Session(a.ID))
	return token, nil
}
