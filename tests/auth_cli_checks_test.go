package tests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/testenv"
)

// TestKeysCLIChecksBeforeChanging covers CLI rules whose violation used to
// leave a change half made: a malformed AZEN_REDIS_URL is refused before the
// key is touched, and a user id no gateway would forward is never stored.
func TestKeysCLIChecksBeforeChanging(t *testing.T) {
	env := map[string]string{"AZEN_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "keys.db")}
	k := testenv.CreateKeyFull(t, env, "--user", "erin")

	bad := map[string]string{"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"], "AZEN_REDIS_URL": "notaurl"}
	_, errOut, err := testenv.TryCommand(t, bad, "keys", "disable", k.ID)
	if err == nil || !strings.Contains(errOut, "AZEN_REDIS_URL") {
		t.Fatalf("disable with a malformed Redis URL: err %v, stderr %q", err, errOut)
	}
	list := testenv.Command(t, env, "keys", "list", "--json")
	if !strings.Contains(list, `"enabled": true`) && !strings.Contains(list, `"enabled":true`) {
		t.Fatalf("the key was changed although the command failed: %s", list)
	}

	for _, user := range []string{"a\tb", "a\x7fb", strings.Repeat("é", 200)} {
		_, errOut, err := testenv.TryCommand(t, env, "keys", "create", "--org", testenv.NewUUID(), "--user", user)
		if err == nil || !strings.Contains(errOut, "--user") {
			t.Errorf("--user %q: err %v, stderr %q", user, err, errOut)
		}
	}
}

// TestGatewayMigratesKeyStoreAtStart: a running gateway creates api_keys
// shortly after start, before any request (contract §7), while `validate`
// of the same configuration never touches the database.
func TestGatewayMigratesKeyStoreAtStart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "gw.db")
	env := authEnv(map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + dbPath,
		"AZEN_GATEWAY_SECRET": testenv.GatewaySecret(),
		"UP":                  "127.0.0.1:1",
	})
	testenv.StartGateway(t, authCaddyfile, env)
	waitFor(t, "api_keys to exist without any request", func() bool {
		db, err := sqldb.Open("sqlite:" + dbPath)
		if err != nil {
			return false
		}
		defer db.Close()
		var n int
		err = db.Get(&n, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'api_keys'`)
		return err == nil && n == 1
	})
}
