package tests

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

// TestAuthRevocationOverRedisCluster: AZEN_REDIS_URL naming a Redis Cluster
// carries invalidations too (PUBLISH is broadcast to every node).
func TestAuthRevocationOverRedisCluster(t *testing.T) {
	cluster := testenv.StartRedisCluster(t, 3)
	secret := testenv.GatewaySecret()
	up := startUpstream(t, verifying(secret))
	env := map[string]string{
		"AZEN_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "azen.db"),
		"AZEN_REDIS_URL":      cluster.URL(),
		"AZEN_GATEWAY_SECRET": secret,
		"UP":                  up.Addr,
	}
	gw1 := testenv.StartGateway(t, authCaddyfile, authEnv(env))
	gw2 := testenv.StartGateway(t, authCaddyfile, authEnv(env))
	id, key := testenv.CreateKey(t, env)
	expectAuth(t, gw1.URL, key, 200, "")
	expectAuth(t, gw2.URL, key, 200, "")
	// The subscription starts with the first request.
	var nodes []string
	for _, n := range cluster.Nodes {
		nodes = append(nodes, n.URL())
	}
	waitForKeySubscribers(t, 2, nodes...)
	testenv.Command(t, env, "keys", "disable", id)
	authEventually(t, gw1.URL, key, 403, time.Second)
	authEventually(t, gw2.URL, key, 403, time.Second)
}
