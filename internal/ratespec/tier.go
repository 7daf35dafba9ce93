package ratespec

// TierNameRule says, for error messages, which tier names are valid.
const TierNameRule = "a tier name is 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit"

// ValidTierName reports whether s may name a tier: 1 to 64 ASCII letters,
// digits, '_', '-' or '.', the first a letter or digit. It is the one rule
// for a Caddyfile's `tier` lines and a key's tier (`keys create --tier`,
// api_keys.tier), so every tier a key can be given is one a Caddyfile can
// define, and the other way round.
func ValidTierName(s string) bool {
	if len(s) < 1 || len(s) > 64 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
