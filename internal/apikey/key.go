// Package apikey is the API-key store both sides share: the key format, the
// hashing, and the SQL of api_keys (contract §4, §7, §10). The gateway reads
// keys through it, the `azen-gateway keys` command and the console create and
// change them, so there is one implementation of every rule about a key.
package apikey

import "github.com/azen-sh/gateway/internal/token"

// Prefix starts every API key: "azen_" + 43 base62 characters + a 6-character
// CRC32 checksum (see package token).
const Prefix = "azen_"

// Len is the length of every key.
var Len = token.Len(Prefix)

// Generate returns a fresh random key.
func Generate() (string, error) { return token.New(Prefix) }

// WellFormed reports whether s has the key shape and a correct checksum,
// without allocating.
func WellFormed(s string) bool { return token.WellFormed(Prefix, s) }

// Hash is the SHA-256 of a key, the only form the store keeps.
type Hash = token.Hash

// HashOf hashes a key for storage and lookup.
func HashOf(key string) Hash { return token.HashOf(key) }

// DisplayPrefix is the part of a key that is stored and shown ("azen_" and
// 7 characters).
func DisplayPrefix(key string) string { return token.Display(key) }
