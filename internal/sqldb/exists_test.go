package sqldb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

func TestDescribeHidesThePassword(t *testing.T) {
	wd, _ := os.Getwd()
	for _, tc := range []struct{ raw, want string }{
		{"postgres://azen:s3cret@db:5432/azen?sslmode=disable&password=s3cret", "postgres://azen@db:5432/azen"},
		{"postgresql://db/azen", "postgresql://db/azen"},
		{"sqlite:/srv/azen.db", "sqlite:/srv/azen.db"},
		{"sqlite:azen.db", "sqlite:azen.db (" + filepath.Join(wd, "azen.db") + ")"},
		{"", "sqlite:azen.db (" + filepath.Join(wd, "azen.db") + ")"},
		{"mysql://root:s3cret@db/azen", "an unparsable URL"},
	} {
		if got := Describe(tc.raw); got != tc.want || strings.Contains(got, "s3cret") {
			t.Errorf("Describe(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestCheckExistsCreatesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "azen.db")
	if err := CheckExists(ctx, "sqlite:"+path); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("missing SQLite file: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("CheckExists created the file: %v", err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckExists(ctx, "sqlite:"+path); err != nil {
		t.Fatalf("existing SQLite file: %v", err)
	}

	pg := testenv.StartPostgres(t)
	if err := CheckExists(ctx, pg.CreateDatabase(t)); err != nil {
		t.Fatalf("existing PostgreSQL database: %v", err)
	}
	err := CheckExists(ctx, pg.URL("azen_never_created"))
	if !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), `database "azen_never_created" does not exist`) {
		t.Fatalf("missing PostgreSQL database: %v", err)
	}
	pg.Stop()
	if err := CheckExists(ctx, pg.URL("postgres")); err == nil || errors.Is(err, ErrNoDatabase) {
		t.Fatalf("a server that is down is not a missing database: %v", err)
	}
}
