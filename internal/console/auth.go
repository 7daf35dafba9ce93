package console

import (
	"context"
	"errors"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/revocation"
)

// SignUpInput is the sign-up form.
type SignUpInput struct {
	Email, Password, Name string
}

// Signed is a person with a fresh session: Token is the azen_session
// cookie's value, which exists nowhere else.
type Signed struct {
	User                 account.User
	ActiveOrganizationID string
	Token                string
}

// SignUp creates a person and signs them in (no organization yet).
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (Signed, error) {
	var p problems
	email, err := account.NormalizeEmail(in.Email)
	if err != nil {
		p.add("email", err.Error())
	}
	if err := account.CheckPassword(in.Password); err != nil {
		p.add("password", err.Error())
	}
	if err := account.CheckName(in.Name); err != nil {
		p.add("name", err.Error())
	}
	if err := p.err(); err != nil {
		return Signed{}, err
	}
	u, err := s.accounts.CreateUser(ctx, email, in.Name, in.Password, s.now())
	if errors.Is(err, account.ErrEmailTaken) {
		return Signed{}, invalid("email", "is already used by another account")
	}
	if err != nil {
		return Signed{}, err
	}
	return s.startSession(ctx, u, "")
}

// SignIn checks an email and password. Both a wrong email and a wrong
// password are ErrInvalidLogin, in the same time. The session starts in
// the person's oldest organization, if any.
func (s *Service) SignIn(ctx context.Context, email, password string) (Signed, error) {
	u, err := s.accounts.Authenticate(ctx, email, password)
	if errors.Is(err, account.ErrInvalidCredentials) {
		return Signed{}, ErrInvalidLogin
	}
	if err != nil {
		return Signed{}, err
	}
	ms, err := s.accounts.Memberships(ctx, u.ID)
	if err != nil {
		return Signed{}, err
	}
	org := ""
	if len(ms) > 0 {
		org = ms[0].ID
	}
	return s.startSession(ctx, u, org)
}

func (s *Service) startSession(ctx context.Context, u account.User, org string) (Signed, error) {
	sess, token, err := s.accounts.CreateSession(ctx, u.ID, org, s.SessionTTL, s.now())
	if err != nil {
		return Signed{}, err
	}
	return Signed{User: u, ActiveOrganizationID: sess.ActiveOrganizationID, Token: token}, nil
}

// SignOut ends the actor's session here and on every gateway.
func (s *Service) SignOut(ctx context.Context, a Actor) error {
	if err := a.needSession(); err != nil {
		return err
	}
	if err := s.accounts.DeleteSession(ctx, a.ID); err != nil {
		return err
	}
	s.announce(ctx, revocation.Session(a.ID))
	return nil
}

// CurrentUser is the person behind a session.
func (s *Service) CurrentUser(ctx context.Context, a Actor) (account.User, error) {
	if err := a.needSession(); err != nil {
		return account.User{}, err
	}
	u, err := s.accounts.UserByID(ctx, a.UserID)
	if errors.Is(err, account.ErrNotFound) {
		return account.User{}, ErrNoSession
	}
	return u, err
}

// ChangePasswordInput is the password form.
type ChangePasswordInput struct {
	CurrentPassword, NewPassword string
}

// ChangePassword replaces the person's password and ends every session of
// theirs on every gateway (contract §9); the browser that asked gets a new
// session in the same organization, so the person stays signed in there.
func (s *Service) ChangePassword(ctx context.Context, a Actor, in ChangePasswordInput) (Signed, error) {
	if err := a.needSession(); err != nil {
		return Signed{}, err
	}
	var p problems
	if in.CurrentPassword == "" {
		p.add("currentPassword", "is required")
	}
	if err := account.CheckPassword(in.NewPassword); err != nil {
		p.add("newPassword", err.Error())
	}
	if err := p.err(); err != nil {
		return Signed{}, err
	}
	ended, err := s.accounts.ChangePassword(ctx, a.UserID, in.CurrentPassword, in.NewPassword, s.now())
	if errors.Is(err, account.ErrInvalidCredentials) {
		return Signed{}, invalid("currentPassword", "is not your current password")
	}
	if err != nil {
		return Signed{}, err
	}
	targets := make([]revocation.Target, len(ended))
	for i, id := range ended {
		targets[i] = revocation.Session(id)
	}
	s.announce(ctx, targets...)
	u, err := s.accounts.UserByID(ctx, a.UserID)
	if err != nil {
		return Signed{}, err
	}
	return s.startSession(ctx, u, a.OrganizationID)
}
