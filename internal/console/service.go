package console

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/revocation"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/usage"
)

// Service is the console's logic on the shared stores.
type Service struct {
	keys      *apikey.Store
	accounts  *account.Store
	usage     *usage.Store
	publisher *revocation.Publisher
	redis     redis.UniversalClient // nil: quota use is not shown
	logger    *slog.Logger
	now       func() time.Time

	// SessionTTL is how long a session lives without use (sliding at the
	// gateway). Default account.DefaultSessionTTL.
	SessionTTL time.Duration

	redisWarned atomic.Int64 // Unix seconds of the last "quota use unavailable" log
	pubWarned   atomic.Int64
}

// Config is what New needs. Redis may be nil (no Redis configured): the
// gateways then apply changes within their cache_ttl, and the quota use of
// keys reads as unknown.
type Config struct {
	Keys     *apikey.Store
	Accounts *account.Store
	Usage    *usage.Store
	Redis    redis.UniversalClient
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now
}

// StoresOn is a Config with the console's stores on db (keys, people and
// organizations, usage), their tables migrated: the same migrations the
// gateway applies, under the same lock. The caller adds Redis and Logger.
func StoresOn(ctx context.Context, db *sqldb.DB) (Config, error) {
	c := Config{Keys: apikey.NewStore(db), Accounts: account.NewStore(db), Usage: usage.NewStore(db)}
	for _, m := range []interface{ Migrate(context.Context) error }{c.Keys, c.Accounts, c.Usage} {
		if err := m.Migrate(ctx); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// New returns the service.
func New(c Config) *Service {
	s := &Service{
		keys: c.Keys, accounts: c.Accounts, usage: c.Usage, redis: c.Redis,
		publisher: revocation.NewPublisher(c.Redis), logger: c.Logger, now: c.Now,
		SessionTTL: account.DefaultSessionTTL,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	return s
}

// Now is the service's clock (the handlers format times with it).
func (s *Service) Now() time.Time { return s.now() }

// announce tells every gateway to drop credentials from its cache. The
// change is already stored, so a failure only delays it to the gateways'
// cache_ttl: it is logged (at most once a minute), not returned.
func (s *Service) announce(ctx context.Context, targets ...revocation.Target) {
	if err := s.publisher.Publish(context.WithoutCancel(ctx), targets...); err != nil {
		if s.warnOnce(&s.pubWarned) {
			s.logger.Warn("could not announce a change to the gateways; they apply it within their cache_ttl (logged at most once a minute)",
				"error", err.Error())
		}
	}
}

func (s *Service) warnOnce(last *atomic.Int64) bool {
	now := s.now().Unix()
	prev := last.Load()
	return now-prev >= 60 && last.CompareAndSwap(prev, now)
}
