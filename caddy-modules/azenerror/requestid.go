package azenerror

import (
	"io"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/contract"
)

func init() {
	caddy.RegisterModule(RequestID{})
}

// RequestIDPlaceholder holds the request's id once EnsureRequestID ran.
const RequestIDPlaceholder = "azen.request_id"

// RequestID keeps a sane client-sent X-Request-Id or replaces it with a new
// one, sets it on the request (so reverse_proxy passes it upstream and the
// access log records it) and on the response, including error responses.
// The id is also published as the placeholder {azen.request_id}.
//
// azen_auth, azen_ratelimit and azen_error do the same themselves (through
// EnsureRequestID), so a Caddyfile without this directive still answers
// every request with an id; it is needed only to give one to routes that
// use none of them.
type RequestID struct{}

// CaddyModule returns the Caddy module information.
func (RequestID) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.azen_request_id",
		New: func() caddy.Module { return new(RequestID) },
	}
}

// ServeHTTP sets the id and calls next.
func (RequestID) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	w, _ = EnsureRequestID(w, r)
	return next.ServeHTTP(w, r)
}

// EnsureRequestID gives the request its X-Request-Id (contract §3, §4)
// the first time it is called for a request, and does nothing more on
// later calls: every azen handler calls it, so the id is there whichever of
// them a Caddyfile uses. The first call keeps a sane client id or makes a
// new one, sets it on the request (for the upstream and the access log),
// on the response headers (which handle_errors writes too) and as
// {azen.request_id}, and returns a writer that puts exactly that one id on
// the response when its header is written, so an upstream that echoes the
// id (as azen-backend does) does not make it appear twice. Callers pass the
// returned writer on.
func EnsureRequestID(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, string) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl != nil {
		if id, ok := repl.GetString(RequestIDPlaceholder); ok && id != "" {
			return w, id
		}
	}
	id := contract.EnsureRequestID(w, r)
	if repl == nil {
		return w, id
	}
	repl.Set(RequestIDPlaceholder, id)
	return &requestIDWriter{ResponseWriterWrapper: caddyhttp.ResponseWriterWrapper{ResponseWriter: w}, id: id}, id
}

// requestIDWriter makes the response carry exactly the request's id.
type requestIDWriter struct {
	caddyhttp.ResponseWriterWrapper
	id      string
	written bool
}

func (w *requestIDWriter) setID() {
	h := w.Header()
	if vs := h.Values(contract.RequestIDHeader); len(vs) != 1 || vs[0] != w.id {
		h.Set(contract.RequestIDHeader, w.id)
	}
}

// WriteHeader sets the id, then writes the header (1xx ones included).
func (w *requestIDWriter) WriteHeader(code int) {
	w.setID()
	if code >= 200 {
		w.written = true
	}
	w.ResponseWriterWrapper.WriteHeader(code)
}

// Write writes an implicit 200 header with the id first.
func (w *requestIDWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.setID()
		w.written = true
	}
	return w.ResponseWriterWrapper.Write(b)
}

// ReadFrom writes an implicit 200 header with the id first.
func (w *requestIDWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.written {
		w.setID()
		w.written = true
	}
	return w.ResponseWriterWrapper.ReadFrom(r)
}

var (
	_ caddyhttp.MiddlewareHandler = RequestID{}
	_ io.ReaderFrom               = (*requestIDWriter)(nil)
)
