package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/testenv"
)

// upstream is a real HTTP server standing in for the backend behind a test
// gateway. It answers every request (200 "ok"; /readyz is always 200), keeps what it saw of the
// last one and the request ids of all, and, given a secret, verifies the
// gateway's signature with the shared contract code.
type upstream struct {
	Addr        string
	signer      *contract.Signer // nil: signatures are not checked
	likeBackend bool

	mu   sync.Mutex
	last upstreamSaw
	ids  map[string]bool
}

// upstreamSaw is what the upstream saw of one request.
type upstreamSaw struct {
	Header   http.Header
	Identity contract.Identity
	Verified error // with verifying: nil when the signature checked out
}

// APIKey is the azen-api-key header that reached the upstream.
func (s upstreamSaw) APIKey() string { return s.Header.Get(contract.APIKeyHeader) }

// AzenNames are the Azen-* headers that reached the upstream.
func (s upstreamSaw) AzenNames() []string {
	var names []string
	for name := range s.Header {
		if strings.HasPrefix(strings.ToLower(name), "azen-") {
			names = append(names, name)
		}
	}
	return names
}

type upstreamOption func(t testing.TB, u *upstream)

// verifying checks every request's signature with secret: a bad one is a
// contract 401, a good one is answered with the identity as JSON.
func verifying(secret string) upstreamOption {
	return func(t testing.TB, u *upstream) {
		signer, err := contract.NewSigner(secret)
		if err != nil {
			t.Fatal(err)
		}
		u.signer = signer
	}
}

// likeAzenBackend echoes the request id, as azen-backend does, and answers
// {"status":"success"}.
func likeAzenBackend() upstreamOption {
	return func(_ testing.TB, u *upstream) { u.likeBackend = true }
}

// startUpstream starts one on a free port until the test ends.
func startUpstream(t testing.TB, opts ...upstreamOption) *upstream {
	t.Helper()
	u := &upstream{Addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), ids: map[string]bool{}}
	for _, o := range opts {
		o(t, u)
	}
	srv := &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(mustListen(t, u.Addr))
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/readyz" {
		return // healthy, for gateways that check; not a request to record
	}
	saw := upstreamSaw{Header: r.Header.Clone()}
	if u.signer != nil {
		saw.Identity, _, saw.Verified = u.signer.Verify(r, time.Now())
	}
	id := r.Header.Get(contract.RequestIDHeader)
	u.mu.Lock()
	u.last = saw
	u.ids[id] = true
	u.mu.Unlock()
	switch {
	case saw.Verified != nil:
		contract.WriteError(w, contract.NewError(401, "bad signature: "+saw.Verified.Error()))
	case u.signer != nil:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(saw.Identity)
	case u.likeBackend:
		w.Header().Set(contract.RequestIDHeader, id)
		io.WriteString(w, `{"status":"success"}`)
	default:
		io.WriteString(w, "ok")
	}
}

// Last is what the upstream saw of the last request.
func (u *upstream) Last() upstreamSaw {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

// SawRequestID tells whether any request reached the upstream with id.
func (u *upstream) SawRequestID(id string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ids[id]
}
