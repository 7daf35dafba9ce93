package azenauth

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/ids"
	"github.com/azen-sh/gateway/internal/token"
)

// Client-facing messages, one per cause (contract §4, §9).
const (
	msgMissing       = contract.MessageMissingKey
	msgBlank         = "Empty API key: the azen-api-key header is blank."
	msgSeveral       = "Malformed API key: send exactly one azen-api-key header."
	msgMalformed     = "Malformed API key: it is not an Azen key or was mistyped."
	msgUnknown       = "Unknown API key."
	msgDisabled      = "API key is disabled."
	msgExpired       = "API key has expired."
	msgIncomplete    = "API key is not bound to an organization and a user."
	msgNoSession     = contract.MessageNoSession
	msgNoOrg         = contract.MessageNoOrganization
	msgKeyNotAllowed = contract.MessageNoSession + ": this route takes a console session, not an API key."
)

// checkKey runs the §4 checks on the azen-api-key header, in order.
func (h *Handler) checkKey(w http.ResponseWriter, r *http.Request, now time.Time) (*Principal, error) {
	values := r.Header[contract.APIKeyHeader]
	raw := ""
	if len(values) > 0 {
		raw = strings.Trim(values[0], " \t")
	}
	if len(values) <= 1 && raw == "" {
		h.metrics.outcome(outcomeBlank)
		return nil, caddyhttp.Error(http.StatusUnauthorized, contract.Public(msgBlank))
	}

	client := clientKey(clientIP(r))
	if blocked, wait := h.rt.failures.Blocked(client, now); blocked {
		return nil, h.throttled(w, wait, "API key")
	}
	if len(values) > 1 {
		return nil, h.refuse(client, now, outcomeMalformed, msgSeveral)
	}
	if !apikey.WellFormed(raw) {
		return nil, h.refuse(client, now, outcomeMalformed, msgMalformed)
	}

	e, res, err := h.rt.keys.Lookup(r.Context(), apikey.HashOf(raw), now)
	h.metrics.cacheResult(res)
	if err != nil {
		h.metrics.outcome(outcomeError)
		return nil, caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("azen_auth: key store: %w", err))
	}
	if res == cacheStale {
		h.logStale("key store unavailable; answering from expired cache entries (logged at most every 10 s)", e.value.ID, now)
	}
	k := &e.value
	switch {
	case !e.found:
		return nil, h.refuse(client, now, outcomeUnknown, msgUnknown)
	case !k.Enabled:
		return nil, h.refuse(client, now, outcomeDisabled, msgDisabled)
	case k.Expired(now), k.PreviousExpired(now):
		return nil, h.refuse(client, now, outcomeExpired, msgExpired)
	case !ids.Valid(k.OrganizationID) || !usableUserID(k.UserID):
		return nil, h.refuse(client, now, outcomeIncomplete, msgIncomplete)
	}
	h.rt.queueTouch(&e.lastTouch, touch{id: k.ID}, now)
	p := e.principal.Load()
	if p == nil {
		p = (&Principal{
			Credential: contract.CredentialKey, ID: k.ID, OrganizationID: k.OrganizationID, UserID: k.UserID,
			Tier: k.Tier, RateLimit: k.RateLimit, Permissions: k.Permissions, Quota: k.Quota,
		}).seal()
		e.principal.Store(p)
	}
	return p, nil
}

// refuse counts a failed attempt against the client and returns the 403.
func (h *Handler) refuse(client clientAddr, now time.Time, outcome, message string) error {
	h.rt.failures.Fail(client, now)
	h.metrics.outcome(outcome)
	return caddyhttp.Error(http.StatusForbidden, contract.Public(message))
}

// checkSession looks up the azen_session cookie. A missing, malformed,
// unknown or ended session is (nil, nil): the caller decides whether that
// is a 401 or an anonymous request. Only a store that cannot be asked is an
// error (a 500, never a 401).
func (h *Handler) checkSession(r *http.Request, cookie string, now time.Time) (*Principal, error) {
	if !account.WellFormedSessionToken(cookie) {
		return nil, nil
	}
	e, res, err := h.rt.sessions.Lookup(r.Context(), token.HashOf(cookie), now)
	h.metrics.cacheResult(res)
	if err != nil {
		h.metrics.outcome(outcomeError)
		return nil, caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("azen_auth: session store: %w", err))
	}
	if res == cacheStale {
		h.logStale("session store unavailable; answering from expired cache entries (logged at most every 10 s)", e.value.ID, now)
	}
	s := &e.value
	if !e.found || s.Expired(now) {
		return nil, nil
	}
	h.rt.queueTouch(&e.lastTouch, touch{session: true, id: s.ID}, now)
	p := e.principal.Load()
	if p == nil {
		p = (&Principal{
			Credential: contract.CredentialSession, ID: s.ID, OrganizationID: s.ActiveOrganizationID,
			UserID: s.UserID, Role: s.Role, Permissions: s.Permissions(),
		}).seal()
		e.principal.Store(p)
	}
	return p, nil
}

func (h *Handler) logStale(msg, id string, now time.Time) {
	if !h.rt.staleLog.Allow(now) {
		return
	}
	if ce := h.logger.Check(zapcore.WarnLevel, msg); ce != nil {
		ce.Write(zap.String("credential_id", id))
	}
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

// throttled is the 429 for an address past its failed-attempt limit
// (failed_attempts): what names the attempts ("API key", "sign-in").
func (h *Handler) throttled(w http.ResponseWriter, wait time.Duration, what string) error {
	h.metrics.outcome(outcomeThrottled)
	secs := contract.RetryAfterSeconds(wait)
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return caddyhttp.Error(http.StatusTooManyRequests, contract.Public(fmt.Sprintf(
		"Too many failed %s attempts from your address. Retry in %d s.", what, secs)))
}
