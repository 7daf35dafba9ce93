package console

import (
	"net/http"
	"strings"

	"github.com/azen-sh/gateway/internal/contract"
)

// Error is a refusal the caller can act on: an HTTP status of the
// contract's table and a message written for the client. A 400 names the
// inputs at fault in Fields (the pages show each next to its field; the API
// answers with the first).
type Error struct {
	Code    int
	Message string
	Fields  []FieldError
}

// FieldError is one input's problem: "name" "must be at most 255 characters".
type FieldError struct {
	Field   string
	Problem string
}

func (e *Error) Error() string { return e.Message }

// Problem returns the problem of field, or "".
func (e *Error) Problem(field string) string {
	for _, f := range e.Fields {
		if f.Field == field {
			return f.Problem
		}
	}
	return ""
}

// Refusals with one fixed message (contract §9).
var (
	ErrNoSession      = &Error{Code: http.StatusUnauthorized, Message: contract.MessageNoSession}
	ErrNoOrganization = &Error{Code: http.StatusForbidden, Message: contract.MessageNoOrganization}
	ErrInvalidLogin   = &Error{Code: http.StatusUnauthorized, Message: "Invalid email or password"}
	ErrKeyNotFound    = &Error{Code: http.StatusNotFound, Message: "API key not found"}
	ErrNotMember      = &Error{Code: http.StatusForbidden, Message: "You are not a member of that organization"}
	ErrMemberNotFound = &Error{Code: http.StatusNotFound, Message: "Member not found"}
	ErrUnknownKey     = &Error{Code: http.StatusForbidden, Message: "Unknown API key."}
)

// problems collects field errors in the order the fields are checked.
type problems []FieldError

func (p *problems) add(field, problem string) { *p = append(*p, FieldError{field, problem}) }

// err is nil when nothing was added, else a 400 naming the first field.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Code: http.StatusBadRequest, Message: p[0].Field + " " + p[0].Problem, Fields: p}
}

// invalid is a 400 about one field.
func invalid(field, problem string) error {
	var p problems
	p.add(field, problem)
	return p.err()
}

// badRequest is a 400 about the request as a whole.
func badRequest(msg string) error { return &Error{Code: http.StatusBadRequest, Message: msg} }

// forbidden is a 403 with its message.
func forbidden(msg string) error { return &Error{Code: http.StatusForbidden, Message: msg} }

// lowerFirst turns a store's "Must…" into "must…" after a field name.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
