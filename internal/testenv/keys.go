package testenv

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/azen-sh/gateway/internal/ids"
)

// CreatedKey is what `azen-gateway keys create --json` prints.
type CreatedKey struct {
	ID             string  `json:"id"`
	Key            string  `json:"key"`
	Prefix         string  `json:"prefix"`
	Name           string  `json:"name"`
	OrganizationID string  `json:"organizationId"`
	UserID         string  `json:"userId"`
	Enabled        bool    `json:"enabled"`
	ExpiresAt      *string `json:"expiresAt"`
	Tier           string  `json:"tier"`
	RateLimit      string  `json:"rateLimit"`
}

// CreateKey runs `azen-gateway keys create --json` with env (set
// AZEN_DATABASE_URL, and AZEN_REDIS_URL if the gateways use Redis) and
// returns the new key's id and plaintext. Without --org a fresh organization
// is used; without --user, "test-user". Extra args such as "--tier", "pro"
// or "--rate", "120/m", "--burst", "20" are passed on.
func CreateKey(t testing.TB, env map[string]string, args ...string) (id, key string) {
	t.Helper()
	k := CreateKeyFull(t, env, args...)
	return k.ID, k.Key
}

// CreateKeyFull is CreateKey returning every field printed.
func CreateKeyFull(t testing.TB, env map[string]string, args ...string) CreatedKey {
	t.Helper()
	full := []string{"keys", "create", "--json"}
	if !slices.Contains(args, "--org") {
		full = append(full, "--org", NewUUID())
	}
	if !slices.Contains(args, "--user") {
		full = append(full, "--user", "test-user")
	}
	full = append(full, args...)
	out := Command(t, env, full...)
	var k CreatedKey
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.ID == "" || k.Key == "" {
		t.Fatalf("keys create --json printed %q: %v", out, err)
	}
	return k
}

// NewUUID returns a fresh UUID (an organization id for tests).
func NewUUID() string { return ids.New() }
