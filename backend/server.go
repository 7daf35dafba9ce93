package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
)

// server is the HTTP side of the backend.
type server struct {
	store   *Store
	signer  *contract.Signer
	logger  *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
	now     func() time.Time

	draining atomic.Bool // set on SIGTERM: /readyz fails, everything else serves
}

func newServer(store *Store, signer *contract.Signer, logger *slog.Logger) *server {
	s := &server{store: store, signer: signer, logger: logger, metrics: newMetrics(), mux: http.NewServeMux(), now: time.Now}
	s.routes(s.mux)
	return s
}

type ctxKey int

const requestIDKey ctxKey = 0

// statusRecorder remembers the status a handler wrote. While the server
// drains, it also marks every response `Connection: close`, so a proxy
// stops reusing its keep-alive connections to this replica one by one as
// they answer, before the listener and the idle ones are closed.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	draining *atomic.Bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if w.draining.Load() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP gives every request an id, answers unknown routes and methods
// with the contract's 404 body, recovers from panics, and records a log line
// and metrics.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := contract.EnsureRequestID(w, r)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, reqID))
	rec := &statusRecorder{ResponseWriter: w, draining: &s.draining}
	defer func() {
		// The mux has set r.Pattern by now (the catch-all "/" is no route).
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.Error("panic", "request_id", reqID, "route", route, "panic", v)
			if rec.status == 0 {
				contract.WriteError(rec, contract.NewError(http.StatusInternalServerError, ""))
			}
		}
		d := time.Since(start)
		s.metrics.observe(route, rec.status, d)
		if route != "GET /metrics" && route != "GET /healthz" && route != "GET /readyz" {
			s.logger.Info("request", "request_id", reqID, "method", r.Method, "route", route,
				"status", rec.status, "duration_ms", float64(d.Microseconds())/1000)
		}
	}()
	// The mux answers a non-canonical path ("//", "/./", a trailing slash)
	// with an HTML redirect; the API has one spelling per endpoint.
	if !canonicalPath(r.URL.Path) {
		unknownEndpoint(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// unknownEndpoint is the answer to every path and method no route serves
// (the mux's catch-all "/"): the contract's 404, never the mux's plain-text
// 404 or 405.
func unknownEndpoint(w http.ResponseWriter, r *http.Request) {
	contract.WriteError(w, contract.NewError(http.StatusNotFound, "Unknown endpoint "+r.Method+" "+r.URL.Path))
}

// requestTimeout bounds the database work of one API request.
const requestTimeout = 15 * time.Second

// apiHandler serves one API route for a verified identity.
type apiHandler func(w http.ResponseWriter, r *http.Request, id contract.Identity) error

// api checks the gateway's signature, then runs h and turns its error into
// the contract body: ErrNotFound is 404, a contract.Public error is 400,
// anything else a logged 500 that tells the client nothing.
func (s *server) api(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The signature, then the body (at most 1 MiB) against the signed
		// hash, before any handler sees it: nothing between gateway and
		// backend can change it (contract.ReadSigned, shared with the console).
		id, _, err := s.signer.ReadSigned(w, r, s.now(), maxBodyBytes)
		switch {
		case errors.Is(err, contract.ErrBodyTooLarge):
			s.writeError(w, r, invalid("Request body must not exceed 1 MiB"))
			return
		case errors.Is(err, contract.ErrBodyUnreadable):
			s.writeError(w, r, invalid("Request body could not be read"))
			return
		case err != nil:
			contract.WriteError(w, contract.NewError(http.StatusUnauthorized, "Gateway authentication failed: "+err.Error()+"."))
			return
		}
		if id.OrganizationID == "" {
			// A session that has not chosen an organization yet; the
			// gateway answers this itself, so only a misconfigured one gets here.
			contract.WriteError(w, contract.NewError(http.StatusForbidden, contract.MessageNoOrganization))
			return
		}
		// A database that hangs must not hang the client: the request gets
		// a bounded time, then a logged 500.
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		if err := h(w, r, id); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		contract.WriteError(w, contract.NewError(http.StatusNotFound, "Memory not found"))
		return
	}
	if msg, ok := contract.PublicMessage(err); ok {
		contract.WriteError(w, contract.NewError(http.StatusBadRequest, msg))
		return
	}
	reqID, _ := r.Context().Value(requestIDKey).(string)
	s.logger.Error("internal error", "request_id", reqID, "method", r.Method, "route", r.Pattern, "error", err.Error())
	contract.WriteError(w, contract.NewError(http.StatusInternalServerError, ""))
}

// writeJSON writes a success body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		contract.WriteError(w, contract.NewError(http.StatusInternalServerError, ""))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		contract.WriteError(w, contract.NewError(http.StatusInternalServerError, contract.MessageUnavailable))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		reqID, _ := r.Context().Value(requestIDKey).(string)
		s.logger.Error("not ready: database unreachable", "request_id", reqID, "error", err.Error())
		contract.WriteError(w, contract.NewError(http.StatusInternalServerError, contract.MessageUnavailable))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
