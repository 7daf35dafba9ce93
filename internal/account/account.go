// Package account is the store of people, organizations, memberships and
// console sessions (contract §9), shared by the gateway (which checks
// sessions at the edge) and the backend's console (which signs people up and
// in). Passwords are hashed with bcrypt; session tokens, like API keys, are
// stored only as their SHA-256.
package account

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/azen-sh/gateway/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationComponent names these migrations in azen_migrations.
const migrationComponent = "account"

// Domain errors; the console maps them to the contract's statuses.
var (
	ErrNotFound           = errors.New("not found")
	ErrEmailTaken         = errors.New("email address already used")
	ErrInvalidCredentials = errors.New("invalid email or password")
	ErrNotMember          = errors.New("not a member of that organization")
)

// Store is the account tables on PostgreSQL or SQLite.
type Store struct {
	db *sqldb.DB

	// PasswordCost is the bcrypt cost of new password hashes. Default
	// DefaultPasswordCost; tests lower it.
	PasswordCost int
}

// NewStore uses db (which the caller closes).
func NewStore(db *sqldb.DB) *Store { return &Store{db: db, PasswordCost: DefaultPasswordCost} }

// Migrate creates or updates the tables. Safe when several processes start
// at once.
func (s *Store) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, migrationComponent, migrations, "migrations")
}

// dbTime is t as both databases store it: UTC, microseconds.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
