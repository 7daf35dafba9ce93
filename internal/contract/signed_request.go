package contract

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"time"
)

// Errors of ReadSigned about the body itself (400s); every other error it
// returns is a signature error (401).
var (
	ErrBodyTooLarge   = errors.New("request body is too large")
	ErrBodyUnreadable = errors.New("request body could not be read")
)

// ReadSigned is the backend's one check of a forwarded request: it verifies
// the gateway's signature at now, reads the body (at most limit bytes) and
// checks it against the signed hash, then puts the bytes back in r.Body so
// handlers read exactly what was signed. Every route that trusts an
// identity (the memory API, the console's API and pages) calls it.
func (s *Signer) ReadSigned(w http.ResponseWriter, r *http.Request, now time.Time, limit int64) (Identity, []byte, error) {
	id, signedBody, err := s.Verify(r, now)
	if err != nil {
		return Identity{}, nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Identity{}, nil, ErrBodyTooLarge
		}
		return Identity{}, nil, ErrBodyUnreadable
	}
	if err := CheckBody(body, signedBody); err != nil {
		return Identity{}, nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return id, body, nil
}

// IsBodyError reports whether err from ReadSigned is about the body's size
// or reading (a 400), not about the signature (a 401).
func IsBodyError(err error) bool {
	return errors.Is(err, ErrBodyTooLarge) || errors.Is(err, ErrBodyUnreadable)
}
