package account

import (
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password rules (contract §9: at least 10 characters). bcrypt reads at most
// 72 bytes, so a longer password is refused rather than silently cut.
const (
	MinPasswordRunes = 10
	MaxPasswordBytes = 72

	// DefaultPasswordCost is bcrypt's cost of 2^12 rounds: about a quarter
	// of a second on one core, which a person signing in does not notice
	// and a guesser with a stolen table does.
	DefaultPasswordCost = 12
)

// CheckPassword reports why a new password is refused, or nil.
func CheckPassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return errors.New("must be valid UTF-8 text")
	case utf8.RuneCountInString(pw) < MinPasswordRunes:
		return fmt.Errorf("must be at least %d characters", MinPasswordRunes)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("must be at most %d bytes", MaxPasswordBytes)
	}
	return nil
}

func hashPassword(pw string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// passwordMatches compares in bcrypt's constant time.
func passwordMatches(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// decoys holds, per cost, a hash that no password matches, compared when
// an email is unknown, so a wrong email costs the same time as a wrong
// password.
var decoys sync.Map // int -> string

func decoyHash(cost int) string {
	if h, ok := decoys.Load(cost); ok {
		return h.(string)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("no password matches this decoy"), cost)
	if err != nil {
		return ""
	}
	v, _ := decoys.LoadOrStore(cost, string(h))
	return v.(string)
}
