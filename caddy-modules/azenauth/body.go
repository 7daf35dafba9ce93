package azenauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/azen-sh/gateway/internal/contract"
)

// DefaultMaxBody bounds a request body: the backend's own limit (§8).
const DefaultMaxBody = 1 << 20

// readBody reads the whole request body, at most max bytes, before any
// upstream is chosen, and puts it back in memory with a known length. A
// client's bad body (too large, malformed chunked encoding, an upload that
// stalls or breaks off) is thus answered here with a 400 and can never look
// like a failure of the replica it would have been streamed to. It returns
// the body's SHA-256 for the signature.
func readBody(w http.ResponseWriter, r *http.Request, max int64) (string, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 && len(r.TransferEncoding) == 0 {
		r.Body = http.NoBody
		return contract.EmptyBodySHA256, nil
	}
	if r.ContentLength > max {
		linger(w, r, max)
		return "", bodyError(w, r, fmt.Sprintf("Request body must not exceed %s.", sizeText(max)), nil)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, max+1))
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", bodyError(w, r, "Request body was not received in time.", err)
		}
		return "", bodyError(w, r, "Request body could not be read: the upload was malformed or broke off.", err)
	}
	if int64(buf.Len()) > max {
		linger(w, r, max)
		return "", bodyError(w, r, fmt.Sprintf("Request body must not exceed %s.", sizeText(max)), nil)
	}
	body := buf.Bytes()
	_ = r.Body.Close()
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	r.Header.Del("Expect") // the body is here: the upstream need not be asked
	if len(body) == 0 {
		r.Body = http.NoBody
		r.GetBody = nil
		return contract.EmptyBodySHA256, nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return contract.BodySHA256(body), nil
}

// Lingering on a body that is too large: the client is usually still
// sending it, and closing a connection with unread data makes the kernel
// reset it, which can destroy the answer before the client reads it. So the
// gateway reads and discards a bounded amount more (RFC 9112 §9.6's
// lingering close) before it answers and closes.
const (
	lingerFactor = 4               // up to 4 × max_body more bytes
	lingerTime   = 2 * time.Second // for at most this long
)

// linger discards what the client is still sending of a body that is too
// large, within the bounds above.
func linger(w http.ResponseWriter, r *http.Request, max int64) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(lingerTime)); err != nil {
		return // cannot bound it in time: do not read at all
	}
	_, _ = io.CopyN(io.Discard, r.Body, lingerFactor*max)
	_ = rc.SetReadDeadline(time.Time{})
}

// bodyError is the 400 for a body that was refused. The rest of such a body
// is not read, so the connection is closed after the answer; closing the
// body first lets Go's server close it gently (it half-closes and waits
// before the reset that unread data would cause), so the client still reads
// the answer while it is sending.
func bodyError(w http.ResponseWriter, r *http.Request, message string, cause error) error {
	_ = r.Body.Close()
	w.Header().Set("Connection", "close")
	if cause != nil {
		return caddyhttp.Error(http.StatusBadRequest, errors.Join(contract.Public(message), cause))
	}
	return caddyhttp.Error(http.StatusBadRequest, contract.Public(message))
}

// sizeText is a byte count as an operator wrote it: "1 MiB", "512 KiB".
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
