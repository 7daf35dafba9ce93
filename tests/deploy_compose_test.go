package tests

// No Docker engine runs where these tests run, so they read the deployment
// files with the parsers Docker's own tools use (compose-go, which `docker
// compose` is built on; BuildKit's Dockerfile parser; moby's .dockerignore
// matcher) and check what a broken deployment would otherwise only show
// at `up` time: services and their health checks, scalability of the
// backend, every file, variable and port the files refer to, and the shape
// of the Dockerfiles.

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"gopkg.in/yaml.v3"

	"github.com/azen-sh/gateway/internal/testenv"
)

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

// The files `docker compose` reads by default, and with the TLS overlay.
var (
	composeMain = []string{"docker-compose.yml"}
	composeTLS  = []string{"docker-compose.yml", "deploy/compose.tls.yml"}
)

func deployRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// loadCompose loads files as `docker compose -f … config` would, with env
// as the environment: schema validation (an unknown key such as a misspelt
// `healtcheck` fails), interpolation, merging and consistency checks.
func loadCompose(files []string, env map[string]string) (*types.Project, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	details := types.ConfigDetails{WorkingDir: root, Environment: env}
	for _, f := range files {
		details.ConfigFiles = append(details.ConfigFiles, types.ConfigFile{Filename: filepath.Join(root, filepath.FromSlash(f))})
	}
	return loader.LoadWithContext(context.Background(), details)
}

func mustLoadCompose(t *testing.T, files []string) *types.Project {
	t.Helper()
	p, err := loadCompose(files, deploySampleEnv)
	if err != nil {
		t.Fatalf("docker compose would refuse %v: %v", files, err)
	}
	return p
}

// composeVarUses lists every ${…} use in a compose file, one per
// occurrence, as Compose's own template grammar reads them.
func composeVarUses(t *testing.T, rel string) []template.Variable {
	t.Helper()
	var dict map[string]any
	if err := yaml.Unmarshal(deployRepoFile(t, rel), &dict); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	var uses []template.Variable
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(k)
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case string:
			for _, u := range template.ExtractVariables(map[string]any{"v": v}, template.DefaultPattern) {
				uses = append(uses, u)
			}
		}
	}
	walk(dict)
	return uses
}

func env(t *testing.T, s types.ServiceConfig, k string) string {
	t.Helper()
	v, ok := s.Environment[k]
	if !ok || v == nil {
		t.Errorf("service %s: %s is missing from the environment", s.Name, k)
		return ""
	}
	return *v
}

func TestComposeServices(t *testing.T) {
	p := mustLoadCompose(t, composeMain)
	for _, name := range []string{"postgres", "redis", "backend", "gateway"} {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("service %q is missing", name)
			continue
		}
		if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 {
			t.Errorf("service %q has no health check", name)
		} else if k := s.HealthCheck.Test[0]; k != "CMD" && k != "CMD-SHELL" {
			t.Errorf("service %q: health check test must start with CMD or CMD-SHELL, not %q", name, k)
		}
		if s.Restart == "" {
			t.Errorf("service %q has no restart policy", name)
		}
		for dep, d := range s.DependsOn {
			if ds, ok := p.Services[dep]; !ok {
				t.Errorf("service %q depends on unknown service %q", name, dep)
			} else if d.Condition == types.ServiceConditionHealthy && ds.HealthCheck == nil {
				t.Errorf("service %q waits for %q to be healthy, which has no health check", name, dep)
			}
		}
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %q mounts %s, which does not exist", name, v.Source)
				}
			case types.VolumeTypeVolume:
				if _, declared := p.Volumes[v.Source]; !declared {
					t.Errorf("service %q uses volume %q, not declared under volumes:", name, v.Source)
				}
			}
		}
	}
	for name := range p.Volumes {
		used := false
		for _, s := range p.Services {
			used = used || slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Source == name })
		}
		if !used {
			t.Errorf("volume %q is declared but no service mounts it", name)
		}
	}
	mounts := func(s types.ServiceConfig, target string) bool {
		return slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == target })
	}
	g := p.Services["gateway"]
	for _, dep := range []string{"postgres", "redis", "backend"} {
		if g.DependsOn[dep].Condition != types.ServiceConditionHealthy {
			t.Errorf("gateway should wait for %s to be healthy", dep)
		}
	}
	if !mounts(g, "/data") {
		t.Error("gateway keeps no volume at /data: certificates would be lost on every re-creation")
	}
	if !mounts(p.Services["postgres"], "/var/lib/postgresql/data") {
		t.Error("postgres keeps no volume at its data folder")
	}
}

// TestComposeMountsTheCaddyfileForReloads: the gateway runs the
// repository's Caddyfile, mounted read-only where the image's CMD reads
// it, so an edit is applied with the reload command docs/deploy.md gives.
func TestComposeMountsTheCaddyfileForReloads(t *testing.T) {
	p := mustLoadCompose(t, composeMain)
	g := p.Services["gateway"]
	config := ""
	for _, in := range parseDockerfile(t, "deploy/gateway.Dockerfile") {
		if in.cmd == "CMD" {
			if i := slices.Index(in.args, "--config"); i >= 0 && i+1 < len(in.args) {
				config = in.args[i+1]
			}
		}
	}
	if config == "" {
		t.Fatal("the gateway image's CMD names no --config")
	}
	i := slices.IndexFunc(g.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == config })
	if i < 0 {
		t.Fatalf("the gateway does not mount a Caddyfile at %s (its CMD's config)", config)
	}
	v := g.Volumes[i]
	if v.Type != types.VolumeTypeBind || v.Source != filepath.Join(testenv.RepoRoot(t), "Caddyfile") || !v.ReadOnly {
		t.Errorf("mount at %s: %+v, want the repository's Caddyfile, read-only", config, v)
	}
	reload := "docker compose exec gateway azen-gateway reload --config " + config + " --adapter caddyfile"
	for _, doc := range []string{"docs/deploy.md", "README.md"} {
		if !strings.Contains(string(deployRepoFile(t, doc)), reload) {
			t.Errorf("%s does not give the reload command `%s`", doc, reload)
		}
	}
}

func TestComposeBackendScales(t *testing.T) {
	p := mustLoadCompose(t, composeMain)
	b := p.Services["backend"]
	// `docker compose up --scale backend=N` fails on a fixed container
	// name, and on a fixed host port from the second replica on.
	if len(b.Ports) > 0 {
		t.Errorf("backend publishes host ports %v: a second replica could not start", b.Ports)
	}
	if b.Deploy == nil || b.Deploy.Replicas == nil || *b.Deploy.Replicas < 2 {
		t.Error("backend should run at least two replicas by default (deploy.replicas)")
	}
	if b.StopGracePeriod == nil || *b.StopGracePeriod == 0 {
		t.Error("backend has no stop_grace_period: in-flight requests need time to finish on SIGTERM")
	}
	for name, s := range p.Services {
		if s.ContainerName != "" {
			t.Errorf("service %q has container_name: compose names containers itself (and the backend could not scale)", name)
		}
	}
	// The gateway must reach every replica: it resolves the service name.
	g := p.Services["gateway"]
	if d := env(t, g, "AZEN_BACKENDS_DISCOVERY"); d != "dns" {
		t.Errorf("gateway AZEN_BACKENDS_DISCOVERY = %q, want dns (a static list cannot follow --scale)", d)
	}
	if name := env(t, g, "AZEN_BACKENDS_DNS_NAME"); name != "backend" {
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

func deployURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%q is not a URL: %v", raw, err)
	}
	return u
}

func TestComposeEnvironmentAndPorts(t *testing.T) {
	p := mustLoadCompose(t, composeMain)
	g, b, pg, rd := p.Services["gateway"], p.Services["backend"], p.Services["postgres"], p.Services["redis"]

	// Contract §2: what each binary reads.
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_REDIS_URL", "AZEN_GATEWAY_SECRET", "AZEN_SITE_ADDRESS"} {
		env(t, g, k)
	}
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_GATEWAY_SECRET", "AZEN_ENCRYPTION_KEYS", "AZEN_BACKEND_ADDR"} {
		env(t, b, k)
	}
	if _, ok := g.Environment["AZEN_ENCRYPTION_KEYS"]; ok {
		t.Error("the gateway does not need AZEN_ENCRYPTION_KEYS; keep the memory keys on the backend only")
	}
	// Both binaries must agree on the database and the signing secret.
	for _, k := range []string{"AZEN_DATABASE_URL", "AZEN_GATEWAY_SECRET"} {
		if env(t, g, k) != env(t, b, k) {
			t.Errorf("%s differs between gateway and backend", k)
		}
	}

	// The database URL points at the postgres service with its credentials.
	db := deployURL(t, env(t, g, "AZEN_DATABASE_URL"))
	if db.Scheme != "postgres" && db.Scheme != "postgresql" {
		t.Errorf("AZEN_DATABASE_URL scheme %q, want postgres", db.Scheme)
	}
	if db.Hostname() != "postgres" || db.Port() != "5432" {
		t.Errorf("AZEN_DATABASE_URL host %q, want postgres:5432", db.Host)
	}
	if db.User.Username() != env(t, pg, "POSTGRES_USER") || strings.TrimPrefix(db.Path, "/") != env(t, pg, "POSTGRES_DB") {
		t.Errorf("AZEN_DATABASE_URL user/database %q/%q do not match POSTGRES_USER/POSTGRES_DB", db.User.Username(), db.Path)
	}
	if pw, _ := db.User.Password(); pw != env(t, pg, "POSTGRES_PASSWORD") {
		t.Error("AZEN_DATABASE_URL password is not POSTGRES_PASSWORD")
	}

	// The Redis URL points at the redis service with its password.
	rdb := deployURL(t, env(t, g, "AZEN_REDIS_URL"))
	if rdb.Scheme != "redis" || rdb.Hostname() != "redis" || rdb.Port() != "6379" {
		t.Errorf("AZEN_REDIS_URL %s://%s, want redis://redis:6379", rdb.Scheme, rdb.Host)
	}
	pw, _ := rdb.User.Password()
	if i := slices.Index(rd.Command, "--requirepass"); i < 0 || i+1 >= len(rd.Command) || rd.Command[i+1] != pw {
		t.Errorf("AZEN_REDIS_URL password is not the one redis-server requires (%q)", rd.Command)
	}

	// The backend listens on all interfaces, on the port the gateway dials,
	// the one its health check probes and the one it exposes.
	backendAddr := env(t, b, "AZEN_BACKEND_ADDR")
	if host, _, _ := net.SplitHostPort(backendAddr); host != "0.0.0.0" && host != "" {
		t.Errorf("AZEN_BACKEND_ADDR %q: other containers cannot reach a backend that listens on %s", backendAddr, host)
	}
	backendPort := deployPort(t, backendAddr)
	if p := env(t, g, "AZEN_BACKENDS_DNS_PORT"); p != backendPort {
		t.Errorf("gateway dials backends on port %s, backend listens on %s", p, backendPort)
	}
	if !slices.Contains(b.Expose, backendPort) {
		t.Errorf("backend exposes %v, not its port %s", b.Expose, backendPort)
	}
	if b.HealthCheck != nil {
		hc := deployURL(t, b.HealthCheck.Test[len(b.HealthCheck.Test)-1])
		if hc.Port() != backendPort || hc.Path != "/readyz" {
			t.Errorf("backend health check probes %s, want /readyz on port %s", hc, backendPort)
		}
	}

	// The gateway publishes the port its site listens on, and its health
	// check probes the admin port the shipped Caddyfile defaults to.
	sitePort := deployPort(t, env(t, g, "AZEN_SITE_ADDRESS"))
	if !slices.ContainsFunc(g.Ports, func(pc types.ServicePortConfig) bool { return strconv.Itoa(int(pc.Target)) == sitePort }) {
		t.Errorf("gateway publishes %v, not its site port %s", g.Ports, sitePort)
	}
	if g.HealthCheck != nil {
		hc := deployURL(t, g.HealthCheck.Test[len(g.HealthCheck.Test)-1])
		if admin := deployAdminDefault(t); hc.Host != admin && "localhost:"+hc.Port() != admin {
			t.Errorf("gateway health check probes %s, but the admin endpoint defaults to %s", hc.Host, admin)
		}
	}
}

// deployAdminDefault is the default of `admin {$AZEN_ADMIN_ADDR:…}`.
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
		for _, u := range composeVarUses(t, file) {
			if slices.Contains(deploySecretVars, u.Name) && (!u.Required || u.DefaultValue != "") {
				t.Errorf("%s: ${%s} is used without :? or with a default: a secret must be required with ${%s:?message}", file, u.Name, u.Name)
			}
		}
	}
	// Each secret unset: compose refuses, naming it (there is no fallback).
	for _, k := range deploySecretVars {
		env := map[string]string{}
		for name, v := range deploySampleEnv {
			if name != k {
				env[name] = v
			}
		}
		if _, err := loadCompose(composeMain, env); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("docker-compose.yml loads without %s: %v", k, err)
		}
	}
	raw, err := loadCompose(composeMain, deploySampleEnv)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range raw.Services {
		for k, v := range s.Environment {
			for _, secret := range deploySecretVars {
				if v != nil && k == secret && *v != deploySampleEnv[secret] {
					t.Errorf("service %s: %s is not the value from .env", name, k)
				}
			}
		}
	}
	// deploy/gen-env.sh writes every variable the main file requires.
	script := string(deployRepoFile(t, "deploy/gen-env.sh"))
	for _, u := range composeVarUses(t, "docker-compose.yml") {
		if u.Required && !strings.Contains(script, `echo "`+u.Name+"=") {
			t.Errorf("deploy/gen-env.sh does not write %s, which docker-compose.yml requires", u.Name)
		}
	}
	// The build context must not ship secrets or local state.
	ignore := dockerignore(t)
	for _, p := range []string{".env", ".dev", ".git", "deploy/prod.env", "bin/azen-gateway", ".dev/azen.db"} {
		if ignored, err := ignore.MatchesOrParentMatches(p); err != nil || !ignored {
			t.Errorf(".dockerignore does not exclude %s (%v)", p, err)
		}
	}
}

func TestComposeTLSOverlay(t *testing.T) {
	var overlay struct {
		Services map[string]any `yaml:"services"`
	}
	if err := yaml.Unmarshal(deployRepoFile(t, "deploy/compose.tls.yml"), &overlay); err != nil {
		t.Fatal(err)
	}
	base := mustLoadCompose(t, composeMain)
	for name := range overlay.Services {
		if _, ok := base.Services[name]; !ok {
			t.Errorf("overlay defines service %q, which the main file lacks", name)
		}
	}
	if _, err := loadCompose(composeTLS, map[string]string{"POSTGRES_PASSWORD": "a", "REDIS_PASSWORD": "b", "AZEN_GATEWAY_SECRET": "c", "AZEN_ENCRYPTION_KEYS": "d"}); err == nil || !strings.Contains(err.Error(), "AZEN_DOMAIN") {
		t.Errorf("the overlay loads without AZEN_DOMAIN: %v", err)
	}
	g := mustLoadCompose(t, composeTLS).Services["gateway"]
	if site := env(t, g, "AZEN_SITE_ADDRESS"); site != deploySampleEnv["AZEN_DOMAIN"] {
		t.Errorf("with the overlay AZEN_SITE_ADDRESS = %q, want AZEN_DOMAIN", site)
	}
	exposed := dockerfileExpose(t, "deploy/gateway.Dockerfile")
	for _, want := range []string{"80", "443", "443/udp"} {
		port, proto, _ := strings.Cut(want, "/")
		if proto == "" {
			proto = "tcp"
		}
		if !slices.ContainsFunc(g.Ports, func(pc types.ServicePortConfig) bool {
			return strconv.Itoa(int(pc.Target)) == port && pc.Protocol == proto
		}) {
			t.Errorf("the overlay does not publish %s (ACME challenges and HTTPS need it): %v", want, g.Ports)
		}
		if !slices.Contains(exposed, want) {
			t.Errorf("the gateway image does not EXPOSE %s", want)
		}
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
		for _, u := range composeVarUses(t, file) {
			documented(file, u.Name)
		}
	}
	for _, s := range mustLoadCompose(t, composeTLS).Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "AZEN_") {
				documented("docker-compose.yml", k)
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
		for _, in := range parseDockerfile(t, df) {
			if in.cmd == "ENV" || in.cmd == "ARG" {
				for _, k := range in.keys() {
					if strings.HasPrefix(k, "AZEN_") {
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

// dockerInstruction is one Dockerfile instruction as BuildKit parses it.
type dockerInstruction struct {
	line  int
	cmd   string   // upper case
	args  []string // exec-form arguments, or the shell-form text as one
	flags []string // --from=build, --chown=…
	json  bool     // exec form ["…"]
}

// keys are the names an ENV or ARG instruction sets.
func (in dockerInstruction) keys() []string {
	var out []string
	if in.cmd == "ENV" { // name, value, "=" triples
		for i := 0; i < len(in.args); i += 3 {
			out = append(out, in.args[i])
		}
		return out
	}
	for _, a := range in.args {
		k, _, _ := strings.Cut(a, "=")
		out = append(out, k)
	}
	return out
}

// flag is the value of --name=… on the instruction, or "".
func (in dockerInstruction) flag(name string) string {
	for _, f := range in.flags {
		if v, ok := strings.CutPrefix(f, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

func parseDockerfile(t *testing.T, rel string) []dockerInstruction {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("docker build would refuse %s: %v", rel, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s:%d: %s", rel, w.Location.Start.Line, w.Short)
	}
	var out []dockerInstruction
	for _, n := range res.AST.Children {
		in := dockerInstruction{line: n.StartLine, cmd: strings.ToUpper(n.Value), flags: n.Flags, json: n.Attributes["json"]}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		out = append(out, in)
	}
	return out
}

func dockerfileExpose(t *testing.T, rel string) []string {
	t.Helper()
	var ports []string
	for _, in := range parseDockerfile(t, rel) {
		if in.cmd == "EXPOSE" {
			ports = append(ports, in.args...)
		}
	}
	return ports
}

func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func TestDockerfiles(t *testing.T) {
	p := mustLoadCompose(t, composeMain)
	root := testenv.RepoRoot(t)
	ignore := dockerignore(t)
	for _, tc := range []struct{ service, binary, pkg string }{
		{"gateway", "azen-gateway", "./gateway"},
		{"backend", "azen-backend", "./backend"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			s := p.Services[tc.service]
			if s.Build == nil {
				t.Fatalf("service %s is not built from this repository", tc.service)
			}
			if s.Build.Context != root {
				t.Errorf("build context %q, want the repository root", s.Build.Context)
			}
			df, err := filepath.Rel(root, filepath.Join(s.Build.Context, s.Build.Dockerfile))
			if err != nil {
				t.Fatal(err)
			}
			ins := parseDockerfile(t, df)

			var stages []int // index of each FROM
			for i, in := range ins {
				if in.cmd == "FROM" {
					stages = append(stages, i)
				}
			}
			if len(stages) < 2 {
				t.Fatalf("%s has %d stages, want a build stage and a minimal run stage", df, len(stages))
			}
			finalStage := ins[stages[len(stages)-1]+1:]
			copied := map[string]bool{} // destinations of COPY and ADD
			for _, in := range ins {
				if in.cmd != "COPY" && in.cmd != "ADD" {
					continue
				}
				srcs, dest := in.args[:len(in.args)-1], in.args[len(in.args)-1]
				for _, src := range srcs {
					if strings.HasSuffix(dest, "/") {
						copied[dest+filepath.Base(src)] = true
					} else {
						copied[dest] = true
					}
				}
			}

			t.Run("it builds on the Go image and runs on distroless static or scratch", func(t *testing.T) {
				final := ins[stages[len(stages)-1]].args[0]
				if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
					t.Errorf("%s runs on %s, want distroless static or scratch", df, final)
				}
				if !strings.HasPrefix(ins[stages[0]].args[0], "golang:") {
					t.Errorf("%s builds on %s, want the Go image", df, ins[stages[0]].args[0])
				}
			})
			t.Run("the image runs as a non-root user", func(t *testing.T) {
				user := "" // the last USER of the final stage
				for _, in := range finalStage {
					if in.cmd == "USER" {
						user = in.args[0]
					}
				}
				if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
					t.Errorf("%s: the image runs as %q, want a non-root USER", df, user)
				}
			})
			t.Run("go build is static and reproducible, of the right package", func(t *testing.T) {
				built := false
				for _, in := range ins {
					if in.cmd != "RUN" || in.json || !strings.Contains(in.args[0], "go build") {
						continue
					}
					for _, cmd := range strings.Split(in.args[0], "&&") {
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
				if !built {
					t.Errorf("%s never builds %s", df, tc.pkg)
				}
			})
			t.Run("every COPY from the build context exists and is not ignored", func(t *testing.T) {
				for _, in := range ins {
					if (in.cmd != "COPY" && in.cmd != "ADD") || in.flag("from") != "" {
						continue
					}
					for _, src := range in.args[:len(in.args)-1] {
						if _, err := os.Stat(filepath.Join(s.Build.Context, src)); err != nil {
							t.Errorf("%s:%d copies %s, which does not exist", df, in.line, src)
						}
						if ignored, _ := ignore.MatchesOrParentMatches(src); src != "." && ignored {
							t.Errorf("%s:%d copies %s, which .dockerignore excludes", df, in.line, src)
						}
					}
				}
			})
			var entry, cmd []string
			for _, in := range finalStage {
				switch in.cmd {
				case "ENTRYPOINT":
					entry = in.args
				case "CMD":
					cmd = in.args
				}
			}
			t.Run("ENTRYPOINT runs the copied binary, in exec forms only", func(t *testing.T) {
				for _, in := range finalStage {
					switch in.cmd {
					case "ENTRYPOINT", "CMD", "HEALTHCHECK":
						if !in.json {
							t.Errorf("%s:%d: %s should use the exec form [\"...\"] (no shell in the image)", df, in.line, in.cmd)
						}
					}
					if in.cmd == "HEALTHCHECK" && (len(in.args) < 2 || in.args[0] != "CMD" || !copied[in.args[1]]) {
						t.Errorf("%s: HEALTHCHECK %v runs a program the image does not contain", df, in.args)
					}
				}
				if len(entry) == 0 || filepath.Base(entry[0]) != tc.binary || !copied[entry[0]] {
					t.Errorf("%s: ENTRYPOINT %v, want the copied %s", df, entry, tc.binary)
				}
			})
			t.Run("the compose health check runs a program the image contains", func(t *testing.T) {
				if s.HealthCheck != nil && s.HealthCheck.Test[0] == "CMD" && !copied[s.HealthCheck.Test[1]] {
					t.Errorf("compose health check of %s runs %s, which the image does not contain", tc.service, s.HealthCheck.Test[1])
				}
			})
			if tc.service != "gateway" {
				return
			}
			t.Run("the shipped Caddyfile is in the image and is what runs", func(t *testing.T) {
				cfg := ""
				if i := slices.Index(cmd, "--config"); i >= 0 && i+1 < len(cmd) {
					cfg = cmd[i+1]
				}
				if !slices.ContainsFunc(ins, func(in dockerInstruction) bool {
					return in.cmd == "COPY" && len(in.args) == 2 && in.args[0] == "Caddyfile" && in.args[1] == cfg
				}) {
					t.Errorf("%s: CMD %v does not run the shipped Caddyfile copied into the image", df, cmd)
				}
			})
			t.Run("Caddy's data folder (certificates) is a compose volume", func(t *testing.T) {
				data := ""
				for _, in := range finalStage {
					if in.cmd == "ENV" {
						for i := 0; i+1 < len(in.args); i += 3 {
							if in.args[i] == "XDG_DATA_HOME" {
								data = in.args[i+1]
							}
						}
					}
				}
				if data == "" || !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == data }) {
					t.Errorf("XDG_DATA_HOME %q is not a compose volume of the gateway", data)
				}
			})
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

// TestComposeLoaderCatchesTypos: the parser refuses what docker compose
// would, so the checks above stand on the real grammar.
func TestComposeLoaderCatchesTypos(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"misspelt key":     "services:\n  a:\n    image: x\n    healtcheck:\n      test: [\"CMD\", \"true\"]\n",
		"required missing": "services:\n  a:\n    image: x\n    environment:\n      S: ${NOT_SET_ANYWHERE:?set it}\n",
	} {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yml")
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{WorkingDir: dir, ConfigFiles: []types.ConfigFile{{Filename: f}}, Environment: map[string]string{}},
			func(o *loader.Options) { o.SetProjectName("typo", true) })
		if err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
