// Package azenerror holds the edge's error modules: azen_error, which writes
// the contract's JSON error body (contract §3 and §6), and azen_request_id,
// which gives every request and response an X-Request-Id.
package azenerror

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/azen-sh/gateway/internal/contract"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler writes an error body in the contract's format. With a status it
// writes that error; without one (inside handle_errors) it maps the error
// Caddy raised: a dead upstream's 502/503/504 becomes a 500, an unknown
// method a 404, and a message is shown only when the raiser marked it as
// written for the client.
type Handler struct {
	// The HTTP status to answer with. Empty (the default) means the status
	// of the error being handled, or 500 if there is none. May be a
	// placeholder.
	StatusCode caddyhttp.WeakString `json:"status_code,omitempty"`

	// The message. Placeholders are expanded. Empty (the default) means the
	// handled error's client-facing message, or the status's generic one.
	Message string `json:"message,omitempty"`

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_error",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets up the handler.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	return nil
}

// Validate checks a literal status code.
func (h *Handler) Validate() error {
	if h.StatusCode == "" {
		return nil
	}
	if code, err := strconv.Atoi(string(h.StatusCode)); err == nil {
		if code < 400 || code > 599 {
			return fmt.Errorf("status %d is not an error status (400-599)", code)
		}
	}
	return nil
}

// ServeHTTP writes the error body. It never calls next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	w, requestID := EnsureRequestID(w, r)

	handled, _ := r.Context().Value(caddyhttp.ErrorCtxKey).(error)
	code := http.StatusInternalServerError
	var he caddyhttp.HandlerError
	if errors.As(handled, &he) && he.StatusCode != 0 {
		code = he.StatusCode
	}
	if h.StatusCode != "" {
		c, err := strconv.Atoi(repl.ReplaceAll(string(h.StatusCode), ""))
		if err != nil {
			return caddyhttp.Error(http.StatusInternalServerError, fmt.Errorf("azen_error: bad status %q: %w", h.StatusCode, err))
		}
		code = c
	}

	message := ""
	if h.Message != "" {
		message = repl.ReplaceKnown(h.Message, "")
	} else if handled != nil {
		if m, ok := contract.PublicMessage(handled); ok {
			message = m
		}
	}
	if code >= 502 && code <= 504 && message == "" {
		message = contract.MessageUnavailable
	}
	body := contract.NewError(code, message)

	if body.Code >= 500 && handled != nil {
		// The client sees only the generic message; the cause goes to the
		// log under the request id, so an operator can find it.
		if ce := h.logger.Check(zapcore.ErrorLevel, "request failed"); ce != nil {
			ce.Write(
				zap.String("request_id", requestID),
				zap.Int("status", code),
				zap.Error(handled),
			)
		}
	}
	contract.WriteError(w, body)
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
