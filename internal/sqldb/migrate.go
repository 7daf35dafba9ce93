package sqldb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
)

// Migrate applies the migrations in dir of fsys that component has not yet
// applied, in name order. Files are named NNNN_description.sql; PostgreSQL
// files may differ from SQLite ones by a ".postgres.sql" or ".sqlite.sql"
// suffix. It runs under a lock (an advisory lock on PostgreSQL, an IMMEDIATE
// transaction on SQLite), so replicas can start together.
func (db *DB) Migrate(ctx context.Context, component string, fsys fs.FS, dir string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	type migration struct {
		version int
		name    string
	}
	var todo []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		if strings.HasSuffix(name, ".postgres.sql") && db.Kind != Postgres ||
			strings.HasSuffix(name, ".sqlite.sql") && db.Kind != SQLite {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		todo = append(todo, migration{version: v, name: name})
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].version < todo[j].version })

	conn, err := db.connectForMigrations(ctx)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	defer conn.Close()

	if db.Kind == Postgres {
		h := fnv.New64a()
		h.Write([]byte("azen-migrate:" + component))
		lock := int64(h.Sum64() >> 1)
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lock); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lock) //nolint:errcheck // released with the session anyway
	}

	tx, err := conn.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migrations: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	const create = `CREATE TABLE IF NOT EXISTS azen_migrations (
		component TEXT NOT NULL,
		version INTEGER NOT NULL,
		PRIMARY KEY (component, version))`
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	var done []int
	if err := tx.SelectContext(ctx, &done, db.Rebind(`SELECT version FROM azen_migrations WHERE component = ?`), component); err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	applied := make(map[int]bool, len(done))
	for _, v := range done {
		applied[v] = true
	}
	for _, m := range todo {
		if applied[m.version] {
			continue
		}
		body, err := fs.ReadFile(fsys, dir+"/"+m.name)
		if err != nil {
			return fmt.Errorf("read migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO azen_migrations (component, version) VALUES (?, ?)`), component, m.version); err != nil {
			return fmt.Errorf("record migration %s: %w", m.name, err)
		}
		applied[m.version] = true
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	return nil
}

// connectForMigrations takes a connection. On a brand-new SQLite file,
// processes starting together race to switch it to WAL, and the losers get
// SQLITE_BUSY from the journal_mode pragma without the busy timeout ever
// applying; they wait a little and try again.
func (db *DB) connectForMigrations(ctx context.Context) (*sqlx.Conn, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := db.Connx(ctx)
		if err == nil || db.Kind != SQLite || !isBusy(err) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (or SQLITE_LOCKED).
func isBusy(err error) bool {
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		code := sqliteErr.Code() & 0xff // primary result code
		return code == 5 || code == 6
	}
	return false
}
