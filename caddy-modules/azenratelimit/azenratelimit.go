// Package azenratelimit is the azen_ratelimit module: it enforces a GCRA
// limit per key, shared exactly by every gateway through Redis (contract §5),
// and degrades to an in-process limiter when Redis is absent or failing.
// The algorithm lives in the limiter subpackage; this package is the Caddy
// adapter: configuration, policy choice, headers and the 429 error.
package azenratelimit

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/azen-sh/gateway/caddy-modules/azenerror"
	"github.com/azen-sh/gateway/caddy-modules/azenratelimit/limiter"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ratespec"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("azen_ratelimit", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("azen_ratelimit", httpcaddyfile.After, "basic_auth")
}

// Defaults of contract §5.
const (
	maxMinGateways      = 10000
	DefaultKey          = "{azen.key_id}"
	DefaultRate         = "60/m"
	DefaultTimeout      = 50 * time.Millisecond
	DefaultOnRedisError = "local"
)

// Names of the policies that are not tiers, as clients see them in
// RateLimit-Policy.
const (
	defaultPolicyName  = "default"
	overridePolicyName = "key"
)

// Handler limits requests per key with GCRA.
type Handler struct {
	// Redis URL (redis://, rediss://, Cluster via ?addr=…). {env.NAME} is
	// expanded at provision time. Empty: in-process limiter on each gateway
	// alone (a warning is logged once).
	Redis string `json:"redis,omitempty"`
	// Key is the placeholder naming the bucket's owner. Default {azen.key_id};
	// {client_ip} suits anonymous routes.
	Key string `json:"key,omitempty"`
	// Rate is the default policy's rate, COUNT/UNIT. Default 60/m.
	Rate string `json:"rate,omitempty"`
	// Burst is the default policy's bucket size. Default: the rate's count.
	Burst int `json:"burst,omitempty"`
	// Tiers maps a tier name (a key's tier) to "RATE [burst N]"; a missing
	// burst is the rate's count.
	Tiers map[string]string `json:"tiers,omitempty"`
	// Cost is how many units one request through this handler spends.
	// Default 1.
	Cost int `json:"cost,omitempty"`
	// Timeout bounds each Redis call. Default 50ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// OnRedisError is local (default), allow or deny.
	OnRedisError string `json:"on_redis_error,omitempty"`
	// MinGateways is the fewest gateways local mode divides the policy by,
	// whatever count it last saw (or kept on disk). Default 1.
	MinGateways int `json:"min_gateways,omitempty"`

	keyVar        string // the variable name when Key is a single placeholder
	mode          limiter.Mode
	defaultPolicy limiter.Policy
	tiers         map[string]limiter.Policy
	state         *state
	release       func()
	logger        *zap.Logger
	keyWarnings   *zap.Logger // warnings about a key's stored settings, at most one line a minute each
	warnQuotaKey  *sync.Once  // a quota this handler cannot count (its key)
	overrides     *overrideCache
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_ratelimit",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults, parses the policies and loads the shared state.
// It makes no network call: the Redis client connects on first use.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.keyWarnings = sampledWarnings(h.logger)
	h.overrides = &overrideCache{}
	h.warnQuotaKey = new(sync.Once)
	if err := h.applyDefaults(); err != nil {
		return err
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("azen_ratelimit: register metrics: %w", err)
	}

	redisURL := caddy.NewReplacer().ReplaceKnown(h.Redis, "")
	st, release, err := loadState(redisURL)
	if err != nil {
		// The error never quotes the URL, which may hold a password.
		return fmt.Errorf("azen_ratelimit: redis: %w", err)
	}
	h.state, h.release = st, release
	if st.redis == nil {
		st.warnNoRedis.Do(func() {
			h.logger.Warn("no Redis configured: rate limits are enforced by each gateway alone, in process",
				zap.String("default_policy", h.defaultPolicy.String()))
		})
	} else {
		st.limiter.SetEvents(&events{logger: h.logger, onRedisError: h.OnRedisError, gateways: st.gateways.Count})
		go st.heartbeat(ctx)
	}
	return nil
}

// applyDefaults fills in defaults and builds and checks the policies.
func (h *Handler) applyDefaults() error {
	if h.Key == "" {
		h.Key = DefaultKey
	}
	if h.Rate == "" {
		h.Rate = DefaultRate
	}
	if strings.HasPrefix(h.Key, "{") && strings.HasSuffix(h.Key, "}") && strings.Count(h.Key, "{") == 1 && strings.Count(h.Key, "}") == 1 {
		h.keyVar = h.Key[1 : len(h.Key)-1]
	}
	if h.Cost == 0 {
		h.Cost = 1
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(DefaultTimeout)
	}
	if h.OnRedisError == "" {
		h.OnRedisError = DefaultOnRedisError
	}
	switch h.OnRedisError {
	case "allow":
		h.mode = limiter.ModeAllow
	case "deny":
		h.mode = limiter.ModeDeny
	default:
		h.mode = limiter.ModeLocal
	}
	if err := h.parsePolicies(); err != nil {
		return fmt.Errorf("azen_ratelimit: %w", err)
	}
	return h.Validate()
}

// parsePolicies turns the configured text into policies.
func (h *Handler) parsePolicies() error {
	r, err := ratespec.ParseRate(h.Rate)
	if err != nil {
		return err
	}
	if h.Burst < 0 {
		return fmt.Errorf("burst must be at least 1, got %d", h.Burst)
	}
	h.defaultPolicy = limiter.NewPolicy(defaultPolicyName, ratespec.Policy{Rate: r, Burst: h.Burst})
	if err := h.defaultPolicy.Check(); err != nil {
		return err
	}
	h.tiers = make(map[string]limiter.Policy, len(h.Tiers))
	for name, text := range h.Tiers {
		if !ratespec.ValidTierName(name) {
			return fmt.Errorf("tier name %q: %s", name, ratespec.TierNameRule)
		}
		p, err := ratespec.ParsePolicy(text)
		if err != nil {
			return fmt.Errorf("tier %s: %w", name, err)
		}
		h.tiers[name] = limiter.NewPolicy(name, p)
		if err := h.tiers[name].Check(); err != nil {
			return fmt.Errorf("tier %s: %w", name, err)
		}
	}
	return nil
}

// Validate checks the provisioned configuration.
func (h *Handler) Validate() error {
	if h.Cost < 1 {
		return fmt.Errorf("azen_ratelimit: cost must be at least 1, got %d", h.Cost)
	}
	if h.Cost > h.defaultPolicy.Burst {
		return fmt.Errorf("azen_ratelimit: cost %d is above the burst %d: no request could ever pass", h.Cost, h.defaultPolicy.Burst)
	}
	for name, p := range h.tiers {
		if h.Cost > p.Burst {
			return fmt.Errorf("azen_ratelimit: cost %d is above tier %s's burst %d: no request could ever pass", h.Cost, name, p.Burst)
		}
	}
	if h.Timeout <= 0 {
		return fmt.Errorf("azen_ratelimit: timeout must be positive")
	}
	if time.Duration(h.Timeout) > time.Minute {
		return fmt.Errorf("azen_ratelimit: timeout %s is too long for a per-request call; use at most 1m", time.Duration(h.Timeout))
	}
	if h.MinGateways < 0 || h.MinGateways > maxMinGateways {
		return fmt.Errorf("azen_ratelimit: min_gateways must be between 1 and %d, got %d", maxMinGateways, h.MinGateways)
	}
	switch h.OnRedisError {
	case "local", "allow", "deny":
	default:
		return fmt.Errorf("azen_ratelimit: on_redis_error must be local, allow or deny, got %q", h.OnRedisError)
	}
	return nil
}

// Cleanup releases the shared state (the last user closes the Redis client).
func (h *Handler) Cleanup() error {
	if h.release != nil {
		h.release()
		h.release = nil
	}
	return nil
}

// ServeHTTP decides, sets the headers, and either passes the request on or
// returns a 429 error for azen_error to render.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w, _ = azenerror.EnsureRequestID(w, r)
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	key := h.resolveKey(repl)
	if key == "" {
		// Limiting an empty key would put every caller in one bucket.
		return caddyhttp.Error(http.StatusInternalServerError,
			fmt.Errorf("azen_ratelimit: key %s is empty for this request (is azen_auth before azen_ratelimit?)", h.Key))
	}
	p := h.policyFor(repl)
	lr := limiter.Request{
		Bucket: p.Bucket(key), Policy: p, Cost: min(h.Cost, p.Burst),
		Mode: h.mode, Timeout: time.Duration(h.Timeout), MinGateways: h.MinGateways,
	}
	if text, _ := repl.GetString("azen.quota"); text != "" {
		h.addQuota(&lr, repl, key, text)
	}
	res, err := h.state.limiter.Allow(r.Context(), lr)
	if err != nil {
		if res.Source == limiter.SourceDeny {
			mDenyError.Inc()
		} else {
			mRedisError.Inc()
		}
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("azen_ratelimit: %w", err))
	}
	countDecision(res)
	if res.Decided {
		limiter.SetHeaders(w.Header(), p, res.Decision)
		limiter.SetQuotaHeaders(w.Header(), res.Quota)
		if !res.Decision.Allowed {
			msg := limiter.RefusalMessage(p, res.Decision)
			if res.Quota.Exceeded {
				mQuotaExceeded.Inc()
				msg = limiter.QuotaRefusalMessage(res.Quota)
			}
			return caddyhttp.Error(http.StatusTooManyRequests, contract.Public(msg))
		}
	}
	return next.ServeHTTP(w, r)
}

// addQuota adds the key's quota ({azen.quota}, "10000/month") to lr. The
// quota counter is named after the key id ({azen.key_id}) and must share
// the bucket's Cluster hash tag: a handler whose key is not the key id
// (say {client_ip}) does not count quotas (docs/ratelimit.md).
func (h *Handler) addQuota(lr *limiter.Request, repl *caddy.Replacer, key, text string) {
	q, err := apikey.ParseQuota(text)
	if err != nil || q.IsZero() {
		if ce := h.keyWarnings.Check(zapcore.WarnLevel, "ignoring a key's malformed quota"); ce != nil {
			keyID, _ := repl.GetString("azen.key_id")
			ce.Write(zap.String("key_id", keyID), zap.Error(err))
		}
		return
	}
	keyID := key
	if h.keyVar != "azen.key_id" {
		keyID, _ = repl.GetString("azen.key_id")
	}
	if keyID != key || limiter.KeyTag(key) != key {
		h.warnQuotaKey.Do(func() {
			h.logger.Warn("quotas are not counted by this azen_ratelimit: its key is not {azen.key_id}",
				zap.String("key", h.Key))
		})
		return
	}
	lr.Quota, lr.QuotaOwner = q, keyID
}

// sampledWarnings logs each message at most once a minute: a key with a
// malformed stored setting is seen on every one of its requests, and one
// line a minute (with the first key id) says as much as thousands.
func sampledWarnings(l *zap.Logger) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Minute, 1, 0)
	}))
}

// resolveKey expands the key placeholder; a key that is one placeholder
// (the usual case) is looked up directly, without template parsing.
func (h *Handler) resolveKey(repl *caddy.Replacer) string {
	if h.keyVar != "" {
		v, _ := repl.GetString(h.keyVar)
		return v
	}
	return repl.ReplaceAll(h.Key, "")
}

// policyFor picks the request's policy: the key's own override, else its
// tier, else the default.
func (h *Handler) policyFor(repl *caddy.Replacer) limiter.Policy {
	if text, _ := repl.GetString("azen.rate_limit"); text != "" {
		p, err := h.overrides.policy(text)
		if err == nil {
			return p
		}
		if ce := h.keyWarnings.Check(zapcore.WarnLevel, "ignoring a key's malformed rate_limit override"); ce != nil {
			keyID, _ := repl.GetString("azen.key_id")
			ce.Write(zap.String("key_id", keyID), zap.Error(err))
		}
	}
	if tier, _ := repl.GetString("azen.tier"); tier != "" {
		if p, ok := h.tiers[tier]; ok {
			return p
		}
	}
	return h.defaultPolicy
}

// countDecision counts a decision by outcome and by who made it.
func countDecision(res limiter.Result) {
	switch res.Source {
	case limiter.SourceAllow:
		mAllowAllowed.Inc()
	case limiter.SourceLocal:
		if res.Decision.Allowed {
			mLocalAllowed.Inc()
		} else {
			mLocalLimited.Inc()
		}
	default:
		if res.Decision.Allowed {
			mRedisAllowed.Inc()
		} else {
			mRedisLimited.Inc()
		}
	}
}

// BreakerOpen reports whether this handler's limiter keeps calls off Redis
// now (so decides per on_redis_error); false without Redis. For /readyz.
func (h *Handler) BreakerOpen() bool {
	return h.state != nil && h.state.redis != nil && h.state.limiter.BreakerOpen()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
