// Package token is the format of every secret a client presents to the
// gateway: API keys ("azen_…") and console session cookies ("azen_sess_…").
// A token is a prefix, 43 base62 characters (32 random bytes, left-padded to
// a fixed width) and 6 base62 characters of the CRC32 of those 43, as GitHub
// tokens carry one. The checksum lets the gateway refuse a mistyped or
// truncated token without asking the database. Only the SHA-256 of a token
// is ever stored.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"math/big"
)

const (
	bodyLen  = 43 // 62^43 > 2^256
	checkLen = 6  // 62^6 > 2^32

	// DisplayedLen is how much of a token may be shown and stored: the
	// prefix and the first few random characters.
	DisplayedLen = 12
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Len is the length of every token with this prefix.
func Len(prefix string) int { return len(prefix) + bodyLen + checkLen }

// New returns a fresh random token with the prefix.
func New(prefix string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return FromBytes(prefix, b), nil
}

// FromBytes is the token of 32 given bytes (tests use fixed ones).
func FromBytes(prefix string, b [32]byte) string {
	n := new(big.Int).SetBytes(b[:])
	base, digit := big.NewInt(62), new(big.Int)
	body := make([]byte, bodyLen)
	for i := bodyLen - 1; i >= 0; i-- {
		n.DivMod(n, base, digit)
		body[i] = base62[digit.Int64()]
	}
	out := make([]byte, 0, Len(prefix))
	out = append(out, prefix...)
	out = append(out, body...)
	sum := uint64(crc32.ChecksumIEEE(body))
	var c [checkLen]byte
	for i := checkLen - 1; i >= 0; i-- {
		c[i] = base62[sum%62]
		sum /= 62
	}
	return string(append(out, c[:]...))
}

// WellFormed reports whether s is a token with this prefix and a correct
// checksum. It does not allocate and its time depends on no stored token.
func WellFormed(prefix, s string) bool {
	if len(s) != Len(prefix) || s[:len(prefix)] != prefix {
		return false
	}
	rest := s[len(prefix):]
	for i := 0; i < len(rest); i++ {
		if !isBase62(rest[i]) {
			return false
		}
	}
	var want uint64
	for i := bodyLen; i < len(rest); i++ {
		want = want*62 + uint64(base62Value(rest[i]))
	}
	return want == uint64(crc32String(rest[:bodyLen]))
}

// crc32String is crc32.ChecksumIEEE over a string, without the allocation
// a []byte conversion costs on the request path.
func crc32String(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func base62Value(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'Z':
		return c - 'A' + 10
	default:
		return c - 'a' + 36
	}
}

// Hash is the SHA-256 of a token: the only form a store keeps.
type Hash [sha256.Size]byte

// HashOf hashes a token for storage and lookup.
func HashOf(s string) Hash {
	const stackLen = 64 // every token fits: the conversion stays off the heap
	if len(s) <= stackLen {
		var buf [stackLen]byte
		n := copy(buf[:], s)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(s))
}

// Hex is the form stored in the key_hash and token_hash columns.
func (h Hash) Hex() string { return hex.EncodeToString(h[:]) }

// Display is the part of a token that may be shown and stored.
func Display(s string) string {
	if len(s) < DisplayedLen {
		return s
	}
	return s[:DisplayedLen]
}
