package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
)

// provisioningCommands load a config in this process, so the environment
// they run in is the one the modules will read. (reload sends the config
// to a running gateway, whose own environment fills {env.*}; adapt only
// adapts unless --validate.)
var provisioningCommands = []string{"run", "start", "validate"}

// checkEnvironment checks the AZEN_* variables that the config file of a
// run, start or validate names ({env.NAME} or {$NAME}), with the same rules
// the modules apply, before Caddy starts: Caddy would report a bad one at
// the end of a long provisioning chain ("loading initial config: … provision
// http.handlers.azen_auth: azen_auth: secret must be …"), without the
// variable's name. Variables the config does not name are not checked. It
// steps aside (nil) when it cannot see what Caddy will load: --envfile or
// --resume, no readable config file.
func checkEnvironment(args []string, getenv func(string) string) error {
	if len(args) == 0 || !slices.Contains(provisioningCommands, args[0]) {
		return nil
	}
	config := ""
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--envfile" || strings.HasPrefix(a, "--envfile=") || a == "--resume" || strings.HasPrefix(a, "--resume="):
			return nil
		case (a == "--config" || a == "-c") && i+1 < len(args):
			config = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			config = strings.TrimPrefix(a, "--config=")
		}
	}
	if config == "" {
		config = "Caddyfile" // Caddy's default in the working directory
	}
	text, err := os.ReadFile(config)
	if err != nil {
		return nil // Caddy says what is wrong with the file
	}
	return checkNamedVariables(string(text), getenv)
}

// placeholderName finds {env.AZEN_X} and {$AZEN_X…} in a config.
var placeholderName = regexp.MustCompile(`\{(?:env\.|\$)(AZEN_[A-Z0-9_]+)`)

// variableRules are the AZEN_* values whose rule a module applies at
// provision time, each with that module's check.
var variableRules = []struct {
	name  string
	check func(value, config string) error
}{
	{"AZEN_GATEWAY_SECRET", func(v, _ string) error {
		if v == "" {
			return fmt.Errorf("is required: at least %d bytes, the same on every gateway and backend (validate needs it too; any %d bytes do to check a file)", contract.MinSecretLen, contract.MinSecretLen)
		}
		_, err := contract.NewSigner(v)
		return err
	}},
	{"AZEN_DATABASE_URL", func(v, _ string) error {
		if strings.TrimSpace(v) == "" {
			return nil // the embedded default
		}
		_, err := sqldb.Parse(v)
		return err
	}},
	{"AZEN_REDIS_URL", func(v, _ string) error {
		if strings.TrimSpace(v) == "" {
			return nil // no Redis
		}
		_, err := redisconn.Parse(v)
		return err
	}},
	{"AZEN_BACKENDS_DISCOVERY", checkDiscovery},
}

// checkNamedVariables applies variableRules to the variables config names,
// ignoring comment lines.
func checkNamedVariables(config string, getenv func(string) string) error {
	named := map[string]bool{}
	for _, line := range strings.Split(config, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range placeholderName.FindAllStringSubmatch(line, -1) {
			named[m[1]] = true
		}
	}
	var errs []error
	for _, r := range variableRules {
		if !named[r.name] {
			continue
		}
		if err := r.check(getenv(r.name), config); err != nil {
			errs = append(errs, fmt.Errorf("%s %v", r.name, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w (see docs/deploy.md#variables)", joinOneLine(errs))
}

// snippetImport is the shipped Caddyfile's choice of upstream snippet:
// `import backends_{$AZEN_BACKENDS_DISCOVERY:static}`.
var (
	snippetImport = regexp.MustCompile(`import\s+(\w+)\{\$AZEN_BACKENDS_DISCOVERY(?::(\w*))?\}`)
	snippetDef    = regexp.MustCompile(`(?m)^\s*\((\w+)\)\s*\{`)
)

// checkDiscovery: when the config imports a snippet named after
// AZEN_BACKENDS_DISCOVERY, the value must name one of its snippets (Caddy
// would say "File to import not found: backends_foo").
func checkDiscovery(v, config string) error {
	m := snippetImport.FindStringSubmatch(config)
	if m == nil {
		return nil
	}
	prefix, value := m[1], v
	if value == "" {
		value = m[2]
	}
	var modes []string
	for _, d := range snippetDef.FindAllStringSubmatch(config, -1) {
		if mode, ok := strings.CutPrefix(d[1], prefix); ok {
			modes = append(modes, mode)
			if mode == value {
				return nil
			}
		}
	}
	return fmt.Errorf("must be one of %s, got %q", strings.Join(modes, ", "), v)
}

// joinOneLine joins errors with "; " (errors.Join would use new lines).
func joinOneLine(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}
