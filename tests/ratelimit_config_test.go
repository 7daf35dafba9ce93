package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// `adapt` never shows the Redis URL ({env.*} is expanded at provision), and
// `validate` provisions without touching the network, so it succeeds with
// an unreachable Redis; a bad block fails with a clear message.
func TestRateLimitAdaptValidateAndErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, block string) string {
		p := filepath.Join(dir, name)
		cf := strings.ReplaceAll(rlCaddyfile(block), "{$AZEN_ADMIN_ADDR}", "off")
		cf = strings.ReplaceAll(cf, "{$AZEN_SITE_ADDRESS}", ":0")
		cf = strings.ReplaceAll(cf, "{$UP}", "127.0.0.1:1")
		if err := os.WriteFile(p, []byte(cf), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"AZEN_REDIS_URL": "redis://:hunter2-secret@127.0.0.1:1/0"}
	good := write("good", headerKeyed("rate 60/m\nburst 60\ntier pro 600/m burst 100"))

	out := testenv.Command(t, env, "adapt", "--config", good, "--adapter", "caddyfile")
	if strings.Contains(out, "hunter2") || !strings.Contains(out, `{env.AZEN_REDIS_URL}`) {
		t.Errorf("adapt output shows the Redis URL or lost the placeholder:\n%s", out)
	}
	if _, errOut, err := testenv.TryCommand(t, env, "validate", "--config", good, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("validate with an unreachable Redis failed: %v\n%s", err, errOut)
	} else if strings.Contains(errOut, "hunter2") {
		t.Errorf("validate logged the Redis password:\n%s", errOut)
	}

	for _, tt := range []struct{ block, want string }{
		{headerKeyed("rate 60/x"), `rate "60/x": unit must be`},
		{headerKeyed("burst 0"), "burst must be a whole number of at least 1"},
		{headerKeyed("rate 10/m\ncost 11"), "cost 11 is above the burst 10"},
		{headerKeyed("colour blue"), `unknown subdirective "colour"`},
		{headerKeyed("rate 1/m\nrate 2/m"), `duplicate subdirective "rate"`},
		{headerKeyed("timeout fast"), "timeout must be a positive duration"},
		{headerKeyed("on_redis_error ignore"), "on_redis_error must be local, allow or deny"},
	} {
		bad := write("bad", tt.block)
		_, errOut, err := testenv.TryCommand(t, env, "validate", "--config", bad, "--adapter", "caddyfile")
		// The message is inside a JSON log line, quotes escaped.
		if err == nil || !strings.Contains(strings.ReplaceAll(errOut, `\"`, `"`), tt.want) {
			t.Errorf("validate %q: err %v, want a message containing %q; got:\n%s", tt.block, err, tt.want, errOut)
		}
	}

	// A malformed Redis URL fails at start without repeating it.
	badURL := map[string]string{"AZEN_REDIS_URL": "http://user:hunter2-secret@host"}
	_, errOut, err := testenv.TryCommand(t, badURL, "validate", "--config", good, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(errOut, "AZEN_REDIS_URL must start with redis://") || strings.Contains(errOut, "hunter2") {
		t.Errorf("bad Redis URL: err %v, output:\n%s", err, errOut)
	}
}
