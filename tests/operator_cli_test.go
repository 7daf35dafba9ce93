package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// Tests of issue 13 that run the real binaries as an operator would: the
// names they answer to, what they refuse, and how their errors and logs
// read.

// oneLine fails unless out (stderr of a failed command) is exactly one line
// holding every part of want.
func oneLine(t *testing.T, what, out string, want ...string) {
	t.Helper()
	out = strings.TrimRight(out, "\n")
	if strings.Contains(out, "\n") {
		t.Errorf("%s: more than one line:\n%s", what, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: %q does not say %q", what, out, w)
		}
	}
}

// TestBinariesKnowTheirNameAndVersion: `version` prints our version and
// commit as `make build` stamps them (and Caddy's for the gateway); help
// and errors say azen-gateway and point to our docs.
func TestBinariesKnowTheirNameAndVersion(t *testing.T) {
	_, bk := testenv.Binaries(t)
	rev, err := exec.Command("git", "-C", testenv.RepoRoot(t), "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	commit := strings.TrimSpace(string(rev))

	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, err := testenv.TryCommand(t, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		oneLine(t, "azen-gateway "+args[0], out, "azen-gateway ", "(commit "+commit, "Caddy v2.")
		if strings.HasPrefix(out, "azen-gateway dev (commit unknown") {
			t.Errorf("make build stamped nothing: %q", out)
		}
	}
	out, _, err := runFile(t, bk, nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	oneLine(t, "azen-backend version", out, "azen-backend ", "(commit "+commit)

	for _, args := range [][]string{nil, {"--help"}, {"help"}} {
		out, _, err := testenv.TryCommand(t, nil, args...)
		if err != nil {
			t.Fatalf("help %v: %v", args, err)
		}
		for _, want := range []string{"Usage:\n  azen-gateway <command>", "keys ", "run ", "azen-gateway run --config Caddyfile", "docs/deploy.md"} {
			if !strings.Contains(out, want) {
				t.Errorf("help %v does not say %q:\n%s", args, want, out)
			}
		}
		if strings.Contains(out, "caddy run") || strings.Contains(out, "$ caddy") {
			t.Errorf("help %v names caddy's binary:\n%s", args, out)
		}
	}
	_, errOut, err := testenv.TryCommand(t, nil, "frobnicate")
	if err == nil || !strings.Contains(errOut, `unknown command "frobnicate" for "azen-gateway"`) || strings.Contains(errOut, "'caddy") {
		t.Errorf("unknown command: %v %q", err, errOut)
	}
	out, _, err = runFile(t, bk, nil, "help")
	if err != nil || !strings.Contains(out, "azen-backend version") || !strings.Contains(out, "docs/backend.md") {
		t.Errorf("azen-backend help: %v %q", err, out)
	}
}

// runFile runs bin with env to completion.
func runFile(t *testing.T, bin string, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// TestStartupErrorsNameTheVariable: a bad AZEN_* value the shipped
// Caddyfile names stops `run` and `validate` with one line that names the
// variable, before Caddy's provisioning chain; the value is never repeated.
func TestStartupErrorsNameTheVariable(t *testing.T) {
	config := filepath.Join(testenv.RepoRoot(t), "Caddyfile")
	base := map[string]string{
		"AZEN_SITE_ADDRESS": fmt.Sprintf(":%d", testenv.FreePort(t)),
		"AZEN_ADMIN_ADDR":   fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"AZEN_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
	}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"a short secret", with("AZEN_GATEWAY_SECRET", "too-short-secret"), []string{"AZEN_GATEWAY_SECRET must be at least 32 bytes, got 16"}},
		{"no secret", with(), []string{"AZEN_GATEWAY_SECRET is required", "validate needs it too"}},
		{"a malformed database URL", with("AZEN_GATEWAY_SECRET", testenv.GatewaySecret(), "AZEN_DATABASE_URL", "mysql://root:hunter2@db/azen"), []string{"AZEN_DATABASE_URL must start with"}},
		{"a malformed Redis URL", with("AZEN_GATEWAY_SECRET", testenv.GatewaySecret(), "AZEN_REDIS_URL", "http://:hunter2@cache:6379"), []string{"AZEN_REDIS_URL must start with redis://"}},
		{"an unknown discovery mode", with("AZEN_GATEWAY_SECRET", testenv.GatewaySecret(), "AZEN_BACKENDS_DISCOVERY", "consul"), []string{`AZEN_BACKENDS_DISCOVERY must be one of static, dns, got "consul"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range []string{"run", "validate"} {
				start := time.Now()
				_, errOut, err := testenv.TryCommand(t, tc.env, cmd, "--config", config, "--adapter", "caddyfile")
				if err == nil {
					t.Fatalf("%s started with %s", cmd, tc.name)
				}
				oneLine(t, cmd, errOut, append([]string{"azen-gateway: "}, tc.want...)...)
				if strings.Contains(errOut, "hunter2") || strings.Contains(errOut, "provision") {
					t.Errorf("%s: %q repeats the value or Caddy's chain", cmd, errOut)
				}
				if time.Since(start) > 10*time.Second {
					t.Errorf("%s took %s to refuse", cmd, time.Since(start))
				}
			}
		})
	}
}

// TestKeysRefuseADatabaseThatDoesNotExist: only `keys create` may start a
// new database (and says so); the other commands and rotate-keys refuse a
// missing one, naming the URL they used without its password. Every error
// is one line.
func TestKeysRefuseADatabaseThatDoesNotExist(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	id := testenv.NewUUID()
	for _, args := range [][]string{
		{"keys", "list"},
		{"keys", "list", "--json"},
		{"keys", "disable", id},
		{"keys", "enable", id},
		{"keys", "delete", id},
		{"keys", "update", id, "--name", "x"},
		{"keys", "reroll", id},
	} {
		_, errOut, err := testenv.TryCommand(t, map[string]string{"AZEN_DATABASE_URL": "sqlite:" + missing}, args...)
		if err == nil {
			t.Errorf("%v succeeded on a missing database", args)
		}
		oneLine(t, strings.Join(args, " "), errOut, "the database does not exist", "AZEN_DATABASE_URL=sqlite:"+missing, "only keys create makes a new database")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("a refused command created %s: %v", missing, err)
	}

	// Unset: the default, in the working directory, is named as such.
	cmd := exec.Command(func() string { gw, _ := testenv.Binaries(t); return gw }(), "keys", "list")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("keys list with AZEN_DATABASE_URL unset succeeded: %s", out)
	}
	oneLine(t, "keys list (unset)", string(out), "AZEN_DATABASE_URL is unset, so the default sqlite:azen.db ("+filepath.Join(dir, "azen.db")+") was used")
	if _, err := os.Stat(filepath.Join(dir, "azen.db")); !os.IsNotExist(err) {
		t.Fatalf("keys list created the default database: %v", err)
	}

	// create makes it, and says so on stderr (stdout stays the JSON).
	created := filepath.Join(dir, "created.db")
	env := map[string]string{"AZEN_DATABASE_URL": "sqlite:" + created}
	stdout, errOut, err := testenv.TryCommand(t, env, "keys", "create", "--org", testenv.NewUUID(), "--user", "u", "--json")
	if err != nil {
		t.Fatalf("create: %v %s", err, errOut)
	}
	var k map[string]any
	if err := json.Unmarshal([]byte(stdout), &k); err != nil || k["id"] == nil {
		t.Fatalf("create --json stdout is not the key: %q", stdout)
	}
	oneLine(t, "create on a new database", errOut, "Note: created a new database (AZEN_DATABASE_URL=sqlite:"+created)
	_, errOut, err = testenv.TryCommand(t, env, "keys", "create", "--org", testenv.NewUUID(), "--user", "u")
	if err != nil || errOut != "" {
		t.Errorf("create on the existing database: %v, stderr %q", err, errOut)
	}
	if out := testenv.Command(t, env, "keys", "list", "--json"); !strings.Contains(out, k["id"].(string)) {
		t.Errorf("list does not show the created key: %s", out)
	}

	// Redis down: the change is kept and the error says so on one line
	// (go-redis's own dial failures would repeat it on more lines).
	dead := map[string]string{"AZEN_DATABASE_URL": env["AZEN_DATABASE_URL"], "AZEN_REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d", testenv.FreePort(t))}
	_, errOut, err = testenv.TryCommand(t, dead, "keys", "disable", k["id"].(string))
	if err == nil {
		t.Error("disable with Redis down reported success")
	}
	oneLine(t, "disable with Redis down", errOut, "disabled, but the invalidation could not be published on AZEN_REDIS_URL")

	// rotate-keys: a missing database is refused; an empty one is said to be empty.
	_, bk := testenv.Binaries(t)
	bkEnv := map[string]string{"AZEN_DATABASE_URL": "sqlite:" + missing, "AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1")}
	_, errOut, err = runFile(t, bk, bkEnv, "rotate-keys")
	if err == nil {
		t.Error("rotate-keys succeeded on a missing database")
	}
	oneLine(t, "rotate-keys (missing)", errOut, "azen-backend: the database does not exist", "AZEN_DATABASE_URL=sqlite:"+missing)
	bkEnv["AZEN_DATABASE_URL"] = "sqlite:" + created // the keys, and no memory
	stdout, errOut, err = runFile(t, bk, bkEnv, "rotate-keys")
	if err != nil {
		t.Fatalf("rotate-keys on an empty database: %v %s", err, errOut)
	}
	if !strings.Contains(stdout, "the database holds no memories") || strings.Contains(stdout, "done: every memory") {
		t.Errorf("rotate-keys on zero memories claims success: %s", stdout)
	}

	// PostgreSQL: the server says the database does not exist; the URL is
	// named without its password; an unreachable server is one line too.
	pg := testenv.StartPostgres(t)
	nodb := strings.Replace(pg.URL("azen_no_such_db"), "postgres@", "postgres:db-pass-77@", 1) // trust auth ignores it
	for _, args := range [][]string{{"keys", "list"}, {"keys", "create", "--org", testenv.NewUUID(), "--user", "u"}} {
		_, errOut, err := testenv.TryCommand(t, map[string]string{"AZEN_DATABASE_URL": nodb}, args...)
		if err == nil {
			t.Errorf("%v succeeded on a missing PostgreSQL database", args)
		}
		oneLine(t, strings.Join(args, " ")+" (postgres)", errOut, "does not exist", "azen_no_such_db")
		if strings.Contains(errOut, "db-pass-77") {
			t.Errorf("the password is shown: %q", errOut)
		}
	}
	_, errOut, err = runFile(t, bk, map[string]string{"AZEN_DATABASE_URL": nodb, "AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1")}, "rotate-keys")
	if err == nil {
		t.Error("rotate-keys succeeded on a missing PostgreSQL database")
	}
	oneLine(t, "rotate-keys (postgres)", errOut, "the database does not exist", "azen_no_such_db")
	down := fmt.Sprintf("postgres://azen:db-pass-77@127.0.0.1:%d/azen?sslmode=disable", testenv.FreePort(t))
	_, errOut, err = testenv.TryCommand(t, map[string]string{"AZEN_DATABASE_URL": down}, "keys", "list")
	if err == nil {
		t.Error("keys list succeeded against a server that is down")
	}
	oneLine(t, "keys list (server down)", errOut, "Error: ", "AZEN_DATABASE_URL=postgres://azen@127.0.0.1:")
	if strings.Contains(errOut, "db-pass-77") {
		t.Errorf("the password is shown: %q", errOut)
	}
}

// TestBackendLogsReadLikeTheGateways: the backend's JSON lines carry the
// gateway's field names (ts as Unix seconds, level in lower case, logger,
// msg, request_id), so one query reads both.
func TestBackendLogsReadLikeTheGateways(t *testing.T) {
	s := startEdgeStack(t)
	if r, err := tryJSON("GET", s.gateway.URL+"/api/v1/memory", withKey(s.key.Key), withHeader("X-Request-Id", "ops-log-check-1")); err != nil || r.status != 200 {
		t.Fatalf("list: %v %v", r, err)
	}
	find := func(p *testenv.Process, match func(map[string]any) bool) map[string]any {
		var found map[string]any
		waitFor(t, "the log line", func() bool {
			for _, l := range strings.Split(p.Output(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && match(m) {
					found = m
					return true
				}
			}
			return false
		})
		return found
	}
	bline := find(s.backend.Process, func(m map[string]any) bool { return m["request_id"] == "ops-log-check-1" })
	gline := find(s.gateway.Process, func(m map[string]any) bool { return m["request_id"] == "ops-log-check-1" })
	for name, l := range map[string]map[string]any{"backend": bline, "gateway": gline} {
		ts, ok := l["ts"].(float64)
		if !ok || ts < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("%s: ts %v is not Unix seconds: %v", name, l["ts"], l)
		}
		if l["level"] != "info" || l["msg"] == nil || l["logger"] == nil {
			t.Errorf("%s: level, msg or logger missing or not as Caddy writes them: %v", name, l)
		}
		for _, gone := range []string{"time", "service"} {
			if _, ok := l[gone]; ok {
				t.Errorf("%s: field %q is not one of the gateway's: %v", name, gone, l)
			}
		}
	}
}

// TestGoRedisLinesAreStructured: with Redis down, go-redis's own lines
// (its pool failing to dial) come out of the gateway as JSON log lines,
// not as "redis: … pool.go:…" text.
func TestGoRedisLinesAreStructured(t *testing.T) {
	s := startEdgeStack(t)
	gw := s.startGateway(t, "AZEN_REDIS_URL", fmt.Sprintf("redis://127.0.0.1:%d", testenv.FreePort(t)))
	if r, err := tryJSON("GET", gw.URL+"/api/v1/memory", withKey(s.key.Key)); err != nil || r.status != 200 {
		t.Fatalf("list with Redis down (local mode): %d %v", r.status, err)
	}
	waitFor(t, "go-redis's line", func() bool { return strings.Contains(gw.Output(), `"logger":"redis"`) })
	for _, l := range strings.Split(gw.Output(), "\n") {
		if strings.HasPrefix(l, "redis: ") || strings.Contains(l, "pool.go:") {
			t.Errorf("plain go-redis line: %q", l)
		}
		if strings.Contains(l, `"logger":"redis"`) && !json.Valid([]byte(l)) {
			t.Errorf("not JSON: %q", l)
		}
	}
}

// TestBackendGoRedisLinesAreStructured: the backend's go-redis lines (its
// console reading quota use from a Redis that is down) are JSON lines of
// its log, not plain text.
func TestBackendGoRedisLinesAreStructured(t *testing.T) {
	env := map[string]string{
		"AZEN_DATABASE_URL":    "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_GATEWAY_SECRET":  testenv.GatewaySecret(),
		"AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1"),
	}
	bkEnv := map[string]string{"AZEN_REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d", testenv.FreePort(t))}
	for k, v := range env {
		bkEnv[k] = v
	}
	bk := testenv.StartBackend(t, bkEnv)
	s := &edgeStack{env: env, backend: bk}
	gw := s.startGateway(t)
	p := newPerson(t)
	_, org := p.signUp(gw.URL, "Quota Org")
	testenv.CreateKey(t, env, "--org", org, "--quota", "100/day")
	p.must(200, "GET", gw.URL+"/console/api/keys", "")
	waitFor(t, "go-redis's line in the backend log", func() bool { return strings.Contains(bk.Output(), `"logger":"redis"`) })
	for _, l := range strings.Split(bk.Output(), "\n") {
		if strings.HasPrefix(l, "redis: ") || strings.Contains(l, "pool.go:") {
			t.Errorf("plain go-redis line: %q", l)
		}
	}
}
