package sqldb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNoDatabase means the database a URL names does not exist: its SQLite
// file is missing, or the PostgreSQL server has no database of that name.
var ErrNoDatabase = errors.New("database does not exist")

// Describe is the database URL as it may be shown to an operator: for
// PostgreSQL without the password and the query string (which may hold
// one), for SQLite with the file's absolute path. An unparsable URL is
// described by its scheme at most.
func Describe(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		raw = DefaultURL
	}
	t, err := Parse(raw)
	if err != nil {
		return "an unparsable URL"
	}
	if t.Kind == SQLite {
		if abs, err := filepath.Abs(t.Path); err == nil && abs != t.Path {
			return fmt.Sprintf("sqlite:%s (%s)", t.Path, abs)
		}
		return "sqlite:" + t.Path
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "a postgres:// URL"
	}
	shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		shown.User = url.User(u.User.Username())
	}
	return shown.String()
}

// CheckExists returns an error wrapping ErrNoDatabase when the database raw
// names does not exist, and creates nothing: commands that only read or
// change a database use it so that a wrong or unset AZEN_DATABASE_URL is not
// answered from a new, empty one. For SQLite it checks the file; for
// PostgreSQL it connects once, and the server's answer says whether the
// database exists (any other failure to connect is returned as is).
func CheckExists(ctx context.Context, raw string) error {
	t, err := Parse(raw)
	if err != nil {
		return err
	}
	if t.Kind == SQLite {
		if t.Path == ":memory:" {
			return nil
		}
		_, err := os.Stat(t.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: no SQLite file %s", ErrNoDatabase, t.Path)
		}
		return err
	}
	db, err := Open(raw)
	if err != nil {
		return err
	}
	defer db.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.Ping(pctx); err != nil {
		if IsNoDatabase(err) {
			return fmt.Errorf("%w: %v", ErrNoDatabase, err)
		}
		return err
	}
	return nil
}

// IsNoDatabase reports whether err is PostgreSQL's "database does not exist"
// (SQLSTATE 3D000) or ErrNoDatabase.
func IsNoDatabase(err error) bool {
	var pgErr *pgconn.PgError
	return errors.Is(err, ErrNoDatabase) || errors.As(err, &pgErr) && pgErr.Code == "3D000"
}
