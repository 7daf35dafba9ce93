package contract

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
)

// RequestIDHeader carries the request id on requests and responses.
const RequestIDHeader = "X-Request-Id"

// maxRequestIDLen bounds a client-sent id; longer ones are replaced.
const maxRequestIDLen = 128

// SaneRequestID reports whether a client-sent id may be kept: 1 to 128
// characters from a conservative set, so it is safe in logs and headers,
// and nothing shaped like an API key: an id is logged by the gateway and
// the backend and echoed back, so a key sent as X-Request-Id (by mistake
// or to plant it in the logs) must be replaced, never kept.
func SaneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen || containsKeyPrefix(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh random id (32 hex digits).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// EnsureRequestID keeps the request's id if it is one sane value, replaces
// it otherwise (several ids count as none), and echoes it on the response. It
// returns the id in force.
func EnsureRequestID(w http.ResponseWriter, r *http.Request) string {
	ids := r.Header.Values(RequestIDHeader)
	var id string
	if len(ids) == 1 && SaneRequestID(ids[0]) {
		id = ids[0]
	} else {
		id = NewRequestID()
		r.Header.Set(RequestIDHeader, id)
	}
	w.Header().Set(RequestIDHeader, id)
	return id
}

// containsKeyPrefix reports whether s contains "azen_" in any case, the
// start of every API key (contract §4).
func containsKeyPrefix(s string) bool {
	return strings.Contains(strings.ToLower(s), "azen_")
}
