package redisconn

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/testenv"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		cluster bool
		sent    bool
		tls     bool
		wantErr string
	}{
		{name: "single node", url: "redis://127.0.0.1:6379/2"},
		{name: "with credentials", url: "redis://user:pw@127.0.0.1:6379"},
		{name: "TLS", url: "rediss://redis.example.com:6380", tls: true},
		{name: "cluster", url: "redis://a:7000?addr=b:7001&addr=c:7002", cluster: true},
		{name: "sentinel", url: "redis://s1:26379?master_name=azen&addr=s2:26379", sent: true},
		{name: "empty", url: " ", wantErr: "empty"},
		{name: "other scheme", url: "http://h:1", wantErr: "redis://"},
		{name: "no host", url: "redis://", wantErr: "host"},
		{name: "bad db", url: "redis://u:hunter2@h:1/x", wantErr: "database"},
		{name: "unknown option", url: "redis://u:hunter2@h:1?colour=red", wantErr: "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Parse(tt.url)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatal("the error repeats the password")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.IsCluster() != tt.cluster || (o.universal.MasterName != "") != tt.sent || (o.universal.TLSConfig != nil) != tt.tls {
				t.Errorf("options %+v", o.universal)
			}
			if !o.universal.ContextTimeoutEnabled || o.universal.MaxRetries != -1 {
				t.Error("callers' deadlines must be honoured and scripts never retried")
			}
		})
	}
}

// roundTrip writes and reads a key through a client built from url.
func roundTrip(t *testing.T, url string) {
	t.Helper()
	o, err := Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	c := o.NewClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		if lastErr = c.Set(ctx, "azen:test", "v", time.Minute).Err(); lastErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // a new Sentinel needs a moment to know its master
	}
	if lastErr != nil {
		t.Fatalf("set through %s: %v", url, lastErr)
	}
	if v, err := c.Get(ctx, "azen:test").Result(); err != nil || v != "v" {
		t.Fatalf("get: %q, %v", v, err)
	}
}

func TestSentinelURLReachesTheMaster(t *testing.T) {
	s := testenv.StartRedisSentinel(t)
	roundTrip(t, s.URL())
}

func TestTLSURL(t *testing.T) {
	r := testenv.StartRedisTLS(t)
	// Go reads SSL_CERT_FILE once, when the system roots are first needed:
	// nothing in this test process used TLS before.
	os.Setenv("SSL_CERT_FILE", r.CAFile)
	roundTrip(t, r.URL())
}

func TestClusterURL(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3)
	roundTrip(t, c.URL())
}

func TestSharedClientIsReusedAndReleased(t *testing.T) {
	r := testenv.StartRedis(t)
	a, releaseA, err := Shared(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, err := Shared(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two users of one URL got two clients")
	}
	releaseA()
	if err := b.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("client closed while still used: %v", err)
	}
	releaseB()
	if err := b.Ping(context.Background()).Err(); err == nil {
		t.Fatal("client still open after its last user released it")
	}
}
