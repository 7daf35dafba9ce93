package azenauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"math/big"
)

// An API key is "azen_" + 43 base62 characters (32 random bytes, left-padded
// to a fixed width) + 6 base62 characters of the CRC32 of those 43 characters,
// as GitHub tokens carry one. The checksum lets the gateway refuse a mistyped
// or truncated key without asking the database.
const (
	KeyPrefix    = "azen_"
	keyBodyLen   = 43 // 62^43 > 2^256
	keyCheckLen  = 6  // 62^6 > 2^32
	KeyLen       = len(KeyPrefix) + keyBodyLen + keyCheckLen
	DisplayedLen = 12 // the stored, shown prefix: "azen_" + 7 characters
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// GenerateKey returns a fresh random key.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return keyFromBytes(b), nil
}

func keyFromBytes(b [32]byte) string {
	n := new(big.Int).SetBytes(b[:])
	base, digit := big.NewInt(62), new(big.Int)
	body := make([]byte, keyBodyLen)
	for i := keyBodyLen - 1; i >= 0; i-- {
		n.DivMod(n, base, digit)
		body[i] = base62[digit.Int64()]
	}
	out := make([]byte, 0, KeyLen)
	out = append(out, KeyPrefix...)
	out = append(out, body...)
	out = appendChecksum(out, crc32.ChecksumIEEE(body))
	return string(out)
}

func appendChecksum(dst []byte, sum uint32) []byte {
	var c [keyCheckLen]byte
	v := uint64(sum)
	for i := keyCheckLen - 1; i >= 0; i-- {
		c[i] = base62[v%62]
		v /= 62
	}
	return append(dst, c[:]...)
}

// WellFormed reports whether s has the key shape and a correct checksum. It
// does not allocate and runs in time independent of any stored key.
func WellFormed(s string) bool {
	if len(s) != KeyLen || s[:len(KeyPrefix)] != KeyPrefix {
		return false
	}
	rest := s[len(KeyPrefix):]
	for i := 0; i < len(rest); i++ {
		if !isBase62(rest[i]) {
			return false
		}
	}
	body := rest[:keyBodyLen]
	var want uint64
	for i := keyBodyLen; i < len(rest); i++ {
		want = want*62 + uint64(base62Value(rest[i]))
	}
	return want == uint64(crc32IEEEString(body))
}

// crc32IEEEString is crc32.ChecksumIEEE over a string, without the
// allocation a []byte conversion costs on the request path.
func crc32IEEEString(s string) uint32 {
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

// KeyHash is the SHA-256 of a key: the only form the store keeps.
type KeyHash [sha256.Size]byte

// HashKey hashes a key for storage and lookup.
func HashKey(key string) KeyHash {
	if len(key) <= KeyLen {
		var buf [KeyLen]byte // keeps the conversion off the heap
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}

// Hex is the form stored in api_keys.key_hash.
func (h KeyHash) Hex() string { return hex.EncodeToString(h[:]) }

// KeyDisplayPrefix is the part of a key that may be shown and stored.
func KeyDisplayPrefix(key string) string {
	if len(key) < DisplayedLen {
		return key
	}
	return key[:DisplayedLen]
}
