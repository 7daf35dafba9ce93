// Package contract holds the parts of the Azen contract that the gateway and
// the backend must agree on byte for byte: the JSON error body (contract §3),
// the request id, and the signed identity the gateway forwards (contract §4).
package contract

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// The six statuses of the published error table. No other is ever sent.
const (
	StatusInvalidRequest = "invalid_request"
	StatusUnauthorized   = "unauthorized"
	StatusForbidden      = "forbidden"
	StatusNotFound       = "not_found"
	StatusRateLimited    = "rate_limited"
	StatusInternal       = "internal_server_error"
)

// Generic messages. A 500 never says more than these; the detail goes to the
// log under the request id.
const (
	MessageInternal    = "Internal server error"
	MessageUnavailable = "Service temporarily unavailable"
)

// Messages of the credential checks (contract §4, §9) that more than one
// side sends: the gateway at the edge, the backend and the console behind it.
const (
	MessageMissingKey     = "Missing API key: send it in the azen-api-key header."
	MessageNoSession      = "No active session"
	MessageNoOrganization = "No active organization"
)

// Error is the body of every error response: exactly these three fields.
type Error struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// NewError builds the body for an HTTP status, first folding it into the
// contract's table (see Normalize). An empty message takes the default one.
func NewError(code int, message string) Error {
	if message == "" {
		message = DefaultMessage(code)
	}
	code = Normalize(code)
	if code == http.StatusInternalServerError && message != MessageUnavailable {
		message = MessageInternal
	}
	return Error{Status: StatusText(code), Message: message, Code: code}
}

// Normalize folds any HTTP error status into one of the six the API publishes:
// a missing method is a missing endpoint, a too-large or otherwise refused
// request is invalid, and every server-side failure (a dead upstream's 502,
// 503, 504 included) is a 500.
func Normalize(code int) int {
	switch {
	case code == http.StatusBadRequest, code == http.StatusUnauthorized,
		code == http.StatusForbidden, code == http.StatusNotFound,
		code == http.StatusTooManyRequests, code == http.StatusInternalServerError:
		return code
	case code == http.StatusMethodNotAllowed, code == http.StatusGone:
		return http.StatusNotFound
	case code >= 400 && code < 500:
		return http.StatusBadRequest
	default:
		return http.StatusInternalServerError
	}
}

// StatusText is the contract status of a normalised code.
func StatusText(code int) string {
	switch Normalize(code) {
	case http.StatusBadRequest:
		return StatusInvalidRequest
	case http.StatusUnauthorized:
		return StatusUnauthorized
	case http.StatusForbidden:
		return StatusForbidden
	case http.StatusNotFound:
		return StatusNotFound
	case http.StatusTooManyRequests:
		return StatusRateLimited
	default:
		return StatusInternal
	}
}

// DefaultMessage is the message used when the raiser of an error gave none.
// A few statuses that fold into 400 keep a message saying what was wrong.
func DefaultMessage(code int) string {
	switch code {
	case http.StatusRequestEntityTooLarge:
		return "Request body is too large."
	case http.StatusRequestURITooLong:
		return "Request URI is too long."
	case http.StatusRequestHeaderFieldsTooLarge:
		return "Request headers are too large."
	}
	switch Normalize(code) {
	case http.StatusBadRequest:
		return "Invalid request."
	case http.StatusUnauthorized:
		return MessageMissingKey
	case http.StatusForbidden:
		return "Forbidden."
	case http.StatusNotFound:
		return "Not found."
	case http.StatusTooManyRequests:
		return "Rate limit exceeded."
	default:
		return MessageInternal
	}
}

// WriteError writes an error body with its status. Headers already set on w
// (X-Request-Id, Retry-After, rate-limit fields) are kept.
func WriteError(w http.ResponseWriter, e Error) {
	body, _ := json.Marshal(e) // three plain fields: cannot fail
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	w.WriteHeader(e.Code)
	_, _ = w.Write(body)
}
