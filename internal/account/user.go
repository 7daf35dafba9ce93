package account

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/sqldb"
)

// User is a person who signs in to the console. The password hash never
// leaves this package.
type User struct {
	ID        string
	Email     string
	Name      string
	CreatedAt time.Time
}

type userRow struct {
	ID           string    `db:"id"`
	Email        string    `db:"email"`
	Name         string    `db:"name"`
	PasswordHash string    `db:"password_hash"`
	CreatedAt    time.Time `db:"created_at"`
}

func (r userRow) user() User {
	return User{ID: strings.ToLower(r.ID), Email: r.Email, Name: r.Name, CreatedAt: r.CreatedAt.UTC()}
}

// Limits of the sign-up fields.
const (
	MaxEmailBytes = 254 // RFC 5321's path limit
	MaxNameRunes  = 100
)

// NormalizeEmail checks an address and returns the form stored and
// compared: trimmed and lower-cased, so one address cannot sign up twice in
// two spellings.
func NormalizeEmail(raw string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(raw))
	if s == "" {
		return "", errors.New("is required")
	}
	if len(s) > MaxEmailBytes {
		return "", fmt.Errorf("must be at most %d bytes", MaxEmailBytes)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", errors.New("is not an email address such as ada@example.com")
	}
	return s, nil
}

// CheckName reports why a person's or an organization's name is refused.
func CheckName(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("is required")
	}
	if n := len([]rune(s)); n > MaxNameRunes {
		return fmt.Errorf("must be at most %d characters", MaxNameRunes)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("must not contain control characters")
		}
	}
	return nil
}

// CreateUser stores a new person; ErrEmailTaken if the address is used.
// The caller has checked the fields (NormalizeEmail, CheckName,
// CheckPassword).
func (s *Store) CreateUser(ctx context.Context, email, name, password string, now time.Time) (User, error) {
	hash, err := hashPassword(password, s.PasswordCost)
	if err != nil {
		return User{}, err
	}
	u := User{ID: ids.New(), Email: email, Name: strings.TrimSpace(name), CreatedAt: dbTime(now)}
	const q = `INSERT INTO users (id, email, name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), u.ID, u.Email, u.Name, hash, u.CreatedAt, u.CreatedAt); err != nil {
		if sqldb.IsUniqueViolation(err) {
			return User{}, ErrEmailTaken
		}
		return User{}, fmt.Errorf("insert user: %w", err)
	}
	return u, nil
}

// Authenticate returns the person with this email and password, or
// ErrInvalidCredentials, taking the same time whether the email or the
// password was wrong.
func (s *Store) Authenticate(ctx context.Context, email, password string) (User, error) {
	const q = `SELECT id, email, name, password_hash, created_at FROM users WHERE email = ?`
	var r userRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(q), strings.ToLower(strings.TrimSpace(email)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		passwordMatches(decoyHash(s.PasswordCost), password)
		return User{}, ErrInvalidCredentials
	case err != nil:
		return User{}, fmt.Errorf("look up user: %w", err)
	}
	if !passwordMatches(r.PasswordHash, password) {
		return User{}, ErrInvalidCredentials
	}
	return r.user(), nil
}

// UserByID loads a person; ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	const q = `SELECT id, email, name, password_hash, created_at FROM users WHERE id = ?`
	var r userRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), strings.ToLower(id)); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return User{}, ErrNotFound
		}
		return User{}, fmt.Errorf("load user %s: %w", id, err)
	}
	return r.user(), nil
}

// ChangePassword replaces the password of userID after checking the
// current one (ErrInvalidCredentials), and ends every session of the
// person. It returns the ids of the ended sessions, for the caller to
// revoke on every gateway.
func (s *Store) ChangePassword(ctx context.Context, userID, current, next string, now time.Time) ([]string, error) {
	const q = `SELECT id, email, name, password_hash, created_at FROM users WHERE id = ?`
	var r userRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), strings.ToLower(userID)); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("load user %s: %w", userID, err)
	}
	if !passwordMatches(r.PasswordHash, current) {
		return nil, ErrInvalidCredentials
	}
	hash, err := hashPassword(next, s.PasswordCost)
	if err != nil {
		return nil, err
	}
	const upd = `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(upd), hash, dbTime(now), r.ID); err != nil {
		return nil, fmt.Errorf("update password: %w", err)
	}
	return s.deleteSessions(ctx, `user_id = ?`, r.ID)
}
