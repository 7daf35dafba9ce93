package tests

// No Docker engine runs where these tests run, so they read the deployment
// files the way `docker compose` and `docker build` would and check what a
// broken deployment would otherwise only show at `up` time: services and
// their health checks, scalability of the backend, every file, variable and
// port the files refer to, and the shape of the Dockerfiles.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/azen-sh/gateway/internal/testenv"
)

// composeFile is the part of the Compose specification our files use.
// Decoding is strict: a key outside these structs (a typo such as
// `healtcheck`, or a new feature) fails the test until it is added here.
type composeFile struct {
	Name     string                     `yaml:"name"`
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]*struct{}       `yaml:"volumes"`
}

type composeService struct {
	Image           string                       `yaml:"image"`
	Build           *composeBuild                `yaml:"build"`
	ContainerName   string                       `yaml:"container_name"`
	Restart         string                       `yaml:"restart"`
	Command         []string                     `yaml:"command"`
	Environment     map[string]string            `yaml:"environment"`
	Ports           []string                     `yaml:"ports"`
	Expose          []string                     `yaml:"expose"`
	Volumes         []string                     `yaml:"volumes"`
	DependsOn       map[string]composeDependency `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck          `yaml:"healthcheck"`
	Deploy          *composeDeploy               `yaml:"deploy"`
	Sysctls         map[string]int               `yaml:"sysctls"`
	StopSignal      string                       `yaml:"stop_signal"`
	StopGracePeriod string                       `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
}

type composeDeploy struct {
	Replicas int `yaml:"replicas"`
}

// The secrets: never a default, never a literal value.
var deploySecretVars = []string{"POSTGRES_PASSWORD", "REDIS_PASSWORD", "AZEN_GATEWAY_SECRET", "AZEN_ENCRYPTION_KEYS"}

// deploySampleEnv is what deploy/gen-env.sh would write, used to render the
// files as `docker compose` would.
var deploySampleEnv = map[string]string{
	"POSTGRES_PASSWORD":    "pgpass0123456789abcdef",
	"REDIS_PASSWORD":       "redispass0123456789abcdef",
	"AZEN_GATEWAY_SECRET":  "0123456789abcdef0123456789abcdef0123456789abcdef",
	"AZEN_ENCRYPTION_KEYS": "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	"AZEN_DOMAIN":          "api.example.com",
}

func deployRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

func deployLoadCompose(t *testing.T, rel string) (*composeFile, string) {
	t.Helper()
	raw := deployRepoFile(t, rel)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s is not the compose file this test knows: %v", rel, err)
	}
	return &c, string(raw)
}

// composeVarRef matches ${NAME}, ${NAME:-default}, ${NAME-default},
// ${NAME:?message}, ${NAME?message}, ${NAME:+alt}; group 1 is the name,
// group 2 the operator, group 3 the rest.
var deployVarRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}`)

// composeVars lists the variables text refers to, with the operators used
// for each. `$$` is Compose's escape for a literal dollar and is skipped.
func deployComposeVars(t *testing.T, name, text string) map[string][]string {
	t.Helper()
	unescaped := strings.ReplaceAll(text, "$$", "")
	if m := regexp.MustCompile(`\$[A-Za-z_]`).FindString(unescaped); m != "" {
		t.Errorf("%s: bare %s...: write variables as ${NAME} so they are easy to find", name, m)
	}
	vars := map[string][]string{}
	for _, m := range deployVarRef.FindAllStringSubmatch(unescaped, -1) {
		vars[m[1]] = append(vars[m[1]], m[2])
	}
	return vars
}

// interpolate renders s with env as Compose does; unset variables without
// a default are an error.
func deployInterpolate(s string, env map[string]string) (string, error) {
	var firstErr error
	out := deployVarRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := deployVarRef.FindStringSubmatch(ref)
		v, set := env[m[1]]
		switch m[2] {
		case ":-":
			if v == "" {
				return m[3]
			}
		case "-":
			if !set {
				return m[3]
			}
		case ":?", "?":
			if !set || (m[2] == ":?" && v == "") {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %s", m[1], m[3])
				}
			}
		case ":+":
			if v != "" {
				return m[3]
			}
			return ""
		case "":
			if !set && firstErr == nil {
				firstErr = fmt.Errorf("%s is used without a default and is not set", m[1])
			}
		}
		return v
	})
	return out, firstErr
}

func deployMustInterpolate(t *testing.T, s string) string {
	t.Helper()
	out, err := deployInterpolate(s, deploySampleEnv)
	if err != nil {
		t.Fatalf("interpolate %q: %v", s, err)
	}
	return out
}

func TestComposeServices(t *testing.T) {
	c, _ := deployLoadCompose(t, "docker-compose.yml")
	for _, name := range []string{"postgres", "redis", "backend", "gateway"} {
		s := c.Services[name]
		if s == nil {
			t.Errorf("service %q is missing", name)
			continue
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			t.Errorf("service %q has no health check", name)
		} else if k := s.Healthcheck.Test[0]; k != "CMD" && k != "CMD-SHELL" {
			t.Errorf("service %q: health check test must start with CMD or CMD-SHELL, not %q", name, k)
		}
		if s.Restart == "" {
			t.Errorf("service %q has no restart policy", name)
		}
		for dep, d := range s.DependsOn {
			if c.Services[dep] == nil {
				t.Errorf("service %q depends on unknown service %q", name, dep)
			} else if d.Condition == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("service %q waits for %q to be healthy, which has no health check", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			if !ok {
				t.Errorf("service %q: volume %q has no target", name, v)
				continue
			}
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(testenv.RepoRoot(t), src)); err != nil {
					t.Errorf("service %q mounts %q, which does not exist", name, src)
				}
			} else if _, declared := c.Volumes[src]; !declared {
				t.Errorf("service %q uses volume %q, not declared under volumes:", name, src)
			}
		}
	}
	for name := range c.Volumes {
		used := false
		for _, s := range c.Services {
			for _, v := range s.Volumes {
				used = used || strings.HasPrefix(v, name+":")
			}
		}
		if !used {
			t.Errorf("volume %q is declared but no service mounts it", name)
		}
	}
	if g := c.Services["gateway"]; g != nil {
		for _, dep := range []string{"postgres", "redis", "backend"} {
			if g.DependsOn[dep].Condition != "service_healthy" {
				t.Errorf("gateway should wait for %s to be healthy", dep)
			}
		}
		if !slices.ContainsFunc(g.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
			t.Error("gateway keeps no volume at /data: certificates would be lost on every re-creation")
		}
	}
	if p := c.Services["postgres"]; p != nil {
		if !slices.ContainsFunc(p.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/var/lib/postgresql/data") }) {
			t.Error("postgres keeps no volume at its data folder")
		}
	}
}

func TestComposeBackendScales(t *testing.T) {
	c, _ := deployLoadCompose(t, "docker-compose.yml")
	b := c.Services["backend"]
	if b == nil {
		t.Fatal("no backend service")
	}
	// `docker compose up --scale backend=N` fails on a fixed container
	// name, and on a fixed host port from the second replica on.
	if b.ContainerName != "" {
		t.Errorf("backend has container_name %q: it could not scale", b.ContainerName)
	}
	if len(b.Ports) > 0 {
		t.Errorf("backend publishes host ports %v: a second replica could not start", b.Ports)
	}
	if b.Deploy == nil || b.Deploy.Replicas < 2 {
		t.Error("backend should run at least two replicas by default (deploy.replicas)")
	}
	if b.StopGracePeriod == "" {
		t.Error("backend has no stop_grace_period: in-flight requests need time to finish on SIGTERM")
	}
	for name, s := range c.Services {
		if s.ContainerName != "" {
			t.Errorf("service %q has container_name: compose names containers itself", name)
		}
	}
	g := c.Services["gateway"]
	if g == nil {
		t.Fatal("no gateway service")
	}
	// The gateway must reach every replica: it resolves the service name.
	if g.Environment["AZEN_BACKENDS_DISCOVERY"] != "dns" {
		t.Errorf("gateway AZEN_BACKENDS_DISCOVERY = %q, want dns (a static list cannot follow --scale)", g.Environment["AZEN_BACKENDS_DISCOVERY"])
	}
	if name := g.Environment["AZEN_BACKENDS_DNS_NAME"]; name != "backend" {
		t.Errorf("gateway AZEN_BACKENDS_DNS_NAME = %q, want the backend service name", name)
	}
}

// deployPort is the port of an address such as 0.0.0.0:8081 or :8080.
func deployPort(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%q is not host:port: %v", addr, err)
	}
	return port
}

func deployURLPort(t *testing.T, raw string) (*url.URL, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%q is not a URL: %v", raw, err)
	}
	return u, u.Port()
}

func TestComposeEnvironmentAndPorts(t *testing.T) {
	c, _ := deployLoadCompose(t, "docker-compose.yml")
	g, b, pg, rd := c.Services["gateway"], c.Services["backend"], c.Services["postgres"], c.Services["redis"]
	if g == nil || b == nil || pg == nil || rd == nil {
		t.Fatal("a service is missing")
	}
	env := func(s *composeService, k string) string {
		t.Helper()
		v, ok := s.Environment[k]
		if !ok {
			t.Errorf("%s is missing from the environment", k)
			return ""
		}
		return deployMustInterpolate(t, v)
	}

	// Contract §2: what each binary reads.
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_REDIS_URL", "AZEN_GATEWAY_SECRET", "AZEN_SITE_ADDRESS"} {
		env(g, k)
	}
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_GATEWAY_SECRET", "AZEN_ENCRYPTION_KEYS", "AZEN_BACKEND_ADDR"} {
		env(b, k)
	}
	if _, ok := g.Environment["AZEN_ENCRYPTION_KEYS"]; ok {
		t.Error("the gateway does not need AZEN_ENCRYPTION_KEYS; keep the memory keys on the backend only")
	}
	// Both binaries must agree on the database and the signing secret.
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_GATEWAY_SECRET"} {
		if g.Environment[k] != b.Environment[k] {
			t.Errorf("%s differs between gateway (%q) and backend (%q)", k, g.Environment[k], b.Environment[k])
		}
	}

	// The database URL points at the postgres service with its credentials.
	db, dbPort := deployURLPort(t, env(g, "AZEN_DATABASE_URL"))
	if db.Scheme != "postgres" && db.Scheme != "postgresql" {
		t.Errorf("AZEN_DATABASE_URL scheme %q, want postgres", db.Scheme)
	}
	if db.Hostname() != "postgres" || dbPort != "5432" {
		t.Errorf("AZEN_DATABASE_URL host %q, want postgres:5432", db.Host)
	}
	if db.User.Username() != pg.Environment["POSTGRES_USER"] || strings.TrimPrefix(db.Path, "/") != pg.Environment["POSTGRES_DB"] {
		t.Errorf("AZEN_DATABASE_URL user/database %q/%q do not match POSTGRES_USER/POSTGRES_DB", db.User.Username(), db.Path)
	}
	if pw, _ := db.User.Password(); pw != deployMustInterpolate(t, pg.Environment["POSTGRES_PASSWORD"]) {
		t.Error("AZEN_DATABASE_URL password is not POSTGRES_PASSWORD")
	}

	// The Redis URL points at the redis service with its password.
	rdb, rdbPort := deployURLPort(t, env(g, "AZEN_REDIS_URL"))
	if rdb.Scheme != "redis" || rdb.Hostname() != "redis" || rdbPort != "6379" {
		t.Errorf("AZEN_REDIS_URL %s://%s, want redis://redis:6379", rdb.Scheme, rdb.Host)
	}
	redisCmd := deployMustInterpolate(t, strings.Join(rd.Command, " "))
	if pw, _ := rdb.User.Password(); !strings.Contains(redisCmd, "--requirepass "+pw) {
		t.Error("AZEN_REDIS_URL password is not the one redis-server requires")
	}

	// The backend listens on all interfaces, on the port the gateway dials,
	// the one its health check probes and the one it exposes.
	backendAddr := env(b, "AZEN_BACKEND_ADDR")
	if host, _, _ := net.SplitHostPort(backendAddr); host != "0.0.0.0" && host != "" {
		t.Errorf("AZEN_BACKEND_ADDR %q: other containers cannot reach a backend that listens on %s", backendAddr, host)
	}
	backendPort := deployPort(t, backendAddr)
	if p := env(g, "AZEN_BACKENDS_DNS_PORT"); p != backendPort {
		t.Errorf("gateway dials backends on port %s, backend listens on %s", p, backendPort)
	}
	if !slices.Contains(b.Expose, backendPort) {
		t.Errorf("backend exposes %v, not its port %s", b.Expose, backendPort)
	}
	if b.Healthcheck != nil {
		hc, hcPort := deployURLPort(t, b.Healthcheck.Test[len(b.Healthcheck.Test)-1])
		if hcPort != backendPort || hc.Path != "/readyz" {
			t.Errorf("backend health check probes %s, want /readyz on port %s", hc, backendPort)
		}
	}

	// The gateway publishes the port its site listens on, and its health
	// check probes the admin port the shipped Caddyfile defaults to.
	sitePort := deployPort(t, env(g, "AZEN_SITE_ADDRESS"))
	published := false
	for _, p := range g.Ports {
		r := deployMustInterpolate(t, p)
		if strings.Count(r, ":") != 1 {
			t.Errorf("gateway port %q: write HOST:CONTAINER", p)
			continue
		}
		_, container, _ := strings.Cut(strings.TrimSuffix(r, "/tcp"), ":")
		published = published || container == sitePort
	}
	if !published {
		t.Errorf("gateway publishes %v, not its site port %s", g.Ports, sitePort)
	}
	if g.Healthcheck != nil {
		hc, hcPort := deployURLPort(t, g.Healthcheck.Test[len(g.Healthcheck.Test)-1])
		if admin := deployAdminDefault(t); hc.Host != admin && "localhost:"+hcPort != admin {
			t.Errorf("gateway health check probes %s, but the admin endpoint defaults to %s", hc.Host, admin)
		}
	}
}

// caddyfileAdminDefault is the default of `admin {$AZEN_ADMIN_ADDR:…}`.
func deployAdminDefault(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*admin \{\$AZEN_ADMIN_ADDR:([^}]+)\}`).FindSubmatch(deployRepoFile(t, "Caddyfile"))
	if m == nil {
		t.Fatal("the Caddyfile has no `admin {$AZEN_ADMIN_ADDR:default}`")
	}
	return string(m[1])
}

func TestComposeSecretsComeFromTheEnvironment(t *testing.T) {
	for _, file := range []string{"docker-compose.yml", "deploy/compose.tls.yml"} {
		t.Run(file, func(t *testing.T) {
			c, raw := deployLoadCompose(t, file)
			vars := deployComposeVars(t, file, raw)
			for _, k := range deploySecretVars {
				for _, op := range vars[k] {
					if op != ":?" {
						t.Errorf("${%s} is used with %q: a secret must be required with ${%s:?message}", k, op, k)
					}
				}
			}
			for name, s := range c.Services {
				for k, v := range s.Environment {
					if slices.Contains(deploySecretVars, k) && !strings.Contains(v, "${") {
						t.Errorf("service %s: %s is a committed literal; take it from .env", name, k)
					}
					for _, secret := range []string{"AZEN_DATABASE_URL", "AZEN_REDIS_URL"} {
						if k == secret && strings.Contains(v, "@") && !strings.Contains(v, "${") {
							t.Errorf("service %s: %s carries a committed password", name, k)
						}
					}
				}
			}
			// Rendering without any variable set must fail on the secrets,
			// which proves there is no fallback value.
			if len(vars) > 0 {
				if _, err := deployInterpolate(raw, map[string]string{}); err == nil && file == "docker-compose.yml" {
					t.Error("the compose file renders with no secrets set")
				}
			}
		})
	}
	// deploy/gen-env.sh writes every variable the main file requires.
	_, raw := deployLoadCompose(t, "docker-compose.yml")
	script := string(deployRepoFile(t, "deploy/gen-env.sh"))
	for k, ops := range deployComposeVars(t, "docker-compose.yml", raw) {
		if slices.Contains(ops, ":?") && !strings.Contains(script, `echo "`+k+"=") {
			t.Errorf("deploy/gen-env.sh does not write %s, which docker-compose.yml requires", k)
		}
	}
	// The build context must not ship secrets or local state.
	ignore := deployDockerignore(t)
	for _, p := range []string{".env", ".dev", ".git", "deploy/prod.env"} {
		if !deployIgnored(ignore, p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
}

func TestComposeTLSOverlay(t *testing.T) {
	c, raw := deployLoadCompose(t, "deploy/compose.tls.yml")
	base, _ := deployLoadCompose(t, "docker-compose.yml")
	for name := range c.Services {
		if base.Services[name] == nil {
			t.Errorf("overlay defines service %q, which the main file lacks", name)
		}
	}
	g := c.Services["gateway"]
	if g == nil {
		t.Fatal("overlay does not touch the gateway")
	}
	if !strings.Contains(g.Environment["AZEN_SITE_ADDRESS"], "${AZEN_DOMAIN:?") {
		t.Errorf("overlay AZEN_SITE_ADDRESS = %q, want the required ${AZEN_DOMAIN:?...}", g.Environment["AZEN_SITE_ADDRESS"])
	}
	exposed := deployDockerfileExpose(t, base.Services["gateway"].Build.Dockerfile)
	for _, want := range []string{"80", "443", "443/udp"} {
		found := false
		for _, p := range g.Ports {
			_, container, _ := strings.Cut(deployMustInterpolate(t, p), ":")
			found = found || strings.TrimSuffix(container, "/tcp") == want
		}
		if !found {
			t.Errorf("overlay does not publish %s (ACME challenges and HTTPS need it)", want)
		}
		if !slices.Contains(exposed, want) {
			t.Errorf("the gateway image does not EXPOSE %s", want)
		}
	}
	if len(deployComposeVars(t, "deploy/compose.tls.yml", raw)) == 0 {
		t.Error("overlay uses no variable")
	}
}

// TestDeployVariablesAreDocumented: every variable the compose files, the
// Dockerfiles and the shipped Caddyfile read is explained in docs/deploy.md.
func TestDeployVariablesAreDocumented(t *testing.T) {
	docs := string(deployRepoFile(t, "docs/deploy.md"))
	documented := func(where, name string) {
		t.Helper()
		if !strings.Contains(docs, "`"+name+"`") {
			t.Errorf("%s uses %s, which docs/deploy.md does not document (as `%s`)", where, name, name)
		}
	}
	for _, file := range []string{"docker-compose.yml", "deploy/compose.tls.yml"} {
		_, raw := deployLoadCompose(t, file)
		for k := range deployComposeVars(t, file, raw) {
			documented(file, k)
		}
		c, _ := deployLoadCompose(t, file)
		for _, s := range c.Services {
			for k := range s.Environment {
				if strings.HasPrefix(k, "AZEN_") {
					documented(file, k)
				}
			}
		}
	}
	var caddyfile strings.Builder // without comments, which show examples
	for _, l := range strings.Split(string(deployRepoFile(t, "Caddyfile")), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			caddyfile.WriteString(l + "\n")
		}
	}
	for _, m := range regexp.MustCompile(`\{\$([A-Z_][A-Z0-9_]*)|\{env\.([A-Z_][A-Z0-9_]*)\}`).FindAllStringSubmatch(caddyfile.String(), -1) {
		documented("Caddyfile", m[1]+m[2])
	}
	for _, df := range []string{"deploy/gateway.Dockerfile", "deploy/backend.Dockerfile"} {
		for _, in := range deployParseDockerfile(t, df) {
			if in.cmd == "ENV" {
				for _, f := range strings.Fields(in.args) {
					if k, _, ok := strings.Cut(f, "="); ok && strings.HasPrefix(k, "AZEN_") {
						documented(df, k)
					}
				}
			}
		}
	}
	// Contract §2 and the two operator variables of the shipped Caddyfile.
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_REDIS_URL", "AZEN_GATEWAY_SECRET", "AZEN_ENCRYPTION_KEYS",
		"AZEN_BACKEND_ADDR", "AZEN_SITE_ADDRESS", "AZEN_BACKENDS", "AZEN_ADMIN_ADDR", "AZEN_TRUSTED_PROXIES"} {
		documented("contract §2", k)
	}
}

// dockerInstruction is one Dockerfile instruction with its continuation
// lines joined.
type dockerInstruction struct {
	line int
	cmd  string // upper case
	args string
}

func deployParseDockerfile(t *testing.T, rel string) []dockerInstruction {
	t.Helper()
	var out []dockerInstruction
	sc := bufio.NewScanner(bytes.NewReader(deployRepoFile(t, rel)))
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comments inside a continued instruction
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s ends inside a continued line", rel)
	}
	return out
}

func deployDockerfileExpose(t *testing.T, rel string) []string {
	t.Helper()
	var ports []string
	for _, in := range deployParseDockerfile(t, rel) {
		if in.cmd == "EXPOSE" {
			ports = append(ports, strings.Fields(in.args)...)
		}
	}
	return ports
}

func deployDockerignore(t *testing.T) []string {
	t.Helper()
	var patterns []string
	for _, l := range strings.Split(string(deployRepoFile(t, ".dockerignore")), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	return patterns
}

// deployIgnored reports whether .dockerignore keeps p out of the build
// context (the subset of its syntax we use: globs and a leading **/).
func deployIgnored(patterns []string, p string) bool {
	for _, pat := range patterns {
		if strings.HasPrefix(pat, "!") {
			continue
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			if m, _ := path.Match(rest, path.Base(p)); m {
				return true
			}
		}
		if strings.HasPrefix(p, pat+"/") {
			return true
		}
	}
	return false
}

// jsonArgs reads an exec-form argument list such as ["a", "b"].
func deployJSONArgs(t *testing.T, df string, in dockerInstruction) []string {
	t.Helper()
	if !strings.HasPrefix(in.args, "[") {
		t.Errorf("%s:%d: %s should use the exec form [\"...\"] (no shell in the image)", df, in.line, in.cmd)
		return nil
	}
	var args []string
	if err := yaml.Unmarshal([]byte(in.args), &args); err != nil {
		t.Errorf("%s:%d: %s %s: %v", df, in.line, in.cmd, in.args, err)
	}
	return args
}

func TestDockerfiles(t *testing.T) {
	c, _ := deployLoadCompose(t, "docker-compose.yml")
	root := testenv.RepoRoot(t)
	ignore := deployDockerignore(t)
	for _, tc := range []struct{ service, binary, pkg string }{
		{"gateway", "azen-gateway", "./gateway"},
		{"backend", "azen-backend", "./backend"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			s := c.Services[tc.service]
			if s == nil || s.Build == nil {
				t.Fatalf("service %s is not built from this repository", tc.service)
			}
			if s.Build.Context != "." {
				t.Errorf("build context %q, want the repository root", s.Build.Context)
			}
			df := path.Join(s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(filepath.Join(root, df)); err != nil {
				t.Fatalf("Dockerfile %s does not exist", df)
			}
			ins := deployParseDockerfile(t, df)

			var froms []dockerInstruction
			for _, in := range ins {
				if in.cmd == "FROM" {
					froms = append(froms, in)
				}
			}
			if len(froms) < 2 {
				t.Fatalf("%s has %d stages, want a build stage and a minimal run stage", df, len(froms))
			}
			final := strings.Fields(froms[len(froms)-1].args)[0]
			if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
				t.Errorf("%s runs on %s, want distroless static or scratch", df, final)
			}
			if !strings.HasPrefix(strings.Fields(froms[0].args)[0], "golang:") {
				t.Errorf("%s builds on %s, want the Go image", df, froms[0].args)
			}

			var finalStage []dockerInstruction
			for i, in := range ins {
				if in.line == froms[len(froms)-1].line {
					finalStage = ins[i+1:]
				}
			}
			// Non-root: the last USER of the final stage.
			user := ""
			for _, in := range finalStage {
				if in.cmd == "USER" {
					user = in.args
				}
			}
			if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
				t.Errorf("%s: the image runs as %q, want a non-root USER", df, user)
			}

			// Static, reproducible builds of the right package.
			built := false
			for _, in := range ins {
				if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
					for _, cmd := range strings.Split(in.args, "&&") {
						if !strings.Contains(cmd, "go build") {
							continue
						}
						if !strings.Contains(cmd, "CGO_ENABLED=0") || !strings.Contains(cmd, "-trimpath") {
							t.Errorf("%s:%d: %q lacks CGO_ENABLED=0 or -trimpath", df, in.line, strings.TrimSpace(cmd))
						}
						f := strings.Fields(cmd)
						pkg := f[len(f)-1]
						if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
							t.Errorf("%s:%d builds %s, which does not exist", df, in.line, pkg)
						}
						built = built || pkg == tc.pkg
					}
				}
			}
			if !built {
				t.Errorf("%s never builds %s", df, tc.pkg)
			}

			// Every COPY from the build context exists and is not ignored.
			copied := map[string]bool{} // destinations in the final stage
			for _, in := range ins {
				if in.cmd != "COPY" && in.cmd != "ADD" {
					continue
				}
				f := strings.Fields(in.args)
				var srcs []string
				fromStage := false
				for _, a := range f[:len(f)-1] {
					if strings.HasPrefix(a, "--from=") {
						fromStage = true
					}
					if !strings.HasPrefix(a, "--") {
						srcs = append(srcs, a)
					}
				}
				dest := f[len(f)-1]
				for _, src := range srcs {
					if strings.HasSuffix(dest, "/") {
						copied[dest+path.Base(src)] = true
					} else {
						copied[dest] = true
					}
					if fromStage {
						continue
					}
					if _, err := os.Stat(filepath.Join(root, s.Build.Context, src)); err != nil {
						t.Errorf("%s:%d copies %s, which does not exist", df, in.line, src)
					}
					if src != "." && deployIgnored(ignore, src) {
						t.Errorf("%s:%d copies %s, which .dockerignore excludes", df, in.line, src)
					}
				}
			}

			// ENTRYPOINT runs our binary, copied into the image.
			var entry, cmd []string
			for _, in := range finalStage {
				switch in.cmd {
				case "ENTRYPOINT":
					entry = deployJSONArgs(t, df, in)
				case "CMD":
					cmd = deployJSONArgs(t, df, in)
				case "HEALTHCHECK":
					args := in.args[strings.Index(in.args, "CMD ")+4:]
					hc := deployJSONArgs(t, df, dockerInstruction{line: in.line, cmd: "HEALTHCHECK CMD", args: args})
					if len(hc) > 0 && !copied[hc[0]] {
						t.Errorf("%s: HEALTHCHECK runs %s, which the image does not contain", df, hc[0])
					}
				}
			}
			if len(entry) == 0 || path.Base(entry[0]) != tc.binary || !copied[entry[0]] {
				t.Errorf("%s: ENTRYPOINT %v, want the copied %s", df, entry, tc.binary)
			}
			// The compose health check runs a program the image contains.
			if s.Healthcheck != nil && s.Healthcheck.Test[0] == "CMD" && !copied[s.Healthcheck.Test[1]] {
				t.Errorf("compose health check of %s runs %s, which the image does not contain", tc.service, s.Healthcheck.Test[1])
			}
			if tc.service == "gateway" {
				// The shipped Caddyfile is in the image and is what runs.
				cfg := ""
				for i, a := range cmd {
					if a == "--config" && i+1 < len(cmd) {
						cfg = cmd[i+1]
					}
				}
				if cfg == "" || !copied[cfg] {
					t.Errorf("%s: CMD %v does not run a Caddyfile copied into the image", df, cmd)
				}
				caddyCopied := false
				for _, in := range ins {
					if in.cmd == "COPY" && strings.Fields(in.args)[0] == "Caddyfile" && strings.Fields(in.args)[1] == cfg {
						caddyCopied = true
					}
				}
				if !caddyCopied {
					t.Errorf("%s: the shipped Caddyfile is not copied to %s", df, cfg)
				}
				// Caddy's data folder (certificates) is the compose volume.
				data := ""
				for _, in := range finalStage {
					if in.cmd == "ENV" {
						if m := regexp.MustCompile(`XDG_DATA_HOME=(\S+)`).FindStringSubmatch(in.args); m != nil {
							data = m[1]
						}
					}
				}
				if data == "" || !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+data) }) {
					t.Errorf("XDG_DATA_HOME %q is not a compose volume of the gateway", data)
				}
			}
		})
	}
}

// TestDeployHealthcheckProgramIsBuilt: the compose file's probes name the
// program the images build from deploy/healthcheck.
func TestDeployHealthcheckProgramIsBuilt(t *testing.T) {
	if _, err := os.Stat(filepath.Join(testenv.RepoRoot(t), "deploy", "healthcheck", "main.go")); err != nil {
		t.Fatal("deploy/healthcheck is missing; the distroless images have no curl")
	}
}
