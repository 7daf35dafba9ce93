package tests

import (
	"path/filepath"
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// edgeStack is the shipped Caddyfile in front of one real azen-backend,
// both on one SQLite file: the smallest real deployment, for the edge
// hardening tests.
type edgeStack struct {
	env     map[string]string // shared by both processes and the keys CLI
	backend *testenv.Backend
	gateway *testenv.Gateway
	key     testenv.CreatedKey
}

// startEdgeStack starts it; gatewayEnv adds to or overrides the gateway's
// environment (AZEN_TRUSTED_PROXIES, AZEN_CORS_ORIGINS, …), in pairs.
func startEdgeStack(t *testing.T, gatewayEnv ...string) *edgeStack {
	t.Helper()
	s := &edgeStack{env: map[string]string{
		"AZEN_DATABASE_URL":    "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_GATEWAY_SECRET":  testenv.GatewaySecret(),
		"AZEN_ENCRYPTION_KEYS": testenv.EncryptionKeys("k1"),
	}}
	s.backend = testenv.StartBackend(t, s.env)
	s.key = testenv.CreateKeyFull(t, s.env, "--rate", "100000/m", "--burst", "100000")
	s.gateway = s.startGateway(t, gatewayEnv...)
	return s
}

// startGateway starts one more gateway on the shipped Caddyfile in front of
// the stack's backend, with gatewayEnv (in pairs) added.
func (s *edgeStack) startGateway(t *testing.T, gatewayEnv ...string) *testenv.Gateway {
	t.Helper()
	caddyfile := shippedCaddyfile(t)
	gwEnv := map[string]string{"AZEN_BACKENDS": s.backend.Addr}
	for k, v := range s.env {
		gwEnv[k] = v
	}
	for i := 0; i+1 < len(gatewayEnv); i += 2 {
		gwEnv[gatewayEnv[i]] = gatewayEnv[i+1]
	}
	return testenv.StartGateway(t, caddyfile, gwEnv)
}
