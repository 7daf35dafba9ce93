package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/token"
)

// SessionPrefix starts every session token (the azen_session cookie's
// value): the token format of API keys with its own prefix, so the gateway
// refuses a mangled cookie without a lookup, and a key is never mistaken
// for a session or the other way round.
const SessionPrefix = "azen_sess_"

// CookieName is the session cookie (contract §9).
const CookieName = "azen_session"

// DefaultSessionTTL is how long a session lives after its last use
// (sliding: every use moves the end).
const DefaultSessionTTL = 7 * 24 * time.Hour

// Session is a signed-in browser. ActiveOrganizationID is "" when none is
// chosen, or when the person is no longer a member of it; Role is their role
// there.
type Session struct {
	ID                   string
	UserID               string
	ActiveOrganizationID string
	Role                 string
	CreatedAt            time.Time
	ExpiresAt            time.Time
}

// Expired reports whether the session has ended at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.ExpiresAt) }

// Permissions are those of the session's role in its active organization
// (contract §10: a person's session has every permission of their role).
func (s *Session) Permissions() []string { return RolePermissions(s.Role) }

// RolePermissions is what a role may do. Owners may do everything; members
// use memories and read keys, but only owners create, change or delete them.
func RolePermissions(role string) []string {
	switch role {
	case RoleOwner:
		return apikey.AllPermissions
	case RoleMember:
		return []string{apikey.MemoryRead, apikey.MemoryWrite, apikey.KeysRead}
	}
	return nil
}

// WellFormedSessionToken reports whether s could be a session token.
func WellFormedSessionToken(s string) bool { return token.WellFormed(SessionPrefix, s) }

type sessionRow struct {
	ID                   string         `db:"id"`
	UserID               string         `db:"user_id"`
	ActiveOrganizationID sql.NullString `db:"active_organization_id"`
	Role                 sql.NullString `db:"role"`
	CreatedAt            time.Time      `db:"created_at"`
	ExpiresAt            time.Time      `db:"expires_at"`
}

func (r sessionRow) session() Session {
	s := Session{
		ID: strings.ToLower(r.ID), UserID: strings.ToLower(r.UserID),
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(),
	}
	if r.ActiveOrganizationID.Valid && r.Role.Valid {
		s.ActiveOrganizationID = strings.ToLower(r.ActiveOrganizationID.String)
		s.Role = r.Role.String
	}
	return s
}

// CreateSession signs userID in: it returns the session and its token (the
// cookie's value, which exists nowhere else). activeOrg may be "".
func (s *Store) CreateSession(ctx context.Context, userID, activeOrg string, ttl time.Duration, now time.Time) (Session, string, error) {
	plain, err := token.New(SessionPrefix)
	if err != nil {
		return Session{}, "", fmt.Errorf("generate session token: %w", err)
	}
	sess := Session{ID: ids.New(), UserID: strings.ToLower(userID), CreatedAt: dbTime(now), ExpiresAt: dbTime(now.Add(ttl))}
	var org sql.NullString
	if activeOrg != "" {
		m, err := s.MembershipOf(ctx, userID, activeOrg)
		if err != nil {
			return Session{}, "", err
		}
		sess.ActiveOrganizationID, sess.Role = m.ID, m.Role
		org = sql.NullString{String: m.ID, Valid: true}
	}
	const q = `INSERT INTO sessions (id, token_hash, user_id, active_organization_id, created_at, expires_at, last_seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), sess.ID, token.HashOf(plain).Hex(), sess.UserID, org,
		sess.CreatedAt, sess.ExpiresAt, sess.CreatedAt); err != nil {
		return Session{}, "", fmt.Errorf("insert session: %w", err)
	}
	return sess, plain, nil
}

const sessionSelect = `SELECT s.id, s.user_id, s.active_organization_id, m.role, s.created_at, s.expires_at
	FROM sessions s LEFT JOIN memberships m
		ON m.organization_id = s.active_organization_id AND m.user_id = s.user_id`

// SessionByHash loads the session whose token has this hash; ErrNotFound if
// none. An expired session is returned too: the caller compares ExpiresAt.
func (s *Store) SessionByHash(ctx context.Context, h token.Hash) (Session, error) {
	return s.getSession(ctx, sessionSelect+` WHERE s.token_hash = ?`, h.Hex())
}

// SessionByID loads a session by id; ErrNotFound if none.
func (s *Store) SessionByID(ctx context.Context, id string) (Session, error) {
	return s.getSession(ctx, sessionSelect+` WHERE s.id = ?`, strings.ToLower(id))
}

func (s *Store) getSession(ctx context.Context, q string, arg any) (Session, error) {
	var r sessionRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), arg); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Session{}, ErrNotFound
		}
		return Session{}, fmt.Errorf("look up session: %w", err)
	}
	return r.session(), nil
}

// SetActiveOrganization makes orgID the active organization of session
// sessionID of userID; ErrNotMember if the person is not in it.
func (s *Store) SetActiveOrganization(ctx context.Context, sessionID, userID, orgID string) (Session, error) {
	m, err := s.MembershipOf(ctx, userID, orgID)
	if err != nil {
		return Session{}, err
	}
	const q = `UPDATE sessions SET active_organization_id = ? WHERE id = ? AND user_id = ?`
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), m.ID, strings.ToLower(sessionID), strings.ToLower(userID))
	if err != nil {
		return Session{}, fmt.Errorf("set active organization: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return Session{}, ErrNotFound
	}
	return s.SessionByID(ctx, sessionID)
}

// TouchSession slides a live session's end to now+ttl.
func (s *Store) TouchSession(ctx context.Context, id string, now time.Time, ttl time.Duration) error {
	const q = `UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE id = ? AND expires_at > ? AND expires_at < ?`
	end := dbTime(now.Add(ttl))
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), dbTime(now), end, strings.ToLower(id), dbTime(now), end); err != nil {
		return fmt.Errorf("touch session %s: %w", id, err)
	}
	return nil
}

// DeleteSession ends one session (sign-out).
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE id = ?`), strings.ToLower(id)); err != nil {
		return fmt.Errorf("delete session %s: %w", id, err)
	}
	return nil
}

// DeleteExpiredSessions removes sessions that ended before now; their
// cookies already fail, this only keeps the table small.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE expires_at <= ?`), dbTime(now))
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// deleteSessions deletes the sessions matching where and returns their ids
// (RETURNING: exactly those deleted, even with a sign-in racing it).
func (s *Store) deleteSessions(ctx context.Context, where string, args ...any) ([]string, error) {
	var found []string
	if err := s.db.SelectContext(ctx, &found, s.db.Rebind(`DELETE FROM sessions WHERE `+where+` RETURNING id`), args...); err != nil {
		return nil, fmt.Errorf("delete sessions: %w", err)
	}
	for i := range found {
		found[i] = strings.ToLower(found[i])
	}
	return found, nil
}
