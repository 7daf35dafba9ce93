package form

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/azen-sh/gateway/internal/console"
)

func TestKeyFormRules(t *testing.T) {
	t.Run("a quota limit that is not a number is named", func(t *testing.T) {
		s := From(url.Values{"name": {"x"}, "quotaLimit": {"lots"}, "permissions": {"memory:read"}})
		if _, ok := NewKey(s); ok || s.Error("quotaLimit") != "Must be a whole number" {
			t.Fatalf("errors %v", s.Errors)
		}
	})
	t.Run("no box checked is an empty list, not the defaults", func(t *testing.T) {
		in, ok := NewKey(From(url.Values{"name": {"x"}}))
		if !ok || in.Permissions == nil || len(in.Permissions) != 0 {
			t.Fatalf("permissions %v", in.Permissions)
		}
	})
	t.Run("an empty quota is no quota", func(t *testing.T) {
		in, _ := NewKey(From(url.Values{"name": {"x"}, "quotaPeriod": {"day"}}))
		if !in.Quota.IsZero() {
			t.Fatalf("quota %v", in.Quota)
		}
	})
	t.Run("the edit form's expiry is UTC, empty is never", func(t *testing.T) {
		p, ok := EditKey(From(url.Values{"expiresAt": {"2030-01-31T12:00"}}))
		if !ok || p.ExpiresAt.Format("2006-01-02T15:04Z07:00") != "2030-01-31T12:00Z" {
			t.Fatalf("expiresAt %v", p.ExpiresAt)
		}
		p, _ = EditKey(From(url.Values{}))
		if !p.ExpiresAt.IsZero() {
			t.Fatalf("empty expiry %v", p.ExpiresAt)
		}
		s := From(url.Values{"expiresAt": {"soon"}})
		if _, ok := EditKey(s); ok || s.Error("expiresAt") == "" {
			t.Fatal("a bad expiry was accepted")
		}
	})
	t.Run("the confirmation must match", func(t *testing.T) {
		s := From(url.Values{"newPassword": {"a"}, "confirmPassword": {"b"}})
		if _, ok := Password(s); ok || s.Error("confirmPassword") == "" {
			t.Fatal("mismatch accepted")
		}
	})
	t.Run("a 400 goes next to its fields, other refusals are not absorbed", func(t *testing.T) {
		s := New(nil)
		if !s.Absorb(&console.Error{Code: 400, Message: "name is required", Fields: []console.FieldError{{Field: "name", Problem: "is required"}}}) ||
			s.Error("name") != "Is required" {
			t.Fatalf("errors %v", s.Errors)
		}
		if s.Absorb(&console.Error{Code: http.StatusForbidden, Message: "no"}) {
			t.Fatal("a 403 was shown as a form error")
		}
	})
}
