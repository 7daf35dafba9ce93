package apikey

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationComponent names these migrations in azen_migrations. It is
// "gateway" because the gateway created api_keys first; the backend and the
// CLI apply the same migrations under the same name.
const migrationComponent = "gateway"

// ErrNotFound means no api_keys row matches (or it belongs to another
// organization).
var ErrNotFound = errors.New("no such API key")

// Key is one row of api_keys, without its hashes. Optional text columns
// read as "" when NULL; times are zero when NULL.
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
	Permissions    []string
	Quota          Quota
	CreatedAt      time.Time
	LastUsedAt     time.Time

	// PreviousExpiresAt is when the secret replaced by the last reroll stops
	// working; zero when there is none.
	PreviousExpiresAt time.Time

	// ViaPrevious is set by ByHash when the hash was the previous secret's.
	ViaPrevious bool
}

// Expired reports whether k has an expiry that has passed at now.
func (k *Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// PreviousExpired reports whether k was found by a previous secret whose
// grace period is over at now.
func (k *Key) PreviousExpired(now time.Time) bool {
	return k.ViaPrevious && (k.PreviousExpiresAt.IsZero() || !now.Before(k.PreviousExpiresAt))
}

// keyRow is how api_keys comes out of either database.
type keyRow struct {
	ID                string         `db:"id"`
	KeyHash           string         `db:"key_hash"`
	Prefix            string         `db:"prefix"`
	Name              string         `db:"name"`
	OrganizationID    sql.NullString `db:"organization_id"`
	UserID            sql.NullString `db:"user_id"`
	Enabled           bool           `db:"enabled"`
	ExpiresAt         sql.NullTime   `db:"expires_at"`
	Tier              string         `db:"tier"`
	RateLimit         sql.NullString `db:"rate_limit"`
	Permissions       string         `db:"permissions"`
	QuotaLimit        sql.NullInt64  `db:"quota_limit"`
	QuotaPeriod       sql.NullString `db:"quota_period"`
	PreviousExpiresAt sql.NullTime   `db:"previous_expires_at"`
	CreatedAt         time.Time      `db:"created_at"`
	LastUsedAt        sql.NullTime   `db:"last_used_at"`
}

func (r keyRow) key() Key {
	k := Key{
		ID: strings.ToLower(r.ID), Prefix: r.Prefix, Name: r.Name,
		OrganizationID: strings.ToLower(strings.TrimSpace(r.OrganizationID.String)),
		UserID:         strings.TrimSpace(r.UserID.String),
		Enabled:        r.Enabled, Tier: r.Tier, RateLimit: r.RateLimit.String,
		CreatedAt: r.CreatedAt.UTC(),
	}
	// A column changed by hand to something unknown keeps only what is
	// known: a key never gains a permission by a typo.
	for _, p := range strings.Fields(r.Permissions) {
		if KnownPermission(p) {
			k.Permissions = append(k.Permissions, p)
		}
	}
	if r.QuotaLimit.Valid && r.QuotaLimit.Int64 > 0 {
		k.Quota = Quota{Limit: r.QuotaLimit.Int64, Period: r.QuotaPeriod.String}
	}
	if r.ExpiresAt.Valid {
		k.ExpiresAt = r.ExpiresAt.Time.UTC()
	}
	if r.PreviousExpiresAt.Valid {
		k.PreviousExpiresAt = r.PreviousExpiresAt.Time.UTC()
	}
	if r.LastUsedAt.Valid {
		k.LastUsedAt = r.LastUsedAt.Time.UTC()
	}
	return k
}

const keyColumns = `id, key_hash, prefix, name, organization_id, user_id, enabled, expires_at, tier, rate_limit,
	permissions, quota_limit, quota_period, previous_expires_at, created_at, last_used_at`

// Store is the api_keys table on PostgreSQL or SQLite.
type Store struct {
	db *sqldb.DB
}

// NewStore uses db (which the caller closes).
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

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
	Permissions    []string // nil: DefaultPermissions
	Quota          Quota
}

// Create generates a key, stores its hash and returns the row and the
// plaintext key (the only time it exists outside the client).
func (s *Store) Create(ctx context.Context, nk NewKey, now time.Time) (Key, string, error) {
	perms := nk.Permissions
	if perms == nil {
		perms = DefaultPermissions
	}
	perms, err := NormalizePermissions(perms)
	if err != nil {
		return Key{}, "", fmt.Errorf("permissions: %w", err)
	}
	if err := nk.Quota.Check(); err != nil {
		return Key{}, "", fmt.Errorf("quota: %w", err)
	}
	for attempt := 0; ; attempt++ {
		plain, err := Generate()
		if err != nil {
			return Key{}, "", fmt.Errorf("generate key: %w", err)
		}
		k := Key{
			ID: ids.New(), Prefix: DisplayPrefix(plain), Name: nk.Name,
			OrganizationID: strings.ToLower(nk.OrganizationID), UserID: nk.UserID, Enabled: true,
			ExpiresAt: dbTime(nk.ExpiresAt), Tier: nk.Tier, RateLimit: nk.RateLimit,
			Permissions: perms, Quota: nk.Quota,
			CreatedAt: dbTime(now),
		}
		const q = `INSERT INTO api_keys (id, key_hash, prefix, name, organization_id, user_id, enabled, expires_at, tier, rate_limit,
				permissions, quota_limit, quota_period, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
		_, err = s.db.ExecContext(ctx, s.db.Rebind(q), k.ID, HashOf(plain).Hex(), k.Prefix, k.Name,
			k.OrganizationID, k.UserID, true, nullTime(k.ExpiresAt), k.Tier, nullString(k.RateLimit),
			formatPermissions(perms), nullQuotaLimit(k.Quota), nullString(k.Quota.Period), k.CreatedAt)
		if err != nil {
			if sqldb.IsUniqueViolation(err) && attempt < 3 {
				continue // astronomically unlikely: a colliding id or key
			}
			return Key{}, "", fmt.Errorf("insert key: %w", err)
		}
		return k, plain, nil
	}
}

// ByHash loads the key whose current secret, or previous secret during a
// reroll's grace period, has this hash; ErrNotFound if none. The caller
// decides with PreviousExpired whether a previous secret still works.
func (s *Store) ByHash(ctx context.Context, h Hash) (Key, error) {
	const q = `SELECT ` + keyColumns + ` FROM api_keys WHERE key_hash = ? OR previous_key_hash = ?`
	hx := h.Hex()
	var r keyRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), hx, hx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrNotFound
		}
		return Key{}, fmt.Errorf("look up key: %w", err)
	}
	k := r.key()
	k.ViaPrevious = r.KeyHash != hx
	return k, nil
}

// ByID loads key id of organization org ("" for any); ErrNotFound if none.
func (s *Store) ByID(ctx context.Context, org, id string) (Key, error) {
	id, ok := ids.Parse(id)
	if !ok {
		return Key{}, ErrNotFound
	}
	q := `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	args := []any{id}
	q, args = scoped(q, args, org)
	var r keyRow
	if err := s.db.GetContext(ctx, &r, s.db.Rebind(q), args...); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, ErrNotFound
		}
		return Key{}, fmt.Errorf("load key %s: %w", id, err)
	}
	return r.key(), nil
}

// List returns the keys, oldest first, of one organization or ("" org) all.
func (s *Store) List(ctx context.Context, org string) ([]Key, error) {
	q, args := scoped(`SELECT `+keyColumns+` FROM api_keys WHERE 1 = 1`, nil, org)
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

// SetEnabled enables or disables key id of org ("" for any).
func (s *Store) SetEnabled(ctx context.Context, org, id string, enabled bool) error {
	return s.execOne(ctx, org, id, fmt.Sprintf("set enabled=%t on key", enabled),
		`UPDATE api_keys SET enabled = ? WHERE id = ?`, enabled)
}

// Delete removes key id of org ("" for any).
func (s *Store) Delete(ctx context.Context, org, id string) error {
	return s.execOne(ctx, org, id, "delete key", `DELETE FROM api_keys WHERE id = ?`)
}

// Patch is a change to a key in place. Nil fields stay as they are.
type Patch struct {
	Name        *string
	Tier        *string
	RateLimit   *string    // "" removes the override
	ExpiresAt   *time.Time // zero removes the expiry
	Permissions []string   // nil: unchanged
	Quota       *Quota     // zero removes the quota
}

// Empty reports whether p changes nothing.
func (p Patch) Empty() bool {
	return p.Name == nil && p.Tier == nil && p.RateLimit == nil && p.ExpiresAt == nil &&
		p.Permissions == nil && p.Quota == nil
}

// Update applies p to key id of org ("" for any) and returns the key as it
// is now. The caller validates each field first (so it can name the one at
// fault); Update checks permissions and quota once more.
func (s *Store) Update(ctx context.Context, org, id string, p Patch) (Key, error) {
	var sets []string
	var args []any
	set := func(col string, v any) {
		sets = append(sets, col+" = ?")
		args = append(args, v)
	}
	if p.Name != nil {
		set("name", *p.Name)
	}
	if p.Tier != nil {
		set("tier", *p.Tier)
	}
	if p.RateLimit != nil {
		set("rate_limit", nullString(*p.RateLimit))
	}
	if p.ExpiresAt != nil {
		set("expires_at", nullTime(dbTime(*p.ExpiresAt)))
	}
	if p.Permissions != nil {
		perms, err := NormalizePermissions(p.Permissions)
		if err != nil {
			return Key{}, fmt.Errorf("permissions: %w", err)
		}
		set("permissions", formatPermissions(perms))
	}
	if p.Quota != nil {
		if err := p.Quota.Check(); err != nil {
			return Key{}, fmt.Errorf("quota: %w", err)
		}
		set("quota_limit", nullQuotaLimit(*p.Quota))
		set("quota_period", nullString(p.Quota.Period))
	}
	if len(sets) > 0 {
		q := `UPDATE api_keys SET ` + strings.Join(sets, ", ") + ` WHERE id = ?`
		if err := s.execOne(ctx, org, id, "update key", q, args...); err != nil {
			return Key{}, err
		}
	}
	return s.ByID(ctx, org, id)
}

// Reroll gives key id of org ("" for any) a new secret and returns the key
// and the new plaintext. With a grace period the old secret keeps working
// until now+grace (a reroll during another's grace period ends that one: only
// the secret just replaced is kept); with none it stops at once.
func (s *Store) Reroll(ctx context.Context, org, id string, grace time.Duration, now time.Time) (Key, string, error) {
	if grace < 0 {
		return Key{}, "", fmt.Errorf("grace period must not be negative, got %s", grace)
	}
	plain, err := Generate()
	if err != nil {
		return Key{}, "", fmt.Errorf("generate key: %w", err)
	}
	var q string
	var args []any
	if grace > 0 {
		q = `UPDATE api_keys SET previous_key_hash = key_hash, previous_expires_at = ?, key_hash = ?, prefix = ? WHERE id = ?`
		args = []any{dbTime(now.Add(grace)), HashOf(plain).Hex(), DisplayPrefix(plain)}
	} else {
		q = `UPDATE api_keys SET previous_key_hash = NULL, previous_expires_at = NULL, key_hash = ?, prefix = ? WHERE id = ?`
		args = []any{HashOf(plain).Hex(), DisplayPrefix(plain)}
	}
	if err := s.execOne(ctx, org, id, "reroll key", q, args...); err != nil {
		return Key{}, "", err
	}
	k, err := s.ByID(ctx, org, id)
	return k, plain, err
}

// ForgetExpiredPrevious drops the hashes of previous secrets whose grace
// period ended by now, so an old secret's hash is kept only as long as it
// works. It returns the ids of the keys changed.
func (s *Store) ForgetExpiredPrevious(ctx context.Context, now time.Time) ([]string, error) {
	var changed []string
	const sel = `SELECT id FROM api_keys WHERE previous_expires_at IS NOT NULL AND previous_expires_at <= ?`
	if err := s.db.SelectContext(ctx, &changed, s.db.Rebind(sel), dbTime(now)); err != nil {
		return nil, fmt.Errorf("find expired previous secrets: %w", err)
	}
	if len(changed) == 0 {
		return nil, nil
	}
	const upd = `UPDATE api_keys SET previous_key_hash = NULL, previous_expires_at = NULL
		WHERE previous_expires_at IS NOT NULL AND previous_expires_at <= ?`
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(upd), dbTime(now)); err != nil {
		return nil, fmt.Errorf("forget expired previous secrets: %w", err)
	}
	for i, id := range changed {
		changed[i] = strings.ToLower(id)
	}
	return changed, nil
}

// TouchLastUsed records that key id was used at (or about) at.
func (s *Store) TouchLastUsed(ctx context.Context, id string, at time.Time) error {
	const q = `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`
	at = dbTime(at)
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(q), at, strings.ToLower(id), at); err != nil {
		return fmt.Errorf("record use of key %s: %w", id, err)
	}
	return nil
}

// execOne runs an UPDATE or DELETE whose text ends in "WHERE id = ?" on key
// id of org ("" for any); ErrNotFound when no row matched.
func (s *Store) execOne(ctx context.Context, org, id, what, q string, args ...any) error {
	id, ok := ids.Parse(id)
	if !ok {
		return ErrNotFound
	}
	q, args = scoped(q, append(args, id), org)
	res, err := s.db.ExecContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// scoped adds "AND organization_id = ?" when org is set.
func scoped(q string, args []any, org string) (string, []any) {
	if org == "" {
		return q, args
	}
	return q + ` AND organization_id = ?`, append(args, strings.ToLower(org))
}

// dbTime is t as both databases store it: UTC, microseconds.
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: t, Valid: !t.IsZero()} }

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullQuotaLimit(q Quota) sql.NullInt64 {
	return sql.NullInt64{Int64: q.Limit, Valid: !q.IsZero()}
}
