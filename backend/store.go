package main

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound means the memory does not exist, was deleted, or belongs to
// another organization: the API does not tell these apart.
var ErrNotFound = errors.New("memory not found")

// Memory is one stored memory, decrypted.
type Memory struct {
	ID        string
	OrgID     string
	UserID    string
	Content   string
	Metadata  json.RawMessage // nil means null
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NewMemory is what a create request asks for.
type NewMemory struct {
	OrgID    string
	UserID   string
	Text     string
	DedupKey string // "" means none
	Metadata json.RawMessage
}

// Store keeps memories in PostgreSQL or SQLite, sealed with the keyring,
// with a blind index of their terms for Search (search.go).
type Store struct {
	db    *sqldb.DB
	kr    *keyring
	now   func() time.Time
	stats statsCache
}

// NewStore wraps an open database. Call Migrate before use.
func NewStore(db *sqldb.DB, kr *keyring) *Store {
	return &Store{db: db, kr: kr, now: time.Now}
}

// Migrate creates or updates the backend's tables under the migration lock.
func (s *Store) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, "backend", migrations, "migrations")
}

type memoryRow struct {
	ID        string `db:"id"`
	OrgID     string `db:"organization_id"`
	UserID    string `db:"user_id"`
	KeyID     string `db:"key_id"`
	Sealed    []byte `db:"sealed"`
	CreatedAt int64  `db:"created_at"`
	UpdatedAt int64  `db:"updated_at"`
}

const memoryColumns = `id, organization_id, user_id, key_id, sealed, created_at, updated_at`

func micros(t time.Time) int64 { return t.UnixMicro() }

func (s *Store) decode(r memoryRow) (Memory, sealedPayload, error) {
	p, err := s.kr.open(r.ID, r.OrgID, r.KeyID, r.Sealed)
	if err != nil {
		return Memory{}, sealedPayload{}, err
	}
	m := Memory{
		ID: r.ID, OrgID: r.OrgID, UserID: r.UserID,
		Content: p.Content, Metadata: p.Metadata,
		CreatedAt: time.UnixMicro(r.CreatedAt).UTC(),
		UpdatedAt: time.UnixMicro(r.UpdatedAt).UTC(),
	}
	return m, p, nil
}

func (s *Store) rollback(tx *sqlx.Tx) { _ = tx.Rollback() }

// forUpdate locks the selected row on PostgreSQL; SQLite transactions here
// are IMMEDIATE and hold the write lock already.
func (s *Store) forUpdate() string {
	if s.db.Kind == sqldb.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Created is what Create did: stored a new memory (CreatedAt as stored, to
// the microsecond), or found the one that already has the dedupKey
// (Duplicated, with a zero CreatedAt).
type Created struct {
	ID         string
	CreatedAt  time.Time
	Duplicated bool
}

// Create stores a memory. When the organization already has a memory with
// the same dedupKey it returns that memory's id, Duplicated; the unique
// index on the dedupKey token makes this race-free.
func (s *Store) Create(ctx context.Context, nm NewMemory) (Created, error) {
	if nm.DedupKey != "" {
		if id, err := s.findDedup(ctx, nm.OrgID, nm.DedupKey); err != nil || id != "" {
			return Created{ID: id, Duplicated: id != ""}, err
		}
	}
	r := memoryRow{ID: ids.New(), OrgID: nm.OrgID, UserID: nm.UserID, CreatedAt: micros(s.now())}
	keyID, sealed, err := s.kr.seal(r.ID, r.OrgID, sealedPayload{Content: nm.Text, Metadata: nm.Metadata, DedupKey: nm.DedupKey})
	if err != nil {
		return Created{}, err
	}
	r.KeyID = keyID
	var dedup []byte
	if nm.DedupKey != "" {
		dedup = s.kr.currentToken("d", r.OrgID, nm.DedupKey)
	}
	freq, length := terms(nm.Text)

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Created{}, fmt.Errorf("begin create: %w", err)
	}
	defer s.rollback(tx)
	const q = `INSERT INTO memories (id, organization_id, user_id, key_id, sealed, dedup_token, term_count, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if _, err := tx.ExecContext(ctx, s.db.Rebind(q), r.ID, r.OrgID, r.UserID, r.KeyID, sealed, dedup, length, r.CreatedAt, r.CreatedAt); err != nil {
		if sqldb.IsUniqueViolation(err) && dedup != nil {
			s.rollback(tx)
			existing, ferr := s.findDedup(ctx, r.OrgID, nm.DedupKey)
			if ferr != nil {
				return Created{}, ferr
			}
			if existing != "" {
				return Created{ID: existing, Duplicated: true}, nil
			}
		}
		return Created{}, fmt.Errorf("insert memory: %w", err)
	}
	if err := s.insertTerms(ctx, tx, r, freq, length); err != nil {
		return Created{}, err
	}
	if err := tx.Commit(); err != nil {
		return Created{}, fmt.Errorf("commit create: %w", err)
	}
	return Created{ID: r.ID, CreatedAt: time.UnixMicro(r.CreatedAt).UTC()}, nil
}

// findDedup looks for a memory of orgID with dedupKey under every
// configured key, so rows sealed before a key rotation still count.
func (s *Store) findDedup(ctx context.Context, orgID, dedupKey string) (string, error) {
	tokens := s.kr.allTokens("d", orgID, dedupKey)
	q, args, err := sqlx.In(`SELECT id FROM memories WHERE organization_id = ? AND dedup_token IN (?) LIMIT 1`, orgID, tokens)
	if err != nil {
		return "", fmt.Errorf("build dedup query: %w", err)
	}
	var id string
	err = s.db.GetContext(ctx, &id, s.db.Rebind(q), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("find dedupKey: %w", err)
	}
	return id, nil
}

// Get returns the memory id of orgID.
func (s *Store) Get(ctx context.Context, orgID, id string) (Memory, error) {
	var r memoryRow
	err := s.db.GetContext(ctx, &r, s.db.Rebind(`SELECT `+memoryColumns+` FROM memories WHERE id = ? AND organization_id = ?`), id, orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return Memory{}, ErrNotFound
	}
	if err != nil {
		return Memory{}, fmt.Errorf("get memory %s: %w", id, err)
	}
	m, _, err := s.decode(r)
	return m, err
}

// ListQuery selects a page of an organization's memories, newest first.
type ListQuery struct {
	OrgID  string
	UserID string // "" means every user
	Page   int64
	Per    int64
	Cursor *Cursor // keyset paging when set; Page is then not used
}

// ListResult is one page and the totals of the whole selection.
type ListResult struct {
	Memories   []Memory
	TotalCount int64
	Next       *Cursor // nil when this is the last page
}

// List returns one page, newest first (ties broken by id).
func (s *Store) List(ctx context.Context, q ListQuery) (ListResult, error) {
	where := `organization_id = ?`
	args := []any{q.OrgID}
	if q.UserID != "" {
		where += ` AND user_id = ?`
		args = append(args, q.UserID)
	}
	var res ListResult
	if err := s.db.GetContext(ctx, &res.TotalCount, s.db.Rebind(`SELECT COUNT(*) FROM memories WHERE `+where), args...); err != nil {
		return ListResult{}, fmt.Errorf("count memories: %w", err)
	}
	pageArgs := append([]any(nil), args...)
	pageWhere := where
	offset := int64(0)
	if q.Cursor != nil {
		pageWhere += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		pageArgs = append(pageArgs, q.Cursor.CreatedAt, q.Cursor.CreatedAt, q.Cursor.ID)
	} else {
		offset = (q.Page - 1) * q.Per
	}
	// One row more than asked tells whether a next page exists.
	pageArgs = append(pageArgs, q.Per+1, offset)
	var rows []memoryRow
	query := `SELECT ` + memoryColumns + ` FROM memories WHERE ` + pageWhere + ` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`
	if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(query), pageArgs...); err != nil {
		return ListResult{}, fmt.Errorf("list memories: %w", err)
	}
	if int64(len(rows)) > q.Per {
		rows = rows[:q.Per]
		last := rows[len(rows)-1]
		res.Next = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	res.Memories = make([]Memory, 0, len(rows))
	for _, r := range rows {
		m, _, err := s.decode(r)
		if err != nil {
			return ListResult{}, err
		}
		res.Memories = append(res.Memories, m)
	}
	return res, nil
}

// MemoryPatch is what Update changes; its zero value changes nothing (not
// even updatedAt).
type MemoryPatch struct {
	Text *string // nil keeps the text
	// Metadata, when not nil, replaces the metadata; pointing at nil or at
	// `null` it clears it.
	Metadata *json.RawMessage
}

// Update applies patch to memory id of orgID. The row is re-sealed with the
// current key and its search terms rewritten in the same transaction.
func (s *Store) Update(ctx context.Context, orgID, id string, patch MemoryPatch) (Memory, error) {
	if patch == (MemoryPatch{}) {
		return s.Get(ctx, orgID, id)
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Memory{}, fmt.Errorf("begin update: %w", err)
	}
	defer s.rollback(tx)
	var r memoryRow
	err = tx.GetContext(ctx, &r, s.db.Rebind(`SELECT `+memoryColumns+` FROM memories WHERE id = ? AND organization_id = ?`+s.forUpdate()), id, orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return Memory{}, ErrNotFound
	}
	if err != nil {
		return Memory{}, fmt.Errorf("load memory %s: %w", id, err)
	}
	m, p, err := s.decode(r)
	if err != nil {
		return Memory{}, err
	}
	if patch.Text != nil {
		p.Content = *patch.Text
	}
	if patch.Metadata != nil {
		p.Metadata = *patch.Metadata
		if string(p.Metadata) == "null" {
			p.Metadata = nil
		}
	}
	now := s.now()
	if !now.After(m.CreatedAt) {
		now = m.CreatedAt
	}
	if err := s.reseal(ctx, tx, r, p, micros(now)); err != nil {
		return Memory{}, err
	}
	if err := tx.Commit(); err != nil {
		return Memory{}, fmt.Errorf("commit update: %w", err)
	}
	m.Content, m.Metadata, m.UpdatedAt = p.Content, p.Metadata, time.UnixMicro(micros(now)).UTC()
	return m, nil
}

// reseal writes p back to row r under the current key, with fresh dedup
// token and search terms, inside tx.
func (s *Store) reseal(ctx context.Context, tx *sqlx.Tx, r memoryRow, p sealedPayload, updatedAt int64) error {
	keyID, sealed, err := s.kr.seal(r.ID, r.OrgID, p)
	if err != nil {
		return err
	}
	var dedup []byte
	if p.DedupKey != "" {
		dedup = s.kr.currentToken("d", r.OrgID, p.DedupKey)
	}
	freq, length := terms(p.Content)
	const q = `UPDATE memories SET key_id = ?, sealed = ?, dedup_token = ?, term_count = ?, updated_at = ? WHERE id = ?`
	if _, err := tx.ExecContext(ctx, s.db.Rebind(q), keyID, sealed, dedup, length, updatedAt, r.ID); err != nil {
		return fmt.Errorf("update memory %s: %w", r.ID, err)
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM memory_terms WHERE memory_id = ?`), r.ID); err != nil {
		return fmt.Errorf("delete terms of %s: %w", r.ID, err)
	}
	r.KeyID = keyID
	return s.insertTerms(ctx, tx, r, freq, length)
}

// Delete removes a memory and its search terms at once.
func (s *Store) Delete(ctx context.Context, orgID, id string) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin delete: %w", err)
	}
	defer s.rollback(tx)
	res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM memories WHERE id = ? AND organization_id = ?`), id, orgID)
	if err != nil {
		return fmt.Errorf("delete memory %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete memory %s: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM memory_terms WHERE memory_id = ?`), id); err != nil {
		return fmt.Errorf("delete terms of %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delete: %w", err)
	}
	return nil
}

// Ready checks that the database answers.
func (s *Store) Ready(ctx context.Context) error {
	var one int
	return s.db.GetContext(ctx, &one, `SELECT 1`)
}
