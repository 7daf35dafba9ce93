package azenauth

import (
	"net/http"
	"strings"

	"github.com/azen-sh/gateway/internal/account"
)

// crossOrigin is net/http's CrossOriginProtection: a state-changing request
// (not GET, HEAD or OPTIONS) whose Sec-Fetch-Site says another site, or
// whose Origin names another host, is refused. Requests from non-browser
// clients carry neither header and pass; they cannot ride on a person's
// cookie anyway.
var crossOrigin = http.NewCrossOriginProtection()

// msgCrossOrigin is the 403 of a forged cross-site request.
const msgCrossOrigin = "Cross-origin request refused: the console accepts changes only from its own pages."

// needsOriginCheck reports whether a request must come from our own pages:
// every request that a session cookie would authenticate, and the
// anonymous /auth/ forms (a forged sign-in would sign a victim into the
// attacker's account). API-key requests are never checked (contract §9).
func needsOriginCheck(a access, hasCookie bool) bool {
	return hasCookie || a == accessAnonymous
}

// sessionCookie returns the azen_session cookie's value and whether one
// was sent (several count as one: the first).
func sessionCookie(r *http.Request) (string, bool) {
	if len(r.Header["Cookie"]) == 0 {
		return "", false
	}
	c, err := r.Cookie(account.CookieName)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

// dropSessionCookie removes azen_session from the Cookie header, so the
// secret does not travel past the gateway (the upstream gets the signed
// identity instead), and keeps every other cookie.
func dropSessionCookie(r *http.Request) {
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return
	}
	kept := lines[:0:0]
	for _, line := range lines {
		var parts []string
		for _, part := range strings.Split(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name != account.CookieName {
				parts = append(parts, strings.TrimSpace(part))
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if len(kept) == 0 {
		r.Header.Del("Cookie")
		return
	}
	r.Header["Cookie"] = kept
}
