package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// sealedPayload is everything about a memory that could reveal its words:
// the content, the metadata and the dedupKey travel together in one
// AES-256-GCM ciphertext. Only ids, timestamps and keyed hashes stay in the
// clear.
type sealedPayload struct {
	Content  string          `json:"c"`
	Metadata json.RawMessage `json:"m,omitempty"`
	DedupKey string          `json:"d,omitempty"`
}

// errUnknownKey means a row was sealed with a key id that is no longer
// configured in AZEN_ENCRYPTION_KEYS.
var errUnknownKey = errors.New("encryption key not configured")

// keyring holds the encryption keys: the first seals, all open. Each key also
// yields, through HKDF, its own blind-index key: a row's search terms and
// dedupKey hash are made with the index key of the key that sealed it, so
// rotating the encryption key rotates the index key with it.
type keyring struct {
	current string
	keys    map[string]*ringKey
	order   []string
}

type ringKey struct {
	id       string
	aead     cipher.AEAD
	indexKey []byte
}

func newKeyring(keys []encryptionKey) (*keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no encryption key")
	}
	kr := &keyring{current: keys[0].ID, keys: make(map[string]*ringKey, len(keys))}
	for _, k := range keys {
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		ik, err := hkdf.Key(sha256.New, k.Key, nil, "azen blind index v1", 32)
		if err != nil {
			return nil, fmt.Errorf("key %q: derive index key: %w", k.ID, err)
		}
		kr.keys[k.ID] = &ringKey{id: k.ID, aead: aead, indexKey: ik}
		kr.order = append(kr.order, k.ID)
	}
	return kr, nil
}

// aad binds a ciphertext to its row: moving it to another memory or
// organization makes it fail to open.
func aad(memoryID, orgID string) []byte {
	return []byte("azen-memory-v1\x00" + memoryID + "\x00" + orgID)
}

// seal encrypts p with the current key; the result is nonce || ciphertext.
func (kr *keyring) seal(memoryID, orgID string, p sealedPayload) (keyID string, blob []byte, err error) {
	plain, err := json.Marshal(p)
	if err != nil {
		return "", nil, fmt.Errorf("encode payload: %w", err)
	}
	k := kr.keys[kr.current]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("nonce: %w", err)
	}
	return k.id, k.aead.Seal(nonce, nonce, plain, aad(memoryID, orgID)), nil
}

// open decrypts a row sealed with keyID.
func (kr *keyring) open(memoryID, orgID, keyID string, blob []byte) (sealedPayload, error) {
	k, ok := kr.keys[keyID]
	if !ok {
		return sealedPayload{}, fmt.Errorf("memory %s: key %q: %w", memoryID, keyID, errUnknownKey)
	}
	ns := k.aead.NonceSize()
	if len(blob) < ns+k.aead.Overhead() {
		return sealedPayload{}, fmt.Errorf("memory %s: ciphertext too short", memoryID)
	}
	plain, err := k.aead.Open(nil, blob[:ns], blob[ns:], aad(memoryID, orgID))
	if err != nil {
		return sealedPayload{}, fmt.Errorf("memory %s: decrypt with key %q: %w", memoryID, keyID, err)
	}
	var p sealedPayload
	if err := json.Unmarshal(plain, &p); err != nil {
		return sealedPayload{}, fmt.Errorf("memory %s: decode payload: %w", memoryID, err)
	}
	return p, nil
}

// tokenLen is the length of a stored keyed hash: 128 bits is far beyond any
// collision risk for the terms of one organization.
const tokenLen = 16

// token is the blind-index entry for one normalised term (kind "t") or a
// dedupKey (kind "d"), scoped to the organization so equal words of two
// organizations never share a token.
func (k *ringKey) token(kind, orgID, value string) []byte {
	mac := hmac.New(sha256.New, k.indexKey)
	mac.Write([]byte(kind))
	mac.Write([]byte{0})
	mac.Write([]byte(orgID))
	mac.Write([]byte{0})
	mac.Write([]byte(value))
	return mac.Sum(nil)[:tokenLen]
}

// currentToken hashes with the index key of the sealing key.
func (kr *keyring) currentToken(kind, orgID, value string) []byte {
	return kr.keys[kr.current].token(kind, orgID, value)
}

// allTokens hashes value under every configured key: rows not yet rotated
// carry tokens of an older key, and search and dedup must still find them.
func (kr *keyring) allTokens(kind, orgID, value string) [][]byte {
	out := make([][]byte, 0, len(kr.order))
	for _, id := range kr.order {
		out = append(out, kr.keys[id].token(kind, orgID, value))
	}
	return out
}
