package main

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

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

// Store keeps memories in PostgreSQL or SQLite, sealed with the keyring.
type Store struct {
	db  *sqldb.DB
	kr  *keyring
	now func() time.Time
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

// Create stores a memory. When the organization already has a memory with
// the same dedupKey it returns that memory's id and duplicated=true; the
// unique index on the dedupKey token makes this race-free.
func (s *Store) Create(ctx context.Context, nm NewMemory) (id string, createdAt time.Time, duplicated bool, err error) {
	if nm.DedupKey != "" {
		if id, err := s.findDedup(ctx, nm.OrgID, nm.DedupKey); err != nil || id != "" {
			return id, time.Time{}, id != "", err
		}
	}
	id = newUUIDv7()
	now := s.now()
	keyID, sealed, err := s.kr.seal(id, nm.OrgID, sealedPayload{Content: nm.Text, Metadata: nm.Metadata, DedupKey: nm.DedupKey})
	if err != nil {
		return "", time.Time{}, false, err
	}
	var dedup []byte
	if nm.DedupKey != "" {
		dedup = s.kr.currentToken("d", nm.OrgID, nm.DedupKey)
	}
	freq, length := terms(nm.Text)

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("begin create: %w", err)
	}
	defer s.rollback(tx)
	const q = `INSERT INTO memories (id, organization_id, user_id, key_id, sealed, dedup_token, term_count, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	if _, err := tx.ExecContext(ctx, s.db.Rebind(q), id, nm.OrgID, nm.UserID, keyID, sealed, dedup, length, micros(now), micros(now)); err != nil {
		if sqldb.IsUniqueViolation(err) && dedup != nil {
			s.rollback(tx)
			existing, ferr := s.findDedup(ctx, nm.OrgID, nm.DedupKey)
			if ferr != nil {
				return "", time.Time{}, false, ferr
			}
			if existing != "" {
				return existing, time.Time{}, true, nil
			}
		}
		return "", time.Time{}, false, fmt.Errorf("insert memory: %w", err)
	}
	if err := s.insertTerms(ctx, tx, id, nm.OrgID, nm.UserID, keyID, freq, length); err != nil {
		return "", time.Time{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return "", time.Time{}, false, fmt.Errorf("commit create: %w", err)
	}
	return id, now.UTC(), false, nil
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

// termBatch keeps each multi-row INSERT well under both databases'
// bound-parameter limits.
const termBatch = 400

func (s *Store) insertTerms(ctx context.Context, tx *sqlx.Tx, memoryID, orgID, userID, keyID string, freq map[string]int, length int) error {
	k := s.kr.keys[keyID]
	type row struct {
		token []byte
		tf    int
	}
	rows := make([]row, 0, len(freq))
	for term, tf := range freq {
		rows = append(rows, row{k.token("t", orgID, term), tf})
	}
	for start := 0; start < len(rows); start += termBatch {
		end := min(start+termBatch, len(rows))
		var b strings.Builder
		b.WriteString(`INSERT INTO memory_terms (token, memory_id, user_id, tf, doc_len) VALUES `)
		args := make([]any, 0, (end-start)*5)
		for i, r := range rows[start:end] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, r.token, memoryID, userID, r.tf, length)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(b.String()), args...); err != nil {
			return fmt.Errorf("insert terms: %w", err)
		}
	}
	return nil
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

// Cursor is a keyset position: the memory after which the next page starts.
type Cursor struct {
	CreatedAt int64 // microseconds
	ID        string
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

// Update replaces the text and/or the metadata (setMetadata with a nil
// metadata clears it). The row is re-sealed with the current key and its
// search terms rewritten in the same transaction.
func (s *Store) Update(ctx context.Context, orgID, id string, text *string, metadata json.RawMessage, setMetadata bool) (Memory, error) {
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
	if text != nil {
		p.Content = *text
	}
	if setMetadata {
		p.Metadata = metadata
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
	return s.insertTerms(ctx, tx, r.ID, r.OrgID, r.UserID, keyID, freq, length)
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

// Match is one search hit.
type Match struct {
	Memory Memory
	Score  float64
}

// BM25 parameters (the usual defaults).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// Search ranks the memories of orgID (and userID when given) against query
// with BM25 over the blind index: the query's terms are hashed exactly as
// the stored ones, so no plaintext is needed. Best first; at most topK.
func (s *Store) Search(ctx context.Context, orgID, userID, query string, topK int) ([]Match, error) {
	freq, _ := terms(query)
	if len(freq) == 0 {
		return []Match{}, nil
	}
	termOf := make(map[string]int) // token -> query term index
	var tokens [][]byte
	i := 0
	for term := range freq {
		for _, tok := range s.kr.allTokens("t", orgID, term) {
			termOf[string(tok)] = i
			tokens = append(tokens, tok)
		}
		i++
	}
	nTerms := i

	scope := `organization_id = ?`
	scopeArgs := []any{orgID}
	if userID != "" {
		scope += ` AND user_id = ?`
		scopeArgs = append(scopeArgs, userID)
	}
	var stats struct {
		N     int64 `db:"n"`
		Total int64 `db:"total"`
	}
	if err := s.db.GetContext(ctx, &stats, s.db.Rebind(`SELECT COUNT(*) AS n, COALESCE(SUM(term_count), 0) AS total FROM memories WHERE `+scope), scopeArgs...); err != nil {
		return nil, fmt.Errorf("search stats: %w", err)
	}
	if stats.N == 0 {
		return []Match{}, nil
	}
	avgdl := float64(stats.Total) / float64(stats.N)
	if avgdl == 0 {
		avgdl = 1
	}

	pq := `SELECT token, memory_id, tf, doc_len FROM memory_terms WHERE token IN (?)`
	pargs := []any{tokens}
	if userID != "" {
		pq += ` AND user_id = ?`
		pargs = append(pargs, userID)
	}
	pq, pargs, err := sqlx.In(pq, pargs...)
	if err != nil {
		return nil, fmt.Errorf("build search query: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(pq), pargs...)
	if err != nil {
		return nil, fmt.Errorf("search postings: %w", err)
	}
	type posting struct {
		term   int
		tf     int
		docLen int
	}
	byDoc := make(map[string][]posting)
	df := make([]int, nTerms)
	for rows.Next() {
		var tok []byte
		var p posting
		var memID string
		if err := rows.Scan(&tok, &memID, &p.tf, &p.docLen); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read postings: %w", err)
		}
		p.term = termOf[string(tok)]
		df[p.term]++
		byDoc[memID] = append(byDoc[memID], p)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read postings: %w", err)
	}
	if len(byDoc) == 0 {
		return []Match{}, nil
	}

	idf := make([]float64, nTerms)
	for t, d := range df {
		idf[t] = math.Log(1 + (float64(stats.N)-float64(d)+0.5)/(float64(d)+0.5))
	}
	type scored struct {
		id    string
		score float64
	}
	ranked := make([]scored, 0, len(byDoc))
	for id, ps := range byDoc {
		var sc float64
		for _, p := range ps {
			tf := float64(p.tf)
			sc += idf[p.term] * tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*float64(p.docLen)/avgdl))
		}
		ranked = append(ranked, scored{id, sc})
	}
	sort.Slice(ranked, func(i, j int) bool {
		if ranked[i].score != ranked[j].score {
			return ranked[i].score > ranked[j].score
		}
		return ranked[i].id > ranked[j].id // UUIDv7: newer first on ties
	})
	if len(ranked) > topK {
		ranked = ranked[:topK]
	}

	ids := make([]string, len(ranked))
	for i, r := range ranked {
		ids[i] = r.id
	}
	q, args, err := sqlx.In(`SELECT `+memoryColumns+` FROM memories WHERE organization_id = ? AND id IN (?)`, orgID, ids)
	if err != nil {
		return nil, fmt.Errorf("build fetch query: %w", err)
	}
	var mrows []memoryRow
	if err := s.db.SelectContext(ctx, &mrows, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("fetch matches: %w", err)
	}
	byID := make(map[string]memoryRow, len(mrows))
	for _, r := range mrows {
		byID[r.ID] = r
	}
	out := make([]Match, 0, len(ranked))
	for _, r := range ranked {
		row, ok := byID[r.id]
		if !ok {
			continue // deleted meanwhile, or another organization's token collision
		}
		m, _, err := s.decode(row)
		if err != nil {
			return nil, err
		}
		out = append(out, Match{Memory: m, Score: r.score})
	}
	return out, nil
}

// Ready checks that the database answers.
func (s *Store) Ready(ctx context.Context) error {
	var one int
	return s.db.GetContext(ctx, &one, `SELECT 1`)
}
