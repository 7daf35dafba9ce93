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
	HeaderKeyID          = "Azen-Key-Id" // the key's id, or the session's
	HeaderCredential     = "Azen-Credential"
	HeaderTimestamp      = "Azen-Timestamp"
	HeaderBodySHA256     = "Azen-Body-Sha256"
	HeaderSignature      = "Azen-Signature"

	// APIKeyHeader is the only place a client may put its key.
	APIKeyHeader = "Azen-Api-Key"
)

// Kinds of credential a signed identity was established with.
const (
	CredentialKey     = "key"
	CredentialSession = "session"
)

// MinSecretLen is the shortest AZEN_GATEWAY_SECRET accepted.
const MinSecretLen = 32

// MaxSignatureAge is how old a signed request may be when the backend sees it.
const MaxSignatureAge = 60 * time.Second

// EmptyBodySHA256 is the hex SHA-256 of an empty body.
const EmptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// BodySHA256 is the hex SHA-256 of a request body, as Azen-Body-Sha256
// carries it.
func BodySHA256(body []byte) string {
	if len(body) == 0 {
		return EmptyBodySHA256
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Identity is who the gateway vouches for. For a session, KeyID is the
// session's id and OrganizationID may be empty (no organization chosen yet).
type Identity struct {
	OrganizationID string
	UserID         string
	KeyID          string
	Credential     string // CredentialKey or CredentialSession
}

// Errors from Verify and CheckBody. All of them mean 401 at the backend.
var (
	ErrSignatureMissing = errors.New("request is not signed by the gateway")
	ErrSignatureInvalid = errors.New("gateway signature does not match")
	ErrSignatureExpired = errors.New("gateway signature is too old")
	ErrBodyMismatch     = errors.New("request body does not match the gateway's signature")
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
	hex [2 * sha256.Size]byte
}

// NewSigner checks the secret's length and returns a Signer.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("must be at least %d bytes, got %d", MinSecretLen, len(secret))
	}
	s := &Signer{secret: []byte(secret)}
	s.macs.New = func() any {
		return &macState{mac: hmac.New(sha256.New, s.secret), buf: make([]byte, 0, 512), sum: make([]byte, 0, sha256.Size)}
	}
	return s, nil
}

// Sign returns the hex HMAC-SHA256 over method, path, raw query string, the
// three ids, the credential kind, the Unix timestamp and the body's hex
// SHA-256 (contract §4). Fields are newline-separated: none may contain a
// newline, since all of them travel in HTTP headers or the request line.
func (s *Signer) Sign(method, path, rawQuery string, id Identity, unix int64, bodySHA256 string) string {
	st := s.macs.Get().(*macState)
	defer s.macs.Put(st)
	b := st.buf[:0]
	for _, part := range [...]string{"azen-v2", method, path, rawQuery, id.OrganizationID, id.UserID, id.KeyID, id.Credential} {
		b = append(b, part...)
		b = append(b, '\n')
	}
	b = strconv.AppendInt(b, unix, 10)
	b = append(b, '\n')
	b = append(b, bodySHA256...)
	b = append(b, '\n')
	st.buf = b
	st.mac.Reset()
	st.mac.Write(b)
	st.sum = st.mac.Sum(st.sum[:0])
	hex.Encode(st.hex[:], st.sum)
	return string(st.hex[:])
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
// identity for r's method, path, query and body (whose hex SHA-256 the
// caller computed).
func (s *Signer) SignRequest(r *http.Request, id Identity, bodySHA256 string, now time.Time) {
	StripAzenHeaders(r.Header)
	unix := now.Unix()
	// Canonical names, set directly, with one backing array for the seven
	// values: this runs on every request.
	v := make([]string, 7)
	v[0], v[1], v[2], v[3] = id.OrganizationID, id.UserID, id.KeyID, id.Credential
	v[4], v[5] = strconv.FormatInt(unix, 10), bodySHA256
	v[6] = s.Sign(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, id, unix, bodySHA256)
	h := r.Header
	h[HeaderOrganizationID] = v[0:1:1]
	h[HeaderUserID] = v[1:2:2]
	h[HeaderKeyID] = v[2:3:3]
	h[HeaderCredential] = v[3:4:4]
	h[HeaderTimestamp] = v[4:5:5]
	h[HeaderBodySHA256] = v[5:6:6]
	h[HeaderSignature] = v[6:7:7]
}

// Verify checks r's signed identity at time now and returns it with the
// body hash it was signed with; the caller checks the body against that
// hash as it reads it (CheckBody). A signature from more than
// MaxSignatureAge ago, or as far in the future, is refused.
func (s *Signer) Verify(r *http.Request, now time.Time) (Identity, string, error) {
	id := Identity{
		OrganizationID: r.Header.Get(HeaderOrganizationID),
		UserID:         r.Header.Get(HeaderUserID),
		KeyID:          r.Header.Get(HeaderKeyID),
		Credential:     r.Header.Get(HeaderCredential),
	}
	sig := r.Header.Get(HeaderSignature)
	ts := r.Header.Get(HeaderTimestamp)
	body := r.Header.Get(HeaderBodySHA256)
	if sig == "" || ts == "" || body == "" || id.UserID == "" || id.KeyID == "" || id.Credential == "" {
		return Identity{}, "", ErrSignatureMissing
	}
	switch {
	case id.Credential == CredentialKey && id.OrganizationID == "":
		return Identity{}, "", ErrSignatureMissing
	case id.Credential != CredentialKey && id.Credential != CredentialSession:
		return Identity{}, "", ErrSignatureInvalid
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Identity{}, "", ErrSignatureInvalid
	}
	want := s.Sign(r.Method, r.URL.EscapedPath(), r.URL.RawQuery, id, unix, body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return Identity{}, "", ErrSignatureInvalid
	}
	age := now.Sub(time.Unix(unix, 0))
	if age > MaxSignatureAge || age < -MaxSignatureAge {
		return Identity{}, "", ErrSignatureExpired
	}
	return id, body, nil
}

// CheckBody reports whether body hashes to the signed value.
func CheckBody(body []byte, signedSHA256 string) error {
	if !hmac.Equal([]byte(BodySHA256(body)), []byte(signedSHA256)) {
		return ErrBodyMismatch
	}
	return nil
}
