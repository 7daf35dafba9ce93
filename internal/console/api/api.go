// Package api is the console's JSON API (contract §9, §10) under /auth/ and
// /console/api/: one small file per route, each turning JSON into a call of
// the console service and its answer back into JSON. Errors are the
// contract's body; the messages are the service's.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/jsonobj"
)

// MaxBody is the largest console request body.
const MaxBody = 64 << 10

// requestTimeout bounds one request's database work.
const requestTimeout = 15 * time.Second

// API serves the routes.
type API struct {
	svc    *console.Service
	signer *contract.Signer
	logger *slog.Logger
}

// New returns the API.
func New(svc *console.Service, signer *contract.Signer, logger *slog.Logger) *API {
	return &API{svc: svc, signer: signer, logger: logger}
}

// handler is one route for a verified caller; body is the JSON sent.
type handler func(w http.ResponseWriter, r *http.Request, a console.Actor, body []byte) error

// anonHandler is one route without a credential (sign-up, sign-in).
type anonHandler func(w http.ResponseWriter, r *http.Request, body []byte) error

// signed checks the gateway's signature and body hash (contract.ReadSigned,
// the memory API's check), resolves the caller and runs h.
func (a *API) signed(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, body, err := a.signer.ReadSigned(w, r, a.svc.Now(), MaxBody)
		if err != nil {
			a.refuseUnsigned(w, r, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		actor, err := a.svc.Actor(ctx, id)
		if err == nil {
			err = h(w, r, actor, body)
		}
		if err != nil {
			a.writeError(w, r, err)
		}
	})
}

// optional is signed, but an unsigned request runs h with no actor (the
// gateway forwards sign-out without a valid session that way).
func (a *API) optional(h func(w http.ResponseWriter, r *http.Request, a *console.Actor) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _, err := a.signer.ReadSigned(w, r, a.svc.Now(), MaxBody)
		var actor *console.Actor
		switch {
		case errors.Is(err, contract.ErrSignatureMissing):
		case err != nil:
			a.refuseUnsigned(w, r, err)
			return
		default:
			act, err := a.svc.Actor(r.Context(), id)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			actor = &act
		}
		if err := h(w, r, actor); err != nil {
			a.writeError(w, r, err)
		}
	})
}

// anonymous runs h on a request that carries no identity.
func (a *API) anonymous(h anonHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			a.writeError(w, r, contract.Public("Request body must not exceed 64 KiB"))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		if err := h(w, r.WithContext(ctx), body); err != nil {
			a.writeError(w, r, err)
		}
	})
}

func (a *API) refuseUnsigned(w http.ResponseWriter, r *http.Request, err error) {
	if contract.IsBodyError(err) {
		a.writeError(w, r, contract.Public("Request body must not exceed 64 KiB"))
		return
	}
	contract.WriteError(w, contract.NewError(http.StatusUnauthorized, "Gateway authentication failed: "+err.Error()+"."))
}

// writeError maps an error to the contract body: the service's refusals
// with their status and message, a contract.Public error as a 400, and
// anything else as a logged 500 that tells the client nothing.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *console.Error
	if errors.As(err, &ce) {
		contract.WriteError(w, contract.NewError(ce.Code, ce.Message))
		return
	}
	if msg, ok := contract.PublicMessage(err); ok {
		contract.WriteError(w, contract.NewError(http.StatusBadRequest, msg))
		return
	}
	a.logger.Error("internal error", "request_id", w.Header().Get(contract.RequestIDHeader), "method", r.Method,
		"route", r.Pattern, "error", err.Error())
	contract.WriteError(w, contract.NewError(http.StatusInternalServerError, ""))
}

// writeJSON writes a success body.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return nil
}

// parse decodes a JSON object body with the allowed fields.
func parse(body []byte, emptyOK bool, allowed ...string) (jsonobj.Object, error) {
	return jsonobj.Parse(body, emptyOK, allowed...)
}

// noQuery refuses query parameters on a route that takes none.
func noQuery(r *http.Request) error {
	for name := range r.URL.Query() {
		return contract.Public("Unknown query parameter " + jsonobj.QuoteName(name))
	}
	return nil
}
