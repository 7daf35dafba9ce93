// Package azenauth is the azen_auth module (contract §4): it admits requests
// that carry a valid API key in the azen-api-key header, forwards the key's
// identity to the upstream as signed Azen-* headers, and refuses the rest
// with the contract's 401/403/429 errors. It also provides the key store
// (api_keys on PostgreSQL or SQLite) and the `azen-gateway keys` command.
package azenauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/azen-sh/gateway/caddy-modules/azenerror"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("azen_auth", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("azen_auth", httpcaddyfile.Before, "basic_auth")
}

// Defaults of the optional settings.
const (
	DefaultCacheTTL       = 30 * time.Second
	DefaultCacheSize      = 100_000
	DefaultFailedAttempts = "20/m"
)

// Client-facing messages, one per cause (contract §4).
const (
	msgMissing    = "Missing API key: send it in the azen-api-key header."
	msgBlank      = "Empty API key: the azen-api-key header is blank."
	msgSeveral    = "Malformed API key: send exactly one azen-api-key header."
	msgMalformed  = "Malformed API key: it is not an Azen key or was mistyped."
	msgUnknown    = "Unknown API key."
	msgDisabled   = "API key is disabled."
	msgExpired    = "API key has expired."
	msgIncomplete = "API key is not bound to an organization and a user."
)

// Handler authenticates requests by API key.
type Handler struct {
	// Database URL of the key store: postgres://… or sqlite:PATH. May be a
	// {env.NAME} placeholder, expanded at provision. Default sqlite:azen.db.
	Database string `json:"database,omitempty"`

	// Redis URL for key-revocation pub/sub (redis://, rediss://, Cluster or
	// Sentinel forms). Empty (the default) means no Redis: a revoked key
	// stops working within cache_ttl. May be a {env.NAME} placeholder.
	Redis string `json:"redis,omitempty"`

	// Secret that signs the forwarded identity, at least 32 bytes. Required.
	// Write it as a {env.NAME} placeholder so it never appears in adapted
	// config.
	Secret string `json:"secret,omitempty"`

	// How long a key lookup (found or not) is trusted before the store is
	// asked again. Default 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// Most keys held in the cache (unknown keys: a quarter of that more).
	// Default 100000.
	CacheSize int `json:"cache_size,omitempty"`

	// Failed key attempts (403s) allowed per client address, in ratespec
	// syntax (COUNT/UNIT). Past it the answer is 429. Default 20/m.
	FailedAttempts string `json:"failed_attempts,omitempty"`

	signer  *contract.Signer
	rt      *runtime
	release func()
	metrics *authMetrics
	logger  *zap.Logger
	now     func() time.Time // time.Now; tests move it
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision expands {env.*} placeholders, checks every setting and joins
// the runtime shared by handlers with the same settings. It makes no network
// call: the database and Redis are reached on the first request.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.now = time.Now
	repl := caddy.NewReplacer()
	database := strings.TrimSpace(repl.ReplaceKnown(h.Database, ""))
	redisURL := strings.TrimSpace(repl.ReplaceKnown(h.Redis, ""))
	secret := repl.ReplaceKnown(h.Secret, "")
	failed := strings.TrimSpace(repl.ReplaceKnown(h.FailedAttempts, ""))

	if database == "" {
		database = sqldb.DefaultURL
	}
	if _, err := sqldb.Parse(database); err != nil {
		return fmt.Errorf("azen_auth: database: %w", err)
	}
	if redisURL != "" {
		if _, err := redisconn.Parse(redisURL); err != nil {
			return fmt.Errorf("azen_auth: redis: %w", err)
		}
	}
	if secret == "" {
		return errors.New("azen_auth: secret is required (set AZEN_GATEWAY_SECRET and write `secret {env.AZEN_GATEWAY_SECRET}`)")
	}
	signer, err := contract.NewSigner(secret)
	if err != nil {
		return fmt.Errorf("azen_auth: secret %w", err)
	}
	h.signer = signer

	ttl := time.Duration(h.CacheTTL)
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if ttl < 0 {
		return fmt.Errorf("azen_auth: cache_ttl must be positive, got %s", ttl)
	}
	size := h.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	if size < 1 {
		return fmt.Errorf("azen_auth: cache_size must be at least 1, got %d", size)
	}
	if failed == "" {
		failed = DefaultFailedAttempts
	}
	rate, err := ratespec.ParseRate(failed)
	if err != nil {
		return fmt.Errorf("azen_auth: failed_attempts: %w", err)
	}

	h.rt, h.release, err = loadRuntime(runtimeSettings{
		database: database, redis: redisURL, cacheTTL: ttl, cacheSize: size, failedAttempts: rate,
	}, h.logger)
	if err != nil {
		return fmt.Errorf("azen_auth: %w", err)
	}
	h.metrics, err = newAuthMetrics(ctx.GetMetricsRegistry(), h.rt.counters)
	if err != nil {
		return fmt.Errorf("azen_auth: metrics: %w", err)
	}
	go h.warmUp(ctx)
	return nil
}

// warmUpDelay is how long a loaded config waits before it touches the
// network. `caddy validate` and `adapt` provision and unload within it, so
// they never connect; a running gateway migrates api_keys and subscribes to
// revocations shortly after start instead of on its first request.
const warmUpDelay = 2 * time.Second

func (h *Handler) warmUp(ctx caddy.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(warmUpDelay):
	}
	h.rt.start()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.rt.store.prepare(pctx); err != nil {
		// The first lookup tries again; until then nothing depends on it.
		h.logger.Warn("key store not ready at start; will retry on first use", zap.Error(err))
	}
}

// Cleanup releases the shared runtime; the last user closes it.
func (h *Handler) Cleanup() error {
	if h.release != nil {
		h.release()
		h.release = nil
	}
	return nil
}

// ServeHTTP checks the key (contract §4 order), then forwards the signed
// identity. Refusals are returned as errors for handle_errors to render.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w, _ = azenerror.EnsureRequestID(w, r)
	h.rt.start()
	now := h.now()

	values, present := r.Header[contract.APIKeyHeader]
	if !present {
		h.metrics.outcome(outcomeMissing)
		return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgMissing))
	}
	raw := ""
	if len(values) > 0 {
		raw = strings.Trim(values[0], " \t")
	}
	if len(values) <= 1 && raw == "" {
		h.metrics.outcome(outcomeBlank)
		return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgBlank))
	}

	client := clientKey(clientIP(r))
	if blocked, wait := h.rt.failures.Blocked(client, now); blocked {
		h.metrics.outcome(outcomeThrottled)
		secs := retryAfterSeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return caddyhttp.Error(http.StatusTooManyRequests, contract.Public(fmt.Sprintf(
			"Too many failed API key attempts from your address. Retry in %d s.", secs)))
	}

	if len(values) > 1 {
		return h.refuse(client, now, outcomeMalformed, msgSeveral)
	}
	if !WellFormed(raw) {
		return h.refuse(client, now, outcomeMalformed, msgMalformed)
	}

	e, res, err := h.rt.cache.Lookup(r.Context(), HashKey(raw), now)
	h.metrics.cacheResult(res)
	if err != nil {
		h.metrics.outcome(outcomeError)
		return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("azen_auth: %w", err))
	}
	if res == cacheStale && h.rt.staleLog.Allow(now) {
		if ce := h.logger.Check(zapcore.WarnLevel, "key store unavailable; answering from expired cache entries (logged at most every 10 s)"); ce != nil {
			ce.Write(zap.String("key_id", e.key.ID))
		}
	}
	k := &e.key
	switch {
	case !e.found:
		return h.refuse(client, now, outcomeUnknown, msgUnknown)
	case !k.Enabled:
		return h.refuse(client, now, outcomeDisabled, msgDisabled)
	case k.Expired(now):
		return h.refuse(client, now, outcomeExpired, msgExpired)
	case !ValidUUID(k.OrganizationID) || !usableUserID(k.UserID):
		return h.refuse(client, now, outcomeIncomplete, msgIncomplete)
	}

	h.metrics.outcome(outcomeOK)
	h.rt.touch(e, now)
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("azen.key_id", k.ID)
		repl.Set("azen.org_id", k.OrganizationID)
		repl.Set("azen.user_id", k.UserID)
		repl.Set("azen.tier", k.Tier)
		repl.Set("azen.rate_limit", k.RateLimit)
		repl.Set("http.auth.user.id", k.ID)
	}
	h.signer.SignRequest(r, contract.Identity{
		OrganizationID: k.OrganizationID, UserID: k.UserID, KeyID: k.ID,
	}, now)
	return next.ServeHTTP(w, r)
}

// refuse counts a failed attempt against the client and returns the 403.
func (h *Handler) refuse(client clientAddr, now time.Time, outcome, message string) error {
	h.rt.failures.Fail(client, now)
	h.metrics.outcome(outcome)
	return caddyhttp.Error(http.StatusForbidden, contract.Public(message))
}

// usableUserID reports whether a stored user id can travel in a header and
// be signed: not empty, at most 255 bytes, no control characters. The CLI
// only stores such ids; rows written by other means might not be.
func usableUserID(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// clientIP is Caddy's client_ip: the peer, or the X-Forwarded-For address
// when the peer is a trusted proxy.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// retryAfterSeconds rounds up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
