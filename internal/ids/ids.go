// Package ids makes and checks the UUIDs every table uses as ids, with
// github.com/google/uuid. Ids travel in canonical lower-case 8-4-4-4-12 form
// only: the other spellings uuid.Parse accepts (braces, urn:uuid:, no
// dashes) are refused, so one id has one spelling in URLs, headers and SQL.
package ids

import (
	"strings"

	"github.com/google/uuid"
)

// New returns a time-ordered random UUID (RFC 9562 version 7), so new rows
// land at the end of primary-key indexes.
func New() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only a failing crypto/rand makes NewV7 fail; NewRandom reports the
		// same failure as a panic, which is what a broken entropy source is.
		return uuid.New().String()
	}
	return id.String()
}

// Parse accepts the canonical form in either case and returns it in lower
// case.
func Parse(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return id.String(), true
}

// Valid reports whether s is a canonical UUID (either case). It does not
// allocate: the gateway checks every key's organization id with it.
func Valid(s string) bool {
	return len(s) == 36 && uuid.Validate(s) == nil
}

// Bytes is the 16 bytes of a canonical UUID (false if s is not one).
func Bytes(s string) ([16]byte, bool) {
	if len(s) != 36 {
		return [16]byte{}, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// FromBytes is the canonical lower-case form of 16 bytes (the inverse of
// Bytes).
func FromBytes(b [16]byte) string { return uuid.UUID(b).String() }

// Normalize trims and lower-cases what may be an id (from a flag or a
// message) without checking it.
func Normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
