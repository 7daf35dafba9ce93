// Package azenauth is the azen_auth module (contract §4, §9): it admits
// requests that carry a valid API key in the azen-api-key header or a valid
// console session in the azen_session cookie, reads and bounds their body,
// forwards the caller's identity to the upstream as signed Azen-* headers,
// meters what it admitted, and refuses the rest with the contract's
// 401/403/429 errors. It also provides the `azen-gateway keys` command.
// The stores themselves (api_keys, sessions, usage) live in internal/, shared
// with the backend.
package azenauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/azen-sh/gateway/caddy-modules/azenerror"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ratespec"
	"github.com/azen-sh/gateway/internal/redisconn"
	"github.com/azen-sh/gateway/internal/sqldb"
	"github.com/azen-sh/gateway/internal/usage"
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
	DefaultUsageFlush     = 10 * time.Second
)

// Handler authenticates requests by API key or console session.
type Handler struct {
	// Database URL of the key and session store: postgres://… or
	// sqlite:PATH. May be a {env.NAME} placeholder, expanded at provision.
	// Default sqlite:azen.db.
	Database string `json:"database,omitempty"`

	// Redis URL for revocation pub/sub (redis://, rediss://, Cluster or
	// Sentinel forms). Empty (the default) means no Redis: a revoked key or
	// session stops working within cache_ttl. May be a {env.NAME} placeholder.
	Redis string `json:"redis,omitempty"`

	// Secret that signs the forwarded identity, at least 32 bytes. Required.
	// Write it as a {env.NAME} placeholder so it never appears in adapted
	// config.
	Secret string `json:"secret,omitempty"`

	// How long a key or session lookup (found or not) is trusted before the
	// store is asked again. Default 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// Most keys (and, separately, sessions) held in the cache (unknown ones:
	// a quarter of that more). Default 100000.
	CacheSize int `json:"cache_size,omitempty"`

	// Failed key attempts (403s) and failed sign-ins (401s) allowed per
	// client address, in ratespec syntax (COUNT/UNIT). Past it the answer is
	// 429. Default 20/m.
	FailedAttempts string `json:"failed_attempts,omitempty"`

	// Largest request body accepted, in bytes; a larger one is a 400 before
	// any upstream is chosen. Default 1 MiB (the backend's limit).
	MaxBody int64 `json:"max_body,omitempty"`

	// How often usage counts are written to the database (at most 10s).
	// Default 10s.
	UsageFlush caddy.Duration `json:"usage_flush,omitempty"`

	signer  *contract.Signer
	maxBody int64
	rt      *authRuntime
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
// call: the database and Redis are reached shortly after the config loads.
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

	if err := h.checkRanges(); err != nil {
		return err
	}
	ttl := cmp.Or(time.Duration(h.CacheTTL), DefaultCacheTTL)
	size := cmp.Or(h.CacheSize, DefaultCacheSize)
	h.maxBody = cmp.Or(h.MaxBody, DefaultMaxBody)
	flush := cmp.Or(time.Duration(h.UsageFlush), DefaultUsageFlush)
	if failed == "" {
		failed = DefaultFailedAttempts
	}
	rate, err := ratespec.ParseRate(failed)
	if err != nil {
		return fmt.Errorf("azen_auth: failed_attempts: %w", err)
	}

	h.rt, h.release, err = loadRuntime(runtimeSettings{
		database: database, redis: redisURL, cacheTTL: ttl, cacheSize: size, failedAttempts: rate, usageFlush: flush,
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

// maxMaxBody is the largest max_body: a body is held in memory whole.
const maxMaxBody = 1 << 30

// checkRanges is the one check of the numeric settings, for Caddyfile and
// JSON configs alike (the Caddyfile parser runs it to name the line). Zero
// means the default.
func (h *Handler) checkRanges() error {
	switch {
	case h.CacheTTL < 0:
		return fmt.Errorf("azen_auth: cache_ttl must be positive, got %s", time.Duration(h.CacheTTL))
	case h.CacheSize < 0:
		return fmt.Errorf("azen_auth: cache_size must be a whole number of at least 1, got %d", h.CacheSize)
	case h.MaxBody < 0 || h.MaxBody > maxMaxBody:
		return fmt.Errorf("azen_auth: max_body must be a size from 1B to 1GiB such as 1MiB, got %d bytes", h.MaxBody)
	case h.UsageFlush < 0 || time.Duration(h.UsageFlush) > DefaultUsageFlush:
		return fmt.Errorf("azen_auth: usage_flush must be a duration from 1ms to 10s, got %s", time.Duration(h.UsageFlush))
	}
	return nil
}

// warmUpDelay is how long a loaded config waits before it touches the
// network. `caddy validate` and `adapt` provision and unload within it, so
// they never connect; a running gateway migrates its tables and subscribes
// to revocations shortly after start instead of on its first request.
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
	if err := h.rt.stores.prepare(pctx); err != nil {
		// The first lookup tries again; until then nothing depends on it.
		h.logger.Warn("credential store not ready at start; will retry on first use", zap.Error(err))
	}
}

// Cleanup writes the usage counts held so far (a reload is a write point
// even when the runtime outlives it) and releases the shared runtime; the
// last user closes it. Under `caddy validate` nothing was counted, so
// nothing is written.
func (h *Handler) Cleanup() error {
	if h.rt != nil {
		h.rt.flushUsage()
	}
	if h.release != nil {
		h.release()
		h.release = nil
	}
	return nil
}

// ServeHTTP establishes who is calling (contract §4 order for keys, §9 for
// sessions), then forwards the request with its body read and its identity
// signed. Refusals are returned as errors for handle_errors to render.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w, _ = azenerror.EnsureRequestID(w, r)
	h.rt.start()
	now := h.now()
	a := accessOf(r.URL.Path)
	cookie, hasCookie := sessionCookie(r)
	_, hasKey := r.Header[contract.APIKeyHeader]
	// A request with a key is judged by the key, also on the routes that
	// also take a session (contract §9).
	bySession := hasCookie && !(hasKey && (a == accessAPI || a == accessKeys))

	if needsOriginCheck(a, bySession) {
		if err := crossOrigin.Check(r); err != nil {
			h.metrics.outcome(outcomeCrossOrigin)
			return caddyhttp.Error(http.StatusForbidden, errors.Join(contract.Public(msgCrossOrigin), err))
		}
	}

	switch a {
	case accessAnonymous:
		client := clientKey(clientIP(r))
		if blocked, wait := h.rt.failures.Blocked(client, now); blocked {
			return h.throttled(w, wait, "sign-in")
		}
		return h.forward(w, r, next, a, nil, now)
	case accessOptional:
		var p *Principal
		if bySession {
			var err error
			if p, err = h.checkSession(r, cookie, now); err != nil {
				return err
			}
		}
		return h.forward(w, r, next, a, p, now)
	}

	var p *Principal
	var err error
	switch {
	case bySession:
		if p, err = h.checkSession(r, cookie, now); err != nil {
			return err
		}
		if p == nil {
			h.metrics.outcome(outcomeNoSession)
			return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgNoSession))
		}
		if p.OrganizationID == "" && a != accessSessionNoOrg {
			h.metrics.outcome(outcomeNoOrganization)
			return caddyhttp.Error(http.StatusForbidden, contract.Public(msgNoOrg))
		}
	case a == accessSession || a == accessSessionNoOrg:
		h.metrics.outcome(outcomeNoSession)
		if hasKey {
			return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgKeyNotAllowed))
		}
		return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgNoSession))
	case !hasKey && a == accessKeys:
		// The console's key routes take a key too, but they are the
		// console's: with no credential at all they ask for a session (§9).
		h.metrics.outcome(outcomeNoSession)
		return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgNoSession))
	case !hasKey:
		h.metrics.outcome(outcomeMissing)
		return caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgMissing))
	default:
		if p, err = h.checkKey(w, r, now); err != nil {
			return err
		}
	}
	if a == accessKeys {
		// The console's key routes: reading needs keys:read, changing
		// keys:write, whether the caller is a key or a person (§10).
		perm := apikey.KeysWrite
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			perm = apikey.KeysRead
		}
		if !p.Has(perm) {
			h.metrics.outcome(outcomeNoPermission)
			return caddyhttp.Error(http.StatusForbidden, contract.Public(p.lacks(perm)))
		}
	}
	h.metrics.outcome(outcomeOK)
	return h.forward(w, r, next, a, p, now)
}

// forward reads the body, replaces client-sent identity with the signed one
// (p nil: none), publishes the placeholders, and passes the request on,
// metering it afterwards.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, a access, p *Principal, now time.Time) error {
	bodySHA, err := readBody(w, r, h.maxBody)
	if err != nil {
		h.metrics.outcome(outcomeBadBody)
		return err
	}
	// The key header and any forged identity go: SignRequest strips them
	// before it signs, and a request nobody vouches for is stripped here.
	dropSessionCookie(r)
	if p != nil {
		if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			repl.Map(p.placeholders)
			repl.Set("http.auth.user.id", p.ID) // Caddy's access log: user_id
		}
		setPrincipal(r.Context(), p)
		h.signer.SignRequest(r, p.identity(), bodySHA, now)
	} else {
		contract.StripAzenHeaders(r.Header)
	}

	metered := p != nil && p.OrganizationID != "" && a != accessOptional
	signIn := a == accessAnonymous && isSignIn(r.URL.Path)
	if !metered && !signIn {
		return next.ServeHTTP(w, r)
	}
	sw := &statusWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err = next.ServeHTTP(sw, r)
	if signIn && sw.status == http.StatusUnauthorized {
		h.rt.failures.Fail(clientKey(clientIP(r)), now)
	}
	if metered {
		h.rt.meter.Record(usage.Event{
			OrganizationID: p.OrganizationID, CredentialKind: p.Credential, CredentialID: p.ID,
			Group: usage.Group(r.Method, r.URL.Path), Outcome: outcomeOf(sw.status, err),
		}, now)
	}
	return err
}

// statusWriter remembers the status the upstream answered with.
type statusWriter struct {
	caddyhttp.ResponseWriterWrapper // by value: one allocation per request, not two
	status                          int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriterWrapper.Write(b)
}

// outcomeOf is the usage outcome of a request: a refusal by the rate
// limiter is rate_limited, any other error or 4xx/5xx answer is error.
func outcomeOf(status int, err error) string {
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode == http.StatusTooManyRequests {
			return usage.OutcomeRateLimited
		}
		return usage.OutcomeError
	}
	switch {
	case status == http.StatusTooManyRequests:
		return usage.OutcomeRateLimited
	case status >= 400:
		return usage.OutcomeError
	}
	return usage.OutcomeSuccess
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
