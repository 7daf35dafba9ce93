package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestAuthSQLite runs the embedded default: an SQLite key store shared by
// the CLI and the gateway, no Redis (revocation within cache_ttl).
func TestAuthSQLite(t *testing.T) {
	secret := testenv.GatewaySecret()
	up := startUpstream(t, verifying(secret))
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "azen.db")
	env := map[string]string{"AZEN_DATABASE_URL": dbURL, "AZEN_GATEWAY_SECRET": secret, "UP": up.Addr}
	gw := testenv.StartGateway(t, authCaddyfile, authEnv(env, "CACHE_TTL", "1s"))

	id, key := testenv.CreateKey(t, env, "--user", "carol")
	expectAuth(t, gw.URL, key, 200, "")
	if saw := up.Last(); saw.Verified != nil || saw.Identity.UserID != "carol" || saw.Identity.KeyID != id {
		t.Fatalf("upstream saw %+v", saw)
	}
	// Caddy's access log records who called, never the key.
	waitForLog(t, gw.Process, `"user_id":"`+id+`"`)
	if strings.Contains(gw.Output(), key) {
		t.Fatal("the key appears in the gateway's log")
	}

	// last_used_at is recorded in the background.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(authListLine(t, env, id), "lastUsedAt") {
		if time.Now().After(deadline) {
			t.Fatal("last_used_at never recorded")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A reload with the same settings keeps the shared key store and cache.
	if out, err := gw.Reload(strings.Replace(authCaddyfile, "azen_request_id", "azen_request_id\n\theader X-Reloaded yes", 1)); err != nil {
		t.Fatalf("reload: %v: %s", err, out)
	}
	r := authCall(t, gw.URL, &key)
	if r.status != 200 || r.header.Get("X-Reloaded") != "yes" {
		t.Fatalf("after reload: %d, X-Reloaded %q", r.status, r.header.Get("X-Reloaded"))
	}

	unknown := strings.Replace(key, key[5:49], strings.Repeat("0", 44), 1) // keeps nothing of the key
	expectAuth(t, gw.URL, unknown, 403, "")

	// Without Redis a disabled key stops working within cache_ttl (1 s here).
	testenv.Command(t, env, "keys", "disable", id)
	authEventually(t, gw.URL, key, 403, 3*time.Second)
	expectAuth(t, gw.URL, key, 403, "API key is disabled.")

	t.Run("expiry set by the CLI is honoured", func(t *testing.T) {
		_, short := testenv.CreateKey(t, env, "--expires-in", "1s")
		expectAuth(t, gw.URL, short, 200, "")
		time.Sleep(1100 * time.Millisecond)
		expectAuth(t, gw.URL, short, 403, "API key has expired.")
	})
}

// TestAuthAdaptAndValidate checks what an operator sees before starting.
func TestAuthAdaptAndValidate(t *testing.T) {
	dir := t.TempDir()
	secret := testenv.GatewaySecret()
	dbFile := filepath.Join(dir, "never-created.db")
	env := map[string]string{
		"AZEN_GATEWAY_SECRET": secret,
		"AZEN_DATABASE_URL":   "postgres://azen:db-password-42@127.0.0.1:1/azen",
		"AZEN_REDIS_URL":      "redis://:redis-password-42@127.0.0.1:1",
		"AZEN_SITE_ADDRESS":   ":0", "AZEN_ADMIN_ADDR": "127.0.0.1:0",
		"TRUSTED": "private_ranges", "CACHE_TTL": "30s", "FAILED": "20/m", "UP": "127.0.0.1:1",
	}
	config := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(config, []byte(authCaddyfile), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("adapt output holds no secret", func(t *testing.T) {
		out := testenv.Command(t, env, "adapt", "--config", config, "--adapter", "caddyfile")
		for _, s := range []string{secret, "db-password-42", "redis-password-42"} {
			if strings.Contains(out, s) {
				t.Fatalf("adapted config holds a secret: %s", out)
			}
		}
		if !strings.Contains(out, `"secret":"{env.AZEN_GATEWAY_SECRET}"`) {
			t.Fatalf("placeholder missing: %s", out)
		}
	})
	t.Run("validate makes no connection", func(t *testing.T) {
		// Nothing listens on port 1; validate must pass anyway, quickly.
		testenv.Command(t, env, "validate", "--config", config, "--adapter", "caddyfile")
		sqliteEnv := map[string]string{}
		for k, v := range env {
			sqliteEnv[k] = v
		}
		sqliteEnv["AZEN_DATABASE_URL"] = "sqlite:" + dbFile
		testenv.Command(t, sqliteEnv, "validate", "--config", config, "--adapter", "caddyfile")
		if _, err := os.Stat(dbFile); !os.IsNotExist(err) {
			t.Fatalf("validate created the SQLite file: %v", err)
		}
	})
	t.Run("a short secret stops validate without echoing it", func(t *testing.T) {
		bad := map[string]string{}
		for k, v := range env {
			bad[k] = v
		}
		bad["AZEN_GATEWAY_SECRET"] = "tooshort-secret"
		out, errOut, err := testenv.TryCommand(t, bad, "validate", "--config", config, "--adapter", "caddyfile")
		if err == nil {
			t.Fatal("validate accepted a short secret")
		}
		if !strings.Contains(out+errOut, "at least 32 bytes") || strings.Contains(out+errOut, "tooshort-secret") {
			t.Fatalf("output: %s %s", out, errOut)
		}
	})
	t.Run("unknown and duplicate subdirectives name file and line", func(t *testing.T) {
		for name, block := range map[string]string{
			"unknown":   "azen_auth {\n\t\tsecret {env.AZEN_GATEWAY_SECRET}\n\t\tsecrets x\n\t}",
			"duplicate": "azen_auth {\n\t\tsecret {env.AZEN_GATEWAY_SECRET}\n\t\tsecret {env.AZEN_GATEWAY_SECRET}\n\t}",
		} {
			bad := filepath.Join(dir, name+".Caddyfile")
			os.WriteFile(bad, []byte("{\n\tadmin off\n}\n:0 {\n\t"+block+"\n}\n"), 0o600)
			_, errOut, err := testenv.TryCommand(t, env, "adapt", "--config", bad, "--adapter", "caddyfile")
			if err == nil || !strings.Contains(errOut, name+".Caddyfile:7") {
				t.Errorf("%s: err %v, stderr %s", name, err, errOut)
			}
		}
	})
}

// TestAuthKeysCommand checks `azen-gateway keys` (contract §7) on SQLite.
func TestAuthKeysCommand(t *testing.T) {
	env := map[string]string{"AZEN_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "azen.db")}
	org := testenv.NewUUID()

	t.Run("create --json prints the contract fields", func(t *testing.T) {
		out := testenv.Command(t, env, "keys", "create", "--org", org, "--user", "dave", "--name", "ci key",
			"--expires-in", "720h", "--tier", "pro", "--rate", "120/m", "--burst", "20", "--json")
		var k map[string]any
		if err := json.Unmarshal([]byte(out), &k); err != nil {
			t.Fatalf("not JSON: %s", out)
		}
		for _, f := range []string{"id", "key", "prefix", "organizationId", "userId", "enabled", "expiresAt"} {
			if _, ok := k[f]; !ok {
				t.Errorf("field %s missing: %s", f, out)
			}
		}
		key, _ := k["key"].(string)
		if k["organizationId"] != org || k["userId"] != "dave" || k["enabled"] != true || k["tier"] != "pro" ||
			k["rateLimit"] != "120/m burst 20" || !strings.HasPrefix(key, k["prefix"].(string)) || len(key) != 54 {
			t.Errorf("fields: %s", out)
		}
		exp, err := time.Parse(time.RFC3339, k["expiresAt"].(string))
		if err != nil || exp.Before(time.Now().Add(719*time.Hour)) || exp.After(time.Now().Add(721*time.Hour)) {
			t.Errorf("expiresAt %v", k["expiresAt"])
		}
	})
	t.Run("create without --expires-in never expires; --rate alone keeps the limiter's burst", func(t *testing.T) {
		k := testenv.CreateKeyFull(t, env, "--rate", "10/s")
		if k.ExpiresAt != nil || k.RateLimit != "10/s" {
			t.Errorf("%+v", k)
		}
	})

	var ids []string
	t.Run("list never shows a key or a hash", func(t *testing.T) {
		id, key := testenv.CreateKey(t, env, "--org", org)
		for _, args := range [][]string{{"keys", "list"}, {"keys", "list", "--json"}, {"keys", "list", "--org", org, "--json"}} {
			out := testenv.Command(t, env, args...)
			if strings.Contains(out, key) || strings.Contains(out, key[12:]) || !strings.Contains(out, id) {
				t.Fatalf("%v printed %s", args, out)
			}
			if strings.Contains(strings.ToLower(out), "hash") {
				t.Fatalf("%v mentions a hash: %s", args, out)
			}
		}
		var list []map[string]any
		out := testenv.Command(t, env, "keys", "list", "--org", org, "--json")
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 {
			t.Fatalf("list --org: %d keys (%v): %s", len(list), err, out)
		}
		for _, k := range list {
			if k["organizationId"] != org {
				t.Errorf("key of another organization listed: %v", k)
			}
			ids = append(ids, k["id"].(string))
		}
		other := testenv.Command(t, env, "keys", "list", "--org", testenv.NewUUID(), "--json")
		if strings.TrimSpace(other) != "[]" {
			t.Errorf("unknown organization lists %s", other)
		}
	})
	t.Run("disable, enable and delete change the key", func(t *testing.T) {
		id := ids[0]
		if out := testenv.Command(t, env, "keys", "disable", id); !strings.Contains(out, "disabled key "+id) {
			t.Errorf("disable printed %q", out)
		}
		if !strings.Contains(authListLine(t, env, id), `"enabled": false`) {
			t.Error("not disabled")
		}
		testenv.Command(t, env, "keys", "enable", id)
		if !strings.Contains(authListLine(t, env, id), `"enabled": true`) {
			t.Error("not enabled")
		}
		testenv.Command(t, env, "keys", "delete", id)
		if strings.Contains(testenv.Command(t, env, "keys", "list", "--json"), id) {
			t.Error("deleted key still listed")
		}
	})
	t.Run("publish failure is reported, the change is kept", func(t *testing.T) {
		id, _ := testenv.CreateKey(t, env)
		dead := map[string]string{"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"], "AZEN_REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d", testenv.FreePort(t))}
		_, errOut, err := testenv.TryCommand(t, dead, "keys", "disable", id)
		if err == nil || !strings.Contains(errOut, "could not be published") {
			t.Fatalf("err %v, stderr %s", err, errOut)
		}
		if !strings.Contains(authListLine(t, env, id), `"enabled": false`) {
			t.Error("the key was not disabled")
		}
	})

	missingID := testenv.NewUUID()
	bad := []struct {
		rule string
		args []string
		want string
	}{
		{"create needs --org", []string{"keys", "create", "--user", "u"}, "--org is required"},
		{"create needs --user", []string{"keys", "create", "--org", org}, "--user is required"},
		{"--org must be a UUID", []string{"keys", "create", "--org", "acme", "--user", "u"}, "is not a UUID"},
		{"--user must not be blank", []string{"keys", "create", "--org", org, "--user", "  "}, "--user is required"},
		{"--burst needs --rate", []string{"keys", "create", "--org", org, "--user", "u", "--burst", "5"}, "--burst needs --rate"},
		{"bad --rate", []string{"keys", "create", "--org", org, "--user", "u", "--rate", "fast"}, "--rate"},
		{"bad --burst", []string{"keys", "create", "--org", org, "--user", "u", "--rate", "5/s", "--burst", "0"}, "--burst must be"},
		{"bad --expires-in", []string{"keys", "create", "--org", org, "--user", "u", "--expires-in", "soon"}, "expires-in"},
		{"negative --expires-in", []string{"keys", "create", "--org", org, "--user", "u", "--expires-in", "-1h"}, "must be positive"},
		{"bad --tier", []string{"keys", "create", "--org", org, "--user", "u", "--tier", "pro plan"}, "--tier"},
		{"unknown flag", []string{"keys", "create", "--org", org, "--user", "u", "--colour", "red"}, "unknown flag"},
		{"list --org must be a UUID", []string{"keys", "list", "--org", "acme"}, "is not a UUID"},
		{"disable needs an id", []string{"keys", "disable"}, "exactly one key id"},
		{"disable needs a UUID", []string{"keys", "disable", "abc"}, "is not a key id"},
		{"disable of an unknown id", []string{"keys", "disable", missingID}, "no API key with id " + missingID},
		{"enable of an unknown id", []string{"keys", "enable", missingID}, "no API key with id"},
		{"delete of an unknown id", []string{"keys", "delete", missingID}, "no API key with id"},
		{"keys alone", []string{"keys"}, "needs a subcommand"},
		{"unknown subcommand", []string{"keys", "rotate"}, "rotate"},
		{"bad database URL", []string{"keys", "list"}, "AZEN_DATABASE_URL"},
	}
	for _, b := range bad {
		t.Run(b.rule, func(t *testing.T) {
			e := env
			if b.rule == "bad database URL" {
				e = map[string]string{"AZEN_DATABASE_URL": "mysql://u:secretpw@h/db"}
			}
			out, errOut, err := testenv.TryCommand(t, e, b.args...)
			if err == nil {
				t.Fatalf("exit 0; stdout %s", out)
			}
			if !strings.Contains(errOut, b.want) || strings.Contains(errOut, "secretpw") || strings.Contains(errOut, "panic") {
				t.Fatalf("stderr %q, want %q", errOut, b.want)
			}
			if lines := strings.Count(strings.TrimSpace(errOut), "\n"); lines > 0 && !strings.Contains(errOut, "Usage") {
				t.Errorf("error is %d lines: %s", lines+1, errOut)
			}
		})
	}

	t.Run("concurrent first runs on a fresh database", func(t *testing.T) {
		fresh := map[string]string{"AZEN_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "fresh.db")}
		bin, _ := testenv.Binaries(t)
		var wg sync.WaitGroup
		errs := make(chan string, 6)
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(bin, "keys", "create", "--org", org, "--user", "u", "--json")
				cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "AZEN_DATABASE_URL=" + fresh["AZEN_DATABASE_URL"]}
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Sprintf("%v: %s", err, out)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		var list []any
		json.Unmarshal([]byte(testenv.Command(t, fresh, "keys", "list", "--json")), &list)
		if len(list) != 6 {
			t.Fatalf("%d keys after 6 concurrent creates", len(list))
		}
	})
}

// authListLine returns the JSON object of key id from `keys list --json`.
func authListLine(t *testing.T, env map[string]string, id string) string {
	t.Helper()
	var list []map[string]any
	json.Unmarshal([]byte(testenv.Command(t, env, "keys", "list", "--json")), &list)
	for _, k := range list {
		if k["id"] == id {
			b, _ := json.MarshalIndent(k, "", " ")
			return strings.ReplaceAll(string(b), `": `, `": `)
		}
	}
	t.Fatalf("key %s not listed", id)
	return ""
}
