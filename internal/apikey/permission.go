package apikey

import (
	"fmt"
	"slices"
	"strings"
)

// Permissions a key may carry (contract §10). A route names the one it
// needs with azen_permissions; the console's key routes need keys:read or
// keys:write.
const (
	MemoryRead  = "memory:read"
	MemoryWrite = "memory:write"
	KeysRead    = "keys:read"
	KeysWrite   = "keys:write"
)

// AllPermissions is every permission, in the order they are shown.
var AllPermissions = []string{MemoryRead, MemoryWrite, KeysRead, KeysWrite}

// DefaultPermissions are given to a key created without a list.
var DefaultPermissions = []string{MemoryRead, MemoryWrite}

// KnownPermission reports whether p is a permission name.
func KnownPermission(p string) bool { return slices.Contains(AllPermissions, p) }

// ParsePermissions reads a list separated by commas or spaces (a flag, a
// column), refusing unknown names. The result is sorted in AllPermissions
// order without repeats; an empty list is an error (a key that may do
// nothing is a mistake, disable it instead).
func ParsePermissions(s string) ([]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	return NormalizePermissions(fields)
}

// NormalizePermissions checks a list and returns it sorted without repeats.
func NormalizePermissions(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("needs at least one of %s", strings.Join(AllPermissions, ", "))
	}
	for _, p := range list {
		if !KnownPermission(p) {
			return nil, fmt.Errorf("unknown permission %q (known: %s)", p, strings.Join(AllPermissions, ", "))
		}
	}
	out := make([]string, 0, len(list))
	for _, p := range AllPermissions {
		if slices.Contains(list, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// formatPermissions is the column form: names separated by spaces.
func formatPermissions(list []string) string { return strings.Join(list, " ") }

// Has reports whether k carries permission p.
func (k *Key) Has(p string) bool { return slices.Contains(k.Permissions, p) }
