// Package redisconn turns AZEN_REDIS_URL into a go-redis client (single node,
// Sentinel or Cluster) and shares one client per URL across Caddy config
// reloads and across modules, so a reload keeps its connections.
package redisconn

import (
	"errors"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// Options is a parsed AZEN_REDIS_URL.
type Options struct {
	universal redis.UniversalOptions
}

// Parse reads redis://[user:pass@]host:port[/db] (rediss:// for TLS). Extra
// addr=host:port parameters select a Redis Cluster; master_name=NAME selects
// Sentinel, the URL's hosts being the sentinels. Errors never repeat the URL,
// which may hold a password.
func Parse(raw string) (*Options, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("empty Redis URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid redis:// or rediss:// URL")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("must start with redis:// or rediss://")
	}
	if u.Host == "" {
		return nil, errors.New("needs a host, as in redis://127.0.0.1:6379")
	}
	q := u.Query()
	var o redis.UniversalOptions
	switch {
	case q.Get("master_name") != "":
		f, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, sanitize(err)
		}
		o = redis.UniversalOptions{
			Addrs: f.SentinelAddrs, MasterName: f.MasterName, DB: f.DB,
			Username: f.Username, Password: f.Password,
			SentinelUsername: f.SentinelUsername, SentinelPassword: f.SentinelPassword,
			TLSConfig: f.TLSConfig,
		}
		if o.Password == "" {
			// One URL carries one set of credentials: use it for the master too.
			o.Username, o.Password = f.SentinelUsername, f.SentinelPassword
		}
	case len(q["addr"]) > 0:
		c, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, sanitize(err)
		}
		o = redis.UniversalOptions{
			Addrs: c.Addrs, Username: c.Username, Password: c.Password,
			TLSConfig: c.TLSConfig, IsClusterMode: true,
		}
	default:
		s, err := redis.ParseURL(raw)
		if err != nil {
			return nil, sanitize(err)
		}
		o = redis.UniversalOptions{
			Addrs: []string{s.Addr}, DB: s.DB, Username: s.Username, Password: s.Password,
			TLSConfig: s.TLSConfig,
		}
	}
	// Callers bound each call with a context deadline (the limiter's 50 ms);
	// go-redis only honours it with ContextTimeoutEnabled. Retrying a limiter
	// script could count a request twice, so retries are off.
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialTimeout = 2 * time.Second
	o.ReadTimeout = 2 * time.Second
	o.WriteTimeout = 2 * time.Second
	o.PoolSize = max(64, 16*runtime.GOMAXPROCS(0))
	o.MinIdleConns = 4
	o.PoolTimeout = time.Second
	return &Options{universal: o}, nil
}

// IsCluster reports whether the URL names a Redis Cluster.
func (o *Options) IsCluster() bool { return o.universal.IsClusterMode }

// NewClient builds a client; it does not connect until first used.
func (o *Options) NewClient() redis.UniversalClient {
	u := o.universal
	return redis.NewUniversalClient(&u)
}

// sanitize drops go-redis's error text when it might quote the URL.
func sanitize(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "@") || strings.Contains(msg, "://") {
		return errors.New("malformed Redis URL")
	}
	return errors.New(strings.TrimPrefix(msg, "redis: "))
}

// pool holds one client per URL for the whole process. Caddy starts the new
// config before cleaning up the old one, so a reload finds the client still
// loaded and keeps its connections.
var pool = caddy.NewUsagePool()

type pooled struct {
	redis.UniversalClient
}

func (p pooled) Destruct() error { return p.Close() }

// Shared returns the process-wide client for raw, creating it if needed. Call
// the returned release exactly once (from a module's Cleanup).
func Shared(raw string) (redis.UniversalClient, func(), error) {
	raw = strings.TrimSpace(raw) // one client per URL, however it was spaced
	o, err := Parse(raw)
	if err != nil {
		return nil, nil, err
	}
	v, _, err := pool.LoadOrNew(raw, func() (caddy.Destructor, error) {
		return pooled{o.NewClient()}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	release := func() { _, _ = pool.Delete(raw) }
	return v.(pooled).UniversalClient, release, nil
}
