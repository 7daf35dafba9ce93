package azencors

import (
	"fmt"
	"net/url"
	"strings"
)

// The request headers the Azen SDK sends from a browser. x-stainless-*
// (the SDK's telemetry: lang, os, arch, runtime, retry count, timeout …)
// is a prefix; the rest are names.
var defaultAllowHeaders = []string{"azen-api-key", "content-type", "accept", "x-request-id", "x-stainless-*"}

// allowMethods are the API's methods (GET, HEAD and POST need no preflight,
// but a browser may still ask).
const allowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE"

// exposeHeaders are the response headers a page's script may read beyond
// the CORS-safelisted ones: the request id and the rate-limit fields.
const exposeHeaders = "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit, RateLimit-Policy, Retry-After"

// policy is the parsed configuration: which origins may call, with which
// request headers. It has no Caddy types, so it is tested directly.
type policy struct {
	anyOrigin bool
	origins   map[string]bool // serialised origins, lower case
	names     map[string]bool // allowed header names, lower case
	prefixes  []string        // allowed header name prefixes ("x-stainless-")
}

func newPolicy(origins, extraHeaders []string) (*policy, error) {
	p := &policy{origins: map[string]bool{}, names: map[string]bool{}}
	for _, o := range origins {
		if o == "*" {
			p.anyOrigin = true
			continue
		}
		norm, err := NormalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		if p.origins[norm] {
			return nil, fmt.Errorf("origin %s is listed twice", norm)
		}
		p.origins[norm] = true
	}
	for _, h := range append(append([]string{}, defaultAllowHeaders...), extraHeaders...) {
		if err := checkHeaderPattern(h); err != nil {
			return nil, err
		}
		h = strings.ToLower(h)
		if prefix, ok := strings.CutSuffix(h, "*"); ok {
			p.prefixes = append(p.prefixes, prefix)
		} else {
			p.names[h] = true
		}
	}
	return p, nil
}

// none reports whether no origin may call.
func (p *policy) none() bool { return !p.anyOrigin && len(p.origins) == 0 }

// allowsOrigin reports whether a page of origin (the Origin header) may
// call.
func (p *policy) allowsOrigin(origin string) bool {
	if p.anyOrigin {
		return origin != "" && origin != "null"
	}
	return p.origins[strings.ToLower(origin)]
}

// allowsHeader reports whether a request header may be sent.
func (p *policy) allowsHeader(name string) bool {
	name = strings.ToLower(name)
	if p.names[name] {
		return true
	}
	for _, prefix := range p.prefixes {
		if strings.HasPrefix(name, prefix) && len(name) > len(prefix) {
			return true
		}
	}
	return false
}

// NormalizeOrigin checks that s is an origin as browsers send it in the
// Origin header (scheme://host[:port], http or https, no path, query or
// user) and returns it in lower case.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("origin %q: want scheme://host[:port] with http or https, such as https://app.example.com", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "/") || strings.Contains(s, "?") || strings.Contains(s, "#") {
		return "", fmt.Errorf("origin %q: an origin has no user, path, query or fragment (as in https://app.example.com)", s)
	}
	if u.Port() == "" && strings.HasSuffix(u.Host, ":") {
		return "", fmt.Errorf("origin %q: empty port", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// checkHeaderPattern checks a header name, or a prefix ending in '*'.
func checkHeaderPattern(h string) error {
	name, _ := strings.CutSuffix(h, "*")
	if name == "" || strings.Contains(name, "*") {
		return fmt.Errorf("header %q: want a header name, or a prefix ending in * such as x-stainless-*", h)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("header %q: not a valid header name", h)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
