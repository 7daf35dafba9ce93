package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/sqldb"
)

// config is the backend's environment (contract §2), checked at start.
type config struct {
	DatabaseURL    string
	GatewaySecret  string
	EncryptionKeys []encryptionKey // the first encrypts, all decrypt
	Addr           string
	DrainDelay     time.Duration // how long /readyz fails before the listener closes
}

type encryptionKey struct {
	ID  string
	Key []byte // 32 bytes
}

// defaultDrainDelay covers the gateway's health checks (every 1 s, 1 s
// timeout) noticing that /readyz fails, with a margin.
const defaultDrainDelay = 3 * time.Second

// loadConfig reads and checks every variable. Its errors are one line that
// names the variable and never repeats a secret.
func loadConfig(getenv func(string) string) (config, error) {
	cfg, err := loadStoreConfig(getenv)
	if err != nil {
		return config{}, err
	}
	cfg.GatewaySecret = getenv("AZEN_GATEWAY_SECRET")
	cfg.Addr = getenv("AZEN_BACKEND_ADDR")
	if cfg.GatewaySecret == "" {
		return config{}, fmt.Errorf("AZEN_GATEWAY_SECRET is required (at least %d bytes)", contract.MinSecretLen)
	}
	if _, err := contract.NewSigner(cfg.GatewaySecret); err != nil {
		return config{}, fmt.Errorf("AZEN_GATEWAY_SECRET: %v", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8081"
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return config{}, fmt.Errorf("AZEN_BACKEND_ADDR: %q is not host:port", cfg.Addr)
	}
	cfg.DrainDelay = defaultDrainDelay
	if raw := getenv("AZEN_BACKEND_DRAIN_DELAY"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 || d > time.Minute {
			return config{}, fmt.Errorf("AZEN_BACKEND_DRAIN_DELAY: %q is not a duration from 0s to 1m", raw)
		}
		cfg.DrainDelay = d
	}
	return cfg, nil
}

// loadStoreConfig reads only what the database commands (rotate-keys)
// need: AZEN_DATABASE_URL and AZEN_ENCRYPTION_KEYS.
func loadStoreConfig(getenv func(string) string) (config, error) {
	cfg := config{DatabaseURL: getenv("AZEN_DATABASE_URL")}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = sqldb.DefaultURL
	}
	if _, err := sqldb.Parse(cfg.DatabaseURL); err != nil {
		return config{}, fmt.Errorf("AZEN_DATABASE_URL: %v", err)
	}
	keys, err := parseEncryptionKeys(getenv("AZEN_ENCRYPTION_KEYS"))
	if err != nil {
		return config{}, fmt.Errorf("AZEN_ENCRYPTION_KEYS: %v", err)
	}
	cfg.EncryptionKeys = keys
	return cfg, nil
}

// parseEncryptionKeys reads comma-separated KEYID:BASE64(32 bytes).
func parseEncryptionKeys(raw string) ([]encryptionKey, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("is required: comma-separated KEYID:BASE64 of 32 bytes")
	}
	var keys []encryptionKey
	seen := map[string]bool{}
	for i, part := range strings.Split(raw, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("entry %d is not KEYID:BASE64", i+1)
		}
		if seen[id] {
			return nil, fmt.Errorf("key id %q appears twice", id)
		}
		seen[id] = true
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			key, err = base64.RawStdEncoding.DecodeString(b64)
		}
		if err != nil {
			return nil, fmt.Errorf("key %q is not valid base64", id)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("key %q is %d bytes, want 32", id, len(key))
		}
		keys = append(keys, encryptionKey{ID: id, Key: key})
	}
	return keys, nil
}
