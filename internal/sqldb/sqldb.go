// Package sqldb opens the SQL database named by AZEN_DATABASE_URL (PostgreSQL
// through pgx, or an SQLite file) with sqlx, and applies embedded migrations
// safely when several processes start at once.
package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
)

// DefaultURL is used when AZEN_DATABASE_URL is unset: the embedded default.
const DefaultURL = "sqlite:azen.db"

// Kinds of database.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Target is a parsed database URL.
type Target struct {
	Kind   string // Postgres or SQLite
	Driver string // database/sql driver name
	DSN    string
	Path   string // SQLite: the database file
}

// Parse interprets a database URL: postgres:// or postgresql:// selects
// PostgreSQL, sqlite:PATH selects SQLite. The error never repeats the URL,
// which may hold a password.
func Parse(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		raw = DefaultURL
	}
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return Target{}, errors.New("not a valid postgres:// URL")
		}
		return Target{Kind: Postgres, Driver: "pgx", DSN: raw}, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if path == "" {
			return Target{}, errors.New("sqlite: needs a file path, as in sqlite:PATH")
		}
		if strings.Contains(path, "?") {
			return Target{}, errors.New("sqlite: takes a plain file path without options")
		}
		// WAL and a busy timeout let the gateway, the CLI and the backend share
		// one file; IMMEDIATE transactions take the write lock up front, so two
		// writers queue instead of failing with SQLITE_BUSY half-way.
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate&_time_format=sqlite"
		return Target{Kind: SQLite, Driver: "sqlite", DSN: dsn, Path: path}, nil
	default:
		return Target{}, errors.New("must start with postgres://, postgresql:// or sqlite:PATH")
	}
}

// DB is an sqlx handle that knows which kind of database it talks to.
type DB struct {
	*sqlx.DB
	Kind string
}

// Open parses raw, opens the pool and sets its limits. It does not connect:
// callers that need the database now call Ping.
func Open(raw string) (*DB, error) {
	t, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	var db *sqlx.DB
	if t.Kind == SQLite {
		c, err := sqlite.NewConnector(t.DSN)
		if err != nil {
			return nil, fmt.Errorf("open %s database: %w", t.Kind, err)
		}
		db = sqlx.NewDb(sql.OpenDB(privateFile{Connector: c, path: t.Path}), t.Driver)
	} else if db, err = sqlx.Open(t.Driver, t.DSN); err != nil {
		return nil, fmt.Errorf("open %s database: %w", t.Kind, err)
	}
	if t.Kind == Postgres {
		db.SetMaxOpenConns(32)
		db.SetMaxIdleConns(16)
		db.SetConnMaxIdleTime(5 * time.Minute)
	} else {
		// SQLite serialises writers anyway; a few connections allow concurrent readers.
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
	}
	return &DB{DB: db, Kind: t.Kind}, nil
}

// privateFile creates the SQLite file readable by its owner only (0600)
// before the first connection opens it. The database holds key hashes and
// encrypted memories; SQLite would create it with the umask's mode
// (usually 0644), and it gives the -wal and -shm files the mode of the
// main file. An existing file keeps its mode: it is the operator's.
type privateFile struct {
	driver.Connector
	path string
}

func (c privateFile) Connect(ctx context.Context) (driver.Conn, error) {
	if err := createPrivate(c.path); err != nil {
		return nil, err
	}
	return c.Connector.Connect(ctx)
}

// createPrivate creates path with mode 0600 unless it exists already.
func createPrivate(path string) error {
	if path == ":memory:" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create sqlite database file: %w", err)
	}
	return f.Close()
}

// Ping checks that the database answers within ctx.
func (db *DB) Ping(ctx context.Context) error {
	return db.PingContext(ctx)
}

// IsUniqueViolation reports whether err is a unique-constraint violation on
// either database.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return sqliteErr.Code() == 2067 || sqliteErr.Code() == 1555
	}
	return false
}
