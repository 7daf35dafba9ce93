package main

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/api"
	"github.com/azen-sh/gateway/internal/console/ui"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
)

// consoleConfig is what the console adds to the backend's environment.
type consoleConfig struct {
	// RedisURL (AZEN_REDIS_URL, optional) is where the console announces
	// revoked keys and sessions to the gateways, and reads quota use.
	RedisURL string
}

func loadConsoleConfig(getenv func(string) string) (consoleConfig, error) {
	c := consoleConfig{RedisURL: strings.TrimSpace(getenv("AZEN_REDIS_URL"))}
	if c.RedisURL != "" {
		if _, err := redisconn.Parse(c.RedisURL); err != nil {
			return consoleConfig{}, fmt.Errorf("AZEN_REDIS_URL: %v", err)
		}
	}
	return c, nil
}

// consoleHandlers are the console's API and pages, on the backend's pool.
type consoleHandlers struct {
	api   *api.API
	pages *ui.UI
	redis redis.UniversalClient
}

// openConsole migrates the key, account and usage tables (the same
// migrations the gateway applies, under the same lock) and builds the
// console on db.
func openConsole(ctx context.Context, db *sqldb.DB, cfg consoleConfig, signer *contract.Signer, logger *slog.Logger) (*consoleHandlers, error) {
	stores, err := console.StoresOn(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("AZEN_DATABASE_URL: console tables: %v", err)
	}
	c := &consoleHandlers{}
	if cfg.RedisURL != "" {
		o, err := redisconn.Parse(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("AZEN_REDIS_URL: %v", err)
		}
		c.redis = o.NewClient()
	} else {
		logger.Warn("AZEN_REDIS_URL is not set: console changes reach the gateways within their cache_ttl, and quota use is not shown")
	}
	stores.Redis, stores.Logger = c.redis, logger
	svc := console.New(stores)
	pages, err := ui.New(svc, signer, logger)
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	c.api, c.pages = api.New(svc, signer, logger), pages
	return c, nil
}

func (c *consoleHandlers) Close() {
	if c != nil && c.redis != nil {
		_ = c.redis.Close()
	}
}

// mountConsole registers the console's routes beside the memory API.
func (s *server) mountConsole(c *consoleHandlers) {
	c.api.Routes(s.mux, c.pages.Forms())
	c.pages.Routes(s.mux)
}

// canonicalPath reports whether the API serves p as it is: every endpoint
// has one spelling, except the console's home, which is "/console/".
func canonicalPath(p string) bool {
	return p == "/console/" || (strings.HasPrefix(p, "/console/static/") && !strings.Contains(p, "..")) || p == path.Clean(p)
}
