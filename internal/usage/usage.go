// Package usage meters the requests azen_auth admitted (contract §9): the
// gateway counts them in memory (Meter) and adds the counts to usage_daily
// in batches; the console reads them back per day (Store.Daily). Counts are
// additive, so any number of gateways add up.
package usage

import (
	"context"
	"embed"
	"fmt"
	"strings"

	"github.com/azen-sh/gateway/internal/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

const migrationComponent = "usage"

// Route groups.
const (
	GroupCreate = "memory_create"
	GroupSearch = "memory_search"
	GroupRead   = "memory_read"
	GroupUpdate = "memory_update"
	GroupDelete = "memory_delete"
	GroupOther  = "other"
)

// Outcomes.
const (
	OutcomeSuccess     = "success"
	OutcomeError       = "error"
	OutcomeRateLimited = "rate_limited"
)

// Group names the route group of a request.
func Group(method, path string) string {
	const base = "/api/v1/memory"
	if !strings.HasPrefix(path, base) {
		return GroupOther
	}
	rest := path[len(base):]
	switch {
	case rest == "":
		switch method {
		case "POST":
			return GroupCreate
		case "GET", "HEAD":
			return GroupRead
		}
	case rest == "/search":
		if method == "POST" {
			return GroupSearch
		}
	case rest[0] == '/' && !strings.Contains(rest[1:], "/"):
		switch method {
		case "GET", "HEAD":
			return GroupRead
		case "PATCH":
			return GroupUpdate
		case "DELETE":
			return GroupDelete
		}
	}
	return GroupOther
}

// Count is one row's worth of requests.
type Count struct {
	Day            string `db:"day"` // YYYY-MM-DD
	OrganizationID string `db:"organization_id"`
	CredentialKind string `db:"credential_kind"`
	CredentialID   string `db:"credential_id"`
	Group          string `db:"route_group"`
	Outcome        string `db:"outcome"`
	Requests       int64  `db:"requests"`
}

// Store is usage_daily on PostgreSQL or SQLite.
type Store struct {
	db *sqldb.DB
}

// NewStore uses db (which the caller closes).
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

// Migrate creates usage_daily. Safe when several processes start at once.
func (s *Store) Migrate(ctx context.Context) error {
	return s.db.Migrate(ctx, migrationComponent, migrations, "migrations")
}

// rowsPerStatement keeps one INSERT's parameters far below both databases'
// limits.
const rowsPerStatement = 200

// Add adds counts to the table in one transaction (an upsert that sums), so
// a batch is counted entirely or not at all.
func (s *Store) Add(ctx context.Context, counts []Count) error {
	if len(counts) == 0 {
		return nil
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin usage batch: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	for start := 0; start < len(counts); start += rowsPerStatement {
		batch := counts[start:min(len(counts), start+rowsPerStatement)]
		var b strings.Builder
		b.WriteString(`INSERT INTO usage_daily (day, organization_id, credential_kind, credential_id, route_group, outcome, requests) VALUES `)
		args := make([]any, 0, 7*len(batch))
		for i, c := range batch {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, c.Day, c.OrganizationID, c.CredentialKind, c.CredentialID, c.Group, c.Outcome, c.Requests)
		}
		b.WriteString(` ON CONFLICT (organization_id, day, credential_kind, credential_id, route_group, outcome)
			DO UPDATE SET requests = usage_daily.requests + excluded.requests`)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(b.String()), args...); err != nil {
			return fmt.Errorf("add usage: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit usage batch: %w", err)
	}
	return nil
}

// Filter selects the rows Daily sums.
type Filter struct {
	OrganizationID string
	From, To       string // YYYY-MM-DD, both included
	CredentialID   string // "" for every credential
}

// Daily returns the organization's requests per day, route group and
// outcome (credentials summed), ordered by day.
func (s *Store) Daily(ctx context.Context, f Filter) ([]Count, error) {
	q := `SELECT day, route_group, outcome, SUM(requests) AS requests FROM usage_daily
		WHERE organization_id = ? AND day >= ? AND day <= ?`
	args := []any{strings.ToLower(f.OrganizationID), f.From, f.To}
	if f.CredentialID != "" {
		q += ` AND credential_id = ?`
		args = append(args, strings.ToLower(f.CredentialID))
	}
	q += ` GROUP BY day, route_group, outcome ORDER BY day, route_group, outcome`
	var out []Count
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("read usage: %w", err)
	}
	return out, nil
}
