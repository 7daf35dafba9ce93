package sqldb

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		wantKind string
		wantErr  string
	}{
		{"", SQLite, ""},
		{"sqlite:azen.db", SQLite, ""},
		{"sqlite:///var/lib/azen/azen.db", SQLite, ""},
		{"postgres://u:p@db:5432/azen?sslmode=disable", Postgres, ""},
		{"postgresql://db/azen", Postgres, ""},
		{"sqlite:", "", "file path"},
		{"sqlite:a.db?mode=ro", "", "plain file path"},
		{"mysql://u:secret@db/azen", "", "must start with"},
		{"postgres://", "", "not a valid"},
		{"azen.db", "", "must start with"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Error("error repeats the password")
				}
				return
			}
			if err != nil || got.Kind != tt.wantKind {
				t.Fatalf("Parse = %+v, %v", got, err)
			}
		})
	}
}

// migrateConcurrently starts n migrations of one database at once, as
// replicas starting together would, and checks the schema came out whole.
func migrateConcurrently(t *testing.T, url string, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(url)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			errs <- db.Migrate(ctx, "test", os.DirFS("testdata"), "migrations")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	db, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var versions []int
	if err := db.Select(&versions, `SELECT version FROM azen_migrations WHERE component = 'test' ORDER BY version`); err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[0] != 1 || versions[1] != 2 {
		t.Fatalf("applied versions %v, want [1 2]", versions)
	}
	if _, err := db.Exec(db.Rebind(`INSERT INTO widgets (id, name, size) VALUES (?, ?, ?)`), "1", "a", 3); err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(db.Rebind(`INSERT INTO widgets (id, name, size) VALUES (?, ?, ?)`), "2", "a", 4)
	if !IsUniqueViolation(err) {
		t.Fatalf("duplicate name: %v is not a unique violation", err)
	}
	_, err = db.Exec(db.Rebind(`INSERT INTO widgets (id, name) VALUES (?, ?)`), "3", "b")
	if IsUniqueViolation(err) || err != nil {
		t.Fatalf("distinct row: %v", err)
	}
}

func TestMigrateConcurrentlyOnPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	migrateConcurrently(t, pg.CreateDatabase(t), 6)
}

func TestMigrateConcurrentlyOnSQLite(t *testing.T) {
	migrateConcurrently(t, "sqlite:"+filepath.Join(t.TempDir(), "azen.db"), 6)
}

func TestPingFailsCleanlyWhenPostgresIsDown(t *testing.T) {
	pg := testenv.StartPostgres(t)
	url := pg.CreateDatabase(t)
	db, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("ping a live server: %v", err)
	}
	pg.Stop()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("ping a stopped server succeeded")
	}
	pg.Start()
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}

// TestSQLiteFileIsCreatedPrivate: the file holds key hashes and encrypted
// memories, so a new database (and the WAL files SQLite makes beside it)
// is readable by its owner only, whatever the umask allows; an existing
// file keeps the mode its operator gave it.
func TestSQLiteFileIsCreatedPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // the usual umask: files come out 0644
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "azen.db")
	db, err := Open("sqlite:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open created the file before any connection: %v", err)
	}
	if err := db.Migrate(context.Background(), "test", os.DirFS("testdata"), "migrations"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"azen.db", "azen.db-wal", "azen.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, perm)
		}
	}

	existing := filepath.Join(dir, "shared.db")
	if err := os.WriteFile(existing, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	db2, err := Open("sqlite:" + existing)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(existing); fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing file's mode changed to %o", fi.Mode().Perm())
	}
}
