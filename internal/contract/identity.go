package contract

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Headers the gateway adds after a successful authentication. Clients can
// never set them: the gateway strips every client-sent Azen-* header first.
const (
	HeaderOrganizationID = "Azen-Organization-Id"
	HeaderUserID         = "Azen-User-Id"
	HeaderKeyID          = "Azen-Key-Id"
	HeaderTimestamp      = "Azen-Timestamp"
	HeaderSignature      = "Azen-Signature"

	// APIKeyHeader is the only place a client may put its key.
	APIKeyHeader = "Azen-Api-Key"
)

// MinSecretLen is the shortest AZEN_GATEWAY_SECRET accepted.
const MinSecretLen = 32

// MaxSignatureAge is how old a signed request may be when the backend sees it.
const MaxSignatureAge = 60 * time.Second

// Identity is who the gateway vouches for.
type Identity struct {
	OrganizationID string
	UserID         string
	KeyID          string
}

// Errors from Verify. All of them mean 401 at the backend.
var (
	ErrSignatureMissing = errors.New("request is not signed by the gateway")
	ErrSignatureInvalid = errors.New("gateway signature does not match")
	ErrSignatureExpired = errors.New("gateway signature is too old")
)

// Signer signs and verifies forwarded identities with the shared secret.
type Signer struct {
	secret []byte
	macs   sync.Pool // of *macState: signing sits on every request's path
}

type macState struct {
	mac hash.Hash
	buf []byte
	sum []byte
}

// NewSigner checks the secret's length and returns a Signer.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	s := &Signer{secret: []byte(secret)}
	s.macs.New = func() any {
		return &macState{mac: hmac.New(sha256.New, s.secret), buf: make([]byte, 0, 256), sum: make([]byte, 0, sha256.Size)}
	}
	return s, nil
}

// Sign returns the hex HMAC-SHA256 over method, path, the three ids and the
// Unix timestamp. Fields are newline-separated: none may contain a newline,
// since all of them travel in HTTP headers or the request line.
func (s *Signer) Sign(method, path string, id Identity, unix int64) string {
	st := s.macs.Get().(*macState)
	defer s.macs.Put(st)
	b := st.buf[:0]
	for _, part := range [...]string{"azen-v1", method, path, id.OrganizationID, id.UserID, id.KeyID} {
		b = append(b, part...)
		b = append(b, '\n')
	}
	b = strconv.AppendInt(b, unix, 10)
	b = append(b, '\n')
	st.buf = b
	st.mac.Reset()
	st.mac.Write(b)
	st.sum = st.mac.Sum(st.sum[:0])
	return hex.EncodeToString(st.sum)
}

// StripAzenHeaders removes every Azen-* header, the key header included, so
// that nothing a client sent can pass for gateway-made identity.
func StripAzenHeaders(h http.Header) {
	for name := range h {
		if len(name) >= 5 && strings.EqualFold(name[:5], "azen-") {
			delete(h, name)
		}
	}
}

// SignRequest replaces any client-sent Azen-* headers with the signed
// identity for r's method and path.
func (s *Signer) SignRequest(r *http.Request, id Identity, now time.Time) {
	StripAzenHeaders(r.Header)
	unix := now.Unix()
	r.Header.Set(HeaderOrganizationID, id.OrganizationID)
	r.Header.Set(HeaderUserID, id.UserID)
	r.Header.Set(HeaderKeyID, id.KeyID)
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
	r.Header.Set(HeaderSignature, s.Sign(r.Method, r.URL.EscapedPath(), id, unix))
}

// Verify checks r's signed identity at time now. A signature from more than
// MaxSignatureAge ago, or as far in the future, is refused.
func (s *Signer) Verify(r *http.Request, now time.Time) (Identity, error) {
	id := Identity{
		OrganizationID: r.Header.Get(HeaderOrganizationID),
		UserID:         r.Header.Get(HeaderUserID),
		KeyID:          r.Header.Get(HeaderKeyID),
	}
	sig := r.Header.Get(HeaderSignature)
	ts := r.Header.Get(HeaderTimestamp)
	if sig == "" || ts == "" || id.OrganizationID == "" || id.UserID == "" || id.KeyID == "" {
		return Identity{}, ErrSignatureMissing
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Identity{}, ErrSignatureInvalid
	}
	want := s.Sign(r.Method, r.URL.EscapedPath(), id, unix)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return Identity{}, ErrSignatureInvalid
	}
	age := now.Sub(time.Unix(unix, 0))
	if age > MaxSignatureAge || age < -MaxSignatureAge {
		return Identity{}, ErrSignatureExpired
	}
	return id, nil
}
