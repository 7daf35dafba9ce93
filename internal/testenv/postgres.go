package testenv

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver CreateDatabase uses
)

const installPostgres = "apt-get update && apt-get install -y postgresql"

// Postgres is a private PostgreSQL server in a temporary folder.
type Postgres struct {
	t      testing.TB
	Port   int
	dir    string
	bin    string
	asUser string // "postgres" when running as root, else ""
	dbSeq  atomic.Int64
}

// StartPostgres initialises and starts a private PostgreSQL server. It is
// stopped and removed at test cleanup. As root it runs as the postgres user,
// since PostgreSQL refuses to run as root.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb := lookBinary(t, "initdb", []string{"/usr/lib/postgresql/*/bin"}, installPostgres)
	bin := filepath.Dir(initdb)
	if _, err := os.Stat(filepath.Join(bin, "pg_ctl")); err != nil {
		// /usr/local/bin may hold only a link to initdb: follow it.
		if real, err := filepath.EvalSymlinks(initdb); err == nil {
			bin = filepath.Dir(real)
		}
	}
	dir, err := os.MkdirTemp("", "azen-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{t: t, Port: FreePort(t), dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		p.asUser = "postgres"
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("user postgres not found; install PostgreSQL with: %s", installPostgres)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		p.stop("immediate")
		os.RemoveAll(dir)
	})
	p.pgRun("initdb", "-D", p.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	p.Start()
	return p
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

func (p *Postgres) pgRun(tool string, args ...string) {
	p.t.Helper()
	path := filepath.Join(p.bin, tool)
	if p.asUser != "" {
		run(p.t, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
		return
	}
	run(p.t, path, args...)
}

// Start starts the server (again) and waits until it accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", p.Port, p.dir)
	p.pgRun("pg_ctl", "-D", p.dataDir(), "-o", opts, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start")
	WaitForPort(p.t, p.Addr(), 30*time.Second)
}

// Stop stops the server at once (connections are cut), as a crash would.
func (p *Postgres) Stop() {
	p.t.Helper()
	p.stop("immediate")
}

func (p *Postgres) stop(mode string) {
	path := filepath.Join(p.bin, "pg_ctl")
	args := []string{"-D", p.dataDir(), "-m", mode, "-w", "stop"}
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	_ = cmd.Run() // already stopped is fine
}

// Addr is host:port.
func (p *Postgres) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// URL is the connection URL of database name.
func (p *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// CreateDatabase makes a fresh, empty database and returns its URL, so tests
// sharing one server never see each other's rows.
func (p *Postgres) CreateDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("azen_%d_%d", os.Getpid(), p.dbSeq.Add(1))
	db, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	return p.URL(name)
}
