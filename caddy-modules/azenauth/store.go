package azenauth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationComponent names the gateway's migrations in azen_migrations; the
// backend keeps its own component in the same database.
const migrationComponent = "gateway"

// ErrKeyNotFound means no api_keys row matches.
var ErrKeyNotFound = errors.New("no such API key")

// Key is one row of api_keys, without its hash. Optional text columns read
// as "" when NULL; ExpiresAt and LastUsedAt are zero when NULL.
type Key struct {
	ID             string
	Prefix         string
	Name           string
	OrganizationID string
	UserID         string
	Enabled        bool
	ExpiresAt      time.Time
	Tier           string
	RateLimit      string // ratespec.Policy text, "" when none
	CreatedAt      time.Time
	LastUsedAt     time.Time
}

// Expired reports whether k has an expiry that has passed at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// keyRow is how api_keys comes out of either database.
type keyRow struct {
	ID             string         `db:"id"`
	Prefix         string         `db:"prefix"`
	Name           string         `db:"name"`
	OrganizationID sql.NullString `db:"organization_id"`
	UserID         sql.NullString `db:"user_id"`
	Enabled        bool           `db:"enabled"`
	ExpiresAt      sql.NullTime   `db:"expires_at"`
	Tier           string         `db:"tier"`
	RateLimit      sql.NullString `db:"rate_limit"`
	CreatedAt      time.Time      `db:"created_at"`
	LastUsedAt     sql.NullTime   `db:"last_used_at"`
}

func (r keyRow) key() Key {
	k := Key{
		ID: strings.ToLower(r.ID), Prefix: r.Prefix, Name: r.Name,
		OrganizationID: strings.TrimSpace(r.OrganizationID.String),
		UserID:         strings.TrimSpace(r.UserID.String),
		Enabled:        r.Enabled, Tier: r.Tier, RateLimit: r.RateLimit.String,
		CreatedAt: r.CreatedAt.UTC(),
	}
	if r.ExpiresAt.Valid {
		k.ExpiresAt = r.ExpiresAt.Time.UTC()
	}
	if r.LastUsedAt.Valid {
		k.LastUsedAt = r.LastUsedAt.Time.UTC()
	}
	return k
}

const keyColumns = `id, prefix, name, organization_id, user_id, enabled, expires_at, tier, rate_limit, created_at, last_used_at`

// Store is the api_keys table on PostgreSQL or SQLite.
type Store struct {
	db *sqldb.DB
}

// OpenStore prepares a store for a database URL without connecting.
func OpenStore(databaseURL string) (*Store, error) {
	db, err := sqldb.Open(databaseURL)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Kind is "postgres" or "sqlite".
func (s *Store) Kind() string { return s.db.Kind }

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Migrate creates or updates api_keys. Safe when several processes start at once.
func (s *Store) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, migrationComponent, migrations, "migrations")
}

// NewKey is what Create stores.
type NewKey struct {
	OrganizationID string
	UserID         string
	Name           string
	ExpiresAt      time.Time // zero: never
	Tier           string
	RateLimit      string
}

// Create generates a key, stores its hash and returns the row and the
// plaintext key (the only time it exists outside the client).
func (s *Store) Create(ctx context.Context, nk NewKey, now time.Time) (Key, string, error) {
	for attempt := 0; ; attempt++ {
		plain, err := GenerateKey()
		if err != nil {
			return Key{}, "", fmt.Errorf("generate key: %w", err)
		}
		id, err := newUUID()
		if err != nil {
			return Key{}, "", fmt.Errorf("generate id: %w", err)
		}
		k := Key{
			ID: id, Prefix: KeyDisplayPrefix(plain), Name: nk.Name,
			OrganizationID: nk.OrganizationID, UserID: nk.UserID, Enabled: true,
			ExpiresAt: nk.ExpiresAt.UTC(), Tier: nk.Tier, RateLimit: nk.RateLimit,
			CreatedAt: now.UTC().Truncate(time.Microsecond),
		}
		var expires sql.NullTime
		if !nk.ExpiresAt.IsZero() {
			expires = sql.NullTime{Time: k.ExpiresAt.Truncate(time.Microsecond), Valid: true}
			k.ExpiresAt = expires.Time
		}
		var rate sql.NullString
		if nk.RateLimit != "" {
			rate = sql.NullString{String: nk.RateLimit, Valid: true}
		}
		const q = `INSERT INTO api_keys (id, key_hash, prefix, name, organization_id, user_id, enabled, expires_at, tier, rate_limit, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		_, err = s.db.ExecContext(ctx, s.db.Rebind(q), k.ID, HashKey(plain).Hex(), k.Prefix, k.Name,
			k.OrganizationID, k.UserID, true, expires, k.Tier, rate, k.CreatedAt)
		if err != nil {
			if sqldb.IsUniqueViolation(err) && attempt < 3 {
				continue // astronomically unlikely: a colliding id or key
			}
			return Key{}, "", fmt.Errorf("insert key: %w", err)
		}
		return k, plain, nil
	}
}

// ByHash loads the key with this hash, or ErrKeyNotFound.
func (s *Store) ByHash(ctx context.Context, h KeyHash) (Key, error) {
	const q = `SELECT ` + keyColumns + ` FROM api_keys WHERE key_hash = ?`
	var r keyRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), h.Hex()); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrKeyNotFound
		}
		return Key{}, fmt.Errorf("look up key: %w", err)
	}
	return r.key(), nil
}

// ByID loads the key with this id, or ErrKeyNotFound.
func (s *Store) ByID(ctx context.Context, id string) (Key, error) {
	const q = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	var r keyRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), id); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrKeyNotFound
		}
		return Key{}, fmt.Errorf("load key %s: %w", id, err)
	}
	return r.key(), nil
}

// List returns the keys, oldest first, of one organization or ("" org) all.
func (s *Store) List(ctx context.Context, org string) ([]Key, error) {
	q := `SELECT ` + keyColumns + ` FROM api_keys`
	var args []any
	if org != "" {
		q += ` WHERE organization_id = ?`
		args = append(args, org)
	}
	q += ` ORDER BY created_at, id`
	var rows []keyRow
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	keys := make([]Key, len(rows))
	for i, r := range rows {
		keys[i] = r.key()
	}
	return keys, nil
}

// SetEnabled enables or disables a key; ErrKeyNotFound if there is none.
func (s *Store) SetEnabled(ctx context.Context, id string, enabled bool) error {
	const q = `UPDATE api_keys SET enabled = ? WHERE id = ?`
	return s.execOne(ctx, fmt.Sprintf("set enabled=%t on key %s", enabled, id), q, enabled, id)
}

// Delete removes a key; ErrKeyNotFound if there is none.
func (s *Store) Delete(ctx context.Context, id string) error {
	const q = `DELETE FROM api_keys WHERE id = ?`
	return s.execOne(ctx, "delete key "+id, q, id)
}

// TouchLastUsed records that a key was used at (or about) at.
func (s *Store) TouchLastUsed(ctx context.Context, id string, at time.Time) error {
	const q = `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
	at = at.UTC().Truncate(time.Microsecond)
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), at, id, at); err != nil {
		return fmt.Errorf("record use of key %s: %w", id, err)
	}
	return nil
}

func (s *Store) execOne(ctx context.Context, what, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return ErrKeyNotFound
	}
	return nil
}

// ValidUUID reports whether s is a UUID in canonical 8-4-4-4-12 hex form.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}
