package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// BackendCommand runs the azen-backend binary with args (such as
// `rotate-keys`) and env added to a minimal environment, and returns what it
// printed and its exit error.
func BackendCommand(t testing.TB, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	_, bin := Binaries(t)
	return runBinary(t, bin, env, args)
}

// Dump returns the plain-SQL pg_dump of the database at url (as the server's
// own user when running as root), with every row of every table.
func (p *Postgres) Dump(t testing.TB, url string) string {
	t.Helper()
	// p.bin may be a folder of links to a few tools only: prefer the pg_dump
	// beside the real initdb, so client and server versions match.
	path := filepath.Join(p.bin, "pg_dump")
	if real, err := filepath.EvalSymlinks(filepath.Join(p.bin, "initdb")); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(real), "pg_dump")); err == nil {
			path = filepath.Join(filepath.Dir(real), "pg_dump")
		}
	}
	args := []string{"--no-owner", "--dbname=" + url}
	if p.asUser != "" {
		return run(t, "runuser", append([]string{"-u", p.asUser, "--", path}, args...)...)
	}
	return run(t, path, args...)
}
