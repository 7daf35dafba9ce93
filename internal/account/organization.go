package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/ids"
)

// Roles of a membership.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Organization is a tenant: its memories and keys are its own.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Membership is one person's place in one organization.
type Membership struct {
	Organization
	Role string
}

type membershipRow struct {
	ID        string    `db:"id"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
	Role      string    `db:"role"`
}

func (r membershipRow) membership() Membership {
	return Membership{Organization{ID: strings.ToLower(r.ID), Name: r.Name, CreatedAt: r.CreatedAt.UTC()}, r.Role}
}

// CreateOrganization creates an organization with userID as its owner.
func (s *Store) CreateOrganization(ctx context.Context, userID, name string, now time.Time) (Membership, error) {
	m := Membership{Organization{ID: ids.New(), Name: strings.TrimSpace(name), CreatedAt: dbTime(now)}, RoleOwner}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Membership{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO organizations (id, name, created_at) VALUES (?, ?, ?)`),
		m.ID, m.Name, m.CreatedAt); err != nil {
		return Membership{}, fmt.Errorf("insert organization: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO memberships (organization_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`),
		m.ID, strings.ToLower(userID), RoleOwner, m.CreatedAt); err != nil {
		return Membership{}, fmt.Errorf("insert membership: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Membership{}, fmt.Errorf("commit organization: %w", err)
	}
	return m, nil
}

// Memberships lists the organizations of userID, oldest first.
func (s *Store) Memberships(ctx context.Context, userID string) ([]Membership, error) {
	const q = `SELECT o.id, o.name, o.created_at, m.role FROM memberships m
		JOIN organizations o ON o.id = m.organization_id
		WHERE m.user_id = ? ORDER BY o.created_at, o.id`
	var rows []membershipRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), strings.ToLower(userID)); err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	out := make([]Membership, len(rows))
	for i, r := range rows {
		out[i] = r.membership()
	}
	return out, nil
}

// MembershipOf is userID's membership of orgID; ErrNotMember if none.
func (s *Store) MembershipOf(ctx context.Context, userID, orgID string) (Membership, error) {
	orgID, ok := ids.Parse(orgID)
	if !ok {
		return Membership{}, ErrNotMember
	}
	const q = `SELECT o.id, o.name, o.created_at, m.role FROM memberships m
		JOIN organizations o ON o.id = m.organization_id
		WHERE m.user_id = ? AND m.organization_id = ?`
	var r membershipRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), strings.ToLower(userID), orgID); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Membership{}, ErrNotMember
		}
		return Membership{}, fmt.Errorf("load membership: %w", err)
	}
	return r.membership(), nil
}

// AddMember gives userID a role in orgID (or changes it).
func (s *Store) AddMember(ctx context.Context, orgID, userID, role string, now time.Time) error {
	if role != RoleOwner && role != RoleMember {
		return fmt.Errorf("role must be %s or %s, got %q", RoleOwner, RoleMember, role)
	}
	const q = `INSERT INTO memberships (organization_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role`
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), strings.ToLower(orgID), strings.ToLower(userID), role, dbTime(now)); err != nil {
		return fmt.Errorf("add member: %w", err)
	}
	return nil
}

// RemoveMember takes userID out of orgID and ends the person's sessions
// whose active organization it was. It returns their ids, for the caller to
// revoke on every gateway.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID string) ([]string, error) {
	orgID, userID = strings.ToLower(orgID), strings.ToLower(userID)
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM memberships WHERE organization_id = ? AND user_id = ?`), orgID, userID)
	if err != nil {
		return nil, fmt.Errorf("remove member: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ErrNotMember
	}
	return s.deleteSessions(ctx, `user_id = ? AND active_organization_id = ?`, userID, orgID)
}
