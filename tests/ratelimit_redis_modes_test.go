package tests

import (
	"testing"

	"github.com/azen-sh/gateway/internal/testenv"
)

// The limit stays exact across two gateways when AZEN_REDIS_URL names a
// TLS-only Redis (rediss://, the server's CA trusted through SSL_CERT_FILE)
// or a Sentinel (?master_name=): both gateways really share the Redis
// bucket, since each alone would admit the whole burst.
func TestRateLimitExactOverTLSAndSentinel(t *testing.T) {
	tlsRedis := testenv.StartRedisTLS(t)
	sentinel := testenv.StartRedisSentinel(t)
	for _, tt := range []struct {
		name string
		env  map[string]string
	}{
		{"rediss", map[string]string{"AZEN_REDIS_URL": tlsRedis.URL(), "SSL_CERT_FILE": tlsRedis.CAFile}},
		{"sentinel", map[string]string{"AZEN_REDIS_URL": sentinel.URL()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["UP"] = startUpstream(t).Addr
			// A TLS handshake on a cold, busy machine can take longer than
			// the default 50 ms budget; this test is about the URL forms.
			gws := startGateways(t, 2, rlCaddyfile(headerKeyed("rate 6/h\nburst 6\ntimeout 2s")), tt.env)
			got := fire(t, gws, uniqueKey(t), 16, 4)
			if got[200] != 6 || got[429] != 10 {
				t.Fatalf("statuses %v, want exactly 6×200 and 10×429", got)
			}
		})
	}
}
