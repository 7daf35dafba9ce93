package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
)

// GatewaySecret returns a fresh AZEN_GATEWAY_SECRET.
func GatewaySecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// EncryptionKeys returns a fresh AZEN_ENCRYPTION_KEYS with one key named id.
func EncryptionKeys(id string) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return id + ":" + base64.StdEncoding.EncodeToString(b)
}
