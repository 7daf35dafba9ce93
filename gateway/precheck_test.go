package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret32 = "0123456789abcdef0123456789abcdef"

func TestCheckNamedVariables(t *testing.T) {
	shipped, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		config string
		env    map[string]string
		want   string // "" means no error
	}{
		{"the shipped file with a good environment passes", string(shipped), map[string]string{"AZEN_GATEWAY_SECRET": secret32}, ""},
		{"a missing secret is named", string(shipped), nil, "AZEN_GATEWAY_SECRET is required: at least 32 bytes"},
		{"a short secret is named with its length", string(shipped), map[string]string{"AZEN_GATEWAY_SECRET": "short"}, "AZEN_GATEWAY_SECRET must be at least 32 bytes, got 5"},
		{"a malformed database URL is named, never repeated", string(shipped), map[string]string{"AZEN_GATEWAY_SECRET": secret32, "AZEN_DATABASE_URL": "mysql://root:hunter2@db/azen"}, "AZEN_DATABASE_URL must start with postgres://"},
		{"a malformed Redis URL is named", string(shipped), map[string]string{"AZEN_GATEWAY_SECRET": secret32, "AZEN_REDIS_URL": "http://cache:6379"}, "AZEN_REDIS_URL must start with redis://"},
		{"an unknown discovery mode lists the modes", string(shipped), map[string]string{"AZEN_GATEWAY_SECRET": secret32, "AZEN_BACKENDS_DISCOVERY": "consul"}, `AZEN_BACKENDS_DISCOVERY must be one of static, dns, got "consul"`},
		{"dns discovery passes", string(shipped), map[string]string{"AZEN_GATEWAY_SECRET": secret32, "AZEN_BACKENDS_DISCOVERY": "dns"}, ""},
		{"every bad variable is named on one line", string(shipped), map[string]string{"AZEN_REDIS_URL": "x"}, "AZEN_GATEWAY_SECRET is required"},
		{"a variable the config does not name is not checked", ":8080 {\n\trespond ok\n}\n", map[string]string{"AZEN_GATEWAY_SECRET": "short"}, ""},
		{"a comment naming a variable does not count", "# secret {env.AZEN_GATEWAY_SECRET}\n:8080 {\n\trespond ok\n}\n", nil, ""},
		{"a JSON config is read alike", `{"apps":{"http":{"servers":{"s":{"routes":[{"handle":[{"handler":"azen_auth","secret":"{env.AZEN_GATEWAY_SECRET}"}]}]}}}}}`, nil, "AZEN_GATEWAY_SECRET is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkNamedVariables(tc.config, func(k string) string { return tc.env[k] })
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case err != nil && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			case err != nil && (strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "hunter2")):
				t.Fatalf("error is not one line, or repeats a secret: %q", err)
			}
		})
	}
	err = checkNamedVariables(string(shipped), func(k string) string { return map[string]string{"AZEN_REDIS_URL": "x"}[k] })
	if err == nil || !strings.Contains(err.Error(), "AZEN_GATEWAY_SECRET") || !strings.Contains(err.Error(), "AZEN_REDIS_URL") {
		t.Errorf("both bad variables should be named: %v", err)
	}
}

func TestCheckEnvironmentFindsTheConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(":8080 {\n\tazen_auth {\n\t\tsecret {env.AZEN_GATEWAY_SECRET}\n\t}\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	for _, tc := range []struct {
		name    string
		args    []string
		checked bool
	}{
		{"run --config FILE", []string{"run", "--config", cfg}, true},
		{"run --config=FILE", []string{"run", "--config=" + cfg, "--adapter", "caddyfile"}, true},
		{"validate -c FILE", []string{"validate", "-c", cfg}, true},
		{"start --config FILE", []string{"start", "--config", cfg}, true},
		{"reload uses the running gateway's environment", []string{"reload", "--config", cfg}, false},
		{"adapt does not provision", []string{"adapt", "--config", cfg}, false},
		{"--envfile changes the environment: Caddy checks", []string{"run", "--config", cfg, "--envfile", "x.env"}, false},
		{"--resume loads another config", []string{"run", "--resume"}, false},
		{"a missing file is Caddy's to report", []string{"run", "--config", filepath.Join(dir, "nope")}, false},
		{"keys is not a config command", []string{"keys", "list"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkEnvironment(tc.args, none); (err != nil) != tc.checked {
				t.Fatalf("checked %v, want %v (%v)", err != nil, tc.checked, err)
			}
		})
	}
}
