package main

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
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

	statsMu sync.Mutex
	stats   map[string]corpusStats // by search scope
}

// NewStore wraps an open database. Call Migrate before use.
func NewStore(db *sqldb.DB, kr *keyring) *Store {
	return &Store{db: db, kr: kr, now: time.Now, stats: make(map[string]corpusStats)}
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
	nTerms := 0
	for term := range freq {
		for _, tok := range s.kr.allTokens("t", orgID, term) {
			termOf[string(tok)] = nTerms
			tokens = append(tokens, tok)
		}
		nTerms++
	}

	scope := `organization_id = ?`
	scopeArgs := []any{orgID}
	userFilter := ""
	if userID != "" {
		scope += ` AND user_id = ?`
		scopeArgs = append(scopeArgs, userID)
		userFilter = ` AND user_id = ?`
	}
	withUser := func(args ...any) []any {
		if userID != "" {
			args = append(args, userID)
		}
		return args
	}

	// Document frequency of each query term in the scope (an index scan of
	// the postings), for the idf weights.
	dq, dargs, err := sqlx.In(`SELECT token, COUNT(*) AS df FROM memory_terms WHERE token IN (?)`+userFilter+` GROUP BY token`, withUser(tokens)...)
	if err != nil {
		return nil, fmt.Errorf("build search query: %w", err)
	}
	var dfs []struct {
		Token []byte `db:"token"`
		DF    int64  `db:"df"`
	}
	if err := s.db.SelectContext(ctx, &dfs, s.db.Rebind(dq), dargs...); err != nil {
		return nil, fmt.Errorf("search document frequencies: %w", err)
	}
	if len(dfs) == 0 {
		return []Match{}, nil
	}
	stats, err := s.scopeStats(ctx, scope, scopeArgs)
	if err != nil {
		return nil, err
	}
	df := make([]int64, nTerms)
	for _, d := range dfs {
		df[termOf[string(d.Token)]] += d.DF
	}
	// Cached figures may lag behind the live postings: never let the
	// corpus look smaller than a term's document frequency.
	for _, d := range df {
		stats.N = max(stats.N, d)
	}
	avgdl := 1.0
	if stats.Total > 0 {
		avgdl = float64(stats.Total) / float64(stats.N)
	}

	// BM25 is summed in the database so that only the top K come back:
	// idf(t) * tf*(k1+1) / (tf + k1*(1-b) + k1*b*len/avgdl) per matching term.
	//
	// Terms found in more than half of the scope act as stop words: their
	// idf is at most ln 2 (a term in one memory of 10 000 weighs about 9),
	// yet scanning their postings is most of the cost of a search. They are
	// left out of the ranking when the query has at least one rarer term,
	// and used as usual when it has none.
	selective := func(t int) bool { return df[t]*2 <= stats.N }
	anySelective := false
	for t := range df {
		if df[t] > 0 && selective(t) {
			anySelective = true
		}
	}
	var b strings.Builder
	var args []any
	present := make([][]byte, 0, len(dfs))
	b.WriteString(`SELECT memory_id, SUM(CASE token`)
	for _, d := range dfs {
		t := termOf[string(d.Token)]
		if anySelective && !selective(t) {
			continue
		}
		idf := math.Log(1 + (float64(stats.N)-float64(df[t])+0.5)/(float64(df[t])+0.5))
		b.WriteString(` WHEN ? THEN CAST(? AS DOUBLE PRECISION)`)
		args = append(args, d.Token, idf)
		present = append(present, d.Token)
	}
	b.WriteString(` ELSE 0 END * tf * CAST(? AS DOUBLE PRECISION) / (tf + CAST(? AS DOUBLE PRECISION) + CAST(? AS DOUBLE PRECISION) * doc_len)) AS score` +
		` FROM memory_terms WHERE token IN (?)` + userFilter +
		` GROUP BY memory_id ORDER BY score DESC, memory_id DESC LIMIT ?`)
	args = append(args, bm25K1+1, bm25K1*(1-bm25B), bm25K1*bm25B/avgdl, present)
	args = withUser(args...)
	args = append(args, topK)
	sq, sargs, err := sqlx.In(b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("build search query: %w", err)
	}
	var ranked []struct {
		ID    string  `db:"memory_id"`
		Score float64 `db:"score"`
	}
	if err := s.db.SelectContext(ctx, &ranked, s.db.Rebind(sq), sargs...); err != nil {
		return nil, fmt.Errorf("search ranking: %w", err)
	}
	if len(ranked) == 0 {
		return []Match{}, nil
	}

	ids := make([]string, len(ranked))
	for i, r := range ranked {
		ids[i] = r.ID
	}
	q, qargs, err := sqlx.In(`SELECT `+memoryColumns+` FROM memories WHERE organization_id = ? AND id IN (?)`, orgID, ids)
	if err != nil {
		return nil, fmt.Errorf("build fetch query: %w", err)
	}
	var mrows []memoryRow
	if err := s.db.SelectContext(ctx, &mrows, s.db.Rebind(q), qargs...); err != nil {
		return nil, fmt.Errorf("fetch matches: %w", err)
	}
	byID := make(map[string]memoryRow, len(mrows))
	for _, r := range mrows {
		byID[r.ID] = r
	}
	out := make([]Match, 0, len(ranked))
	for _, r := range ranked {
		row, ok := byID[r.ID]
		if !ok {
			continue // deleted meanwhile
		}
		m, _, err := s.decode(row)
		if err != nil {
			return nil, err
		}
		out = append(out, Match{Memory: m, Score: r.Score})
	}
	return out, nil
}

// scopeStats is the number of memories and their total length in terms in
// a search scope, the corpus figures of BM25. They change slowly, so they
// are cached for statsTTL: a stale figure shifts scores a little but never
// which memories match, since postings are always read live.
func (s *Store) scopeStats(ctx context.Context, scope string, args []any) (corpusStats, error) {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i], _ = a.(string)
	}
	key := strings.Join(parts, "\x00")
	s.statsMu.Lock()
	st, ok := s.stats[key]
	s.statsMu.Unlock()
	if ok && s.now().Sub(st.at) < statsTTL {
		return st, nil
	}
	if err := s.db.GetContext(ctx, &st, s.db.Rebind(`SELECT COUNT(*) AS n, COALESCE(SUM(term_count), 0) AS total FROM memories WHERE `+scope), args...); err != nil {
		return corpusStats{}, fmt.Errorf("search stats: %w", err)
	}
	st.at = s.now()
	s.statsMu.Lock()
	if len(s.stats) >= maxCachedStats {
		clear(s.stats)
	}
	s.stats[key] = st
	s.statsMu.Unlock()
	return st, nil
}

type corpusStats struct {
	N     int64 `db:"n"`
	Total int64 `db:"total"`
	at    time.Time
}

const (
	statsTTL       = 5 * time.Second
	maxCachedStats = 10000
)

// Ready checks that the database answers.
func (s *Store) Ready(ctx context.Context) error {
	var one int
	return s.db.GetContext(ctx, &one, `SELECT 1`)
}
