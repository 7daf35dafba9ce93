// Package form reads the console's HTML forms into the console service's
// inputs, one file per form. A value that cannot even be read (a quota
// limit that is not a number) is reported here, next to its field; every
// other rule is the service's, so the pages and the JSON API refuse the
// same things with the same words.
package form

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/azen-sh/gateway/internal/console"
)

// State is a form as it is shown again: the values sent and a problem per
// field, and a message about the whole form.
type State struct {
	Values  url.Values
	Errors  map[string]string
	Message string
}

// New is an empty form with defaults.
func New(defaults url.Values) *State {
	if defaults == nil {
		defaults = url.Values{}
	}
	return &State{Values: defaults, Errors: map[string]string{}}
}

// From is the form as posted.
func From(v url.Values) *State { return &State{Values: v, Errors: map[string]string{}} }

// Value is a field's value.
func (s *State) Value(name string) string { return s.Values.Get(name) }

// Error is a field's problem, "" when none.
func (s *State) Error(name string) string { return s.Errors[name] }

// Checked reports whether a checkbox or option holds value.
func (s *State) Checked(name, value string) bool { return slices.Contains(s.Values[name], value) }

// Invalid reports whether any field has a problem.
func (s *State) Invalid() bool { return len(s.Errors) > 0 || s.Message != "" }

// Fail records a field's problem (the first one stays).
func (s *State) Fail(field, problem string) {
	if _, ok := s.Errors[field]; !ok {
		s.Errors[field] = capitalize(problem)
	}
}

// Absorb shows a service refusal: its field problems next to the fields,
// anything else as the form's message. It reports whether err was a 400
// (false: a refusal or an internal error the caller must handle).
func (s *State) Absorb(err error) bool {
	ce, ok := err.(*console.Error)
	if !ok || ce.Code != http.StatusBadRequest {
		return false // not the form's fault: shown as its own page
	}
	if len(ce.Fields) == 0 {
		s.Message = ce.Message
		return true
	}
	for _, f := range ce.Fields {
		s.Fail(f.Field, f.Problem)
	}
	return true
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// integer reads an optional whole number; ok is false after a problem.
func (s *State) integer(field string) (n int64, present, ok bool) {
	raw := strings.TrimSpace(s.Value(field))
	if raw == "" {
		return 0, false, true
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		s.Fail(field, "must be a whole number")
		return 0, false, false
	}
	return n, true, true
}
