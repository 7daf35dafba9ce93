package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// The blind index: each memory's terms (terms.go), hashed with the index key
// of the key that sealed it, are rows of memory_terms, written with the
// memory (insertTerms) and ranked with BM25 by Search.

// termBatch keeps each multi-row INSERT well under both databases'
// bound-parameter limits.
const termBatch = 400

// insertTerms writes the postings of memory r (its id, organization, user
// and sealing key) inside tx: freq is each term's count, length the total.
func (s *Store) insertTerms(ctx context.Context, tx *sqlx.Tx, r memoryRow, freq map[string]int, length int) error {
	k := s.kr.keys[r.KeyID]
	type row struct {
		token []byte
		tf    int
	}
	rows := make([]row, 0, len(freq))
	for term, tf := range freq {
		rows = append(rows, row{k.token("t", r.OrgID, term), tf})
	}
	for start := 0; start < len(rows); start += termBatch {
		end := min(start+termBatch, len(rows))
		var b strings.Builder
		b.WriteString(`INSERT INTO memory_terms (token, memory_id, user_id, tf, doc_len) VALUES `)
		args := make([]any, 0, (end-start)*5)
		for i, p := range rows[start:end] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, p.token, r.ID, r.UserID, p.tf, length)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(b.String()), args...); err != nil {
			return fmt.Errorf("insert terms: %w", err)
		}
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
	if st, ok := s.stats.get(key, s.now()); ok {
		return st, nil
	}
	var st corpusStats
	if err := s.db.GetContext(ctx, &st, s.db.Rebind(`SELECT COUNT(*) AS n, COALESCE(SUM(term_count), 0) AS total FROM memories WHERE `+scope), args...); err != nil {
		return corpusStats{}, fmt.Errorf("search stats: %w", err)
	}
	st.at = s.now()
	s.stats.put(key, st)
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

// statsCache holds the corpusStats of each search scope for statsTTL. It is
// emptied when it reaches maxCachedStats scopes, so a flood of distinct
// userId filters cannot grow it without bound. The zero value is ready.
type statsCache struct {
	mu      sync.Mutex
	byScope map[string]corpusStats
}

func (c *statsCache) get(key string, now time.Time) (corpusStats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.byScope[key]
	return st, ok && now.Sub(st.at) < statsTTL
}

func (c *statsCache) put(key string, st corpusStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byScope == nil || len(c.byScope) >= maxCachedStats {
		c.byScope = make(map[string]corpusStats)
	}
	c.byScope[key] = st
}
