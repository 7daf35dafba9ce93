package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/account"
)

// CookieMaxAge bounds how long a browser keeps the session cookie. The
// session itself ends after SessionTTL without use (sliding, decided at the
// gateway); the cookie only needs to outlive an active session, which this
// caps at 30 days before the person signs in again.
const CookieMaxAge = 30 * 24 * time.Hour

// secure reports whether the browser reached the site over HTTPS: the
// gateway says so in X-Forwarded-Proto.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
}

// SetSessionCookie gives the browser its session (contract §9: HttpOnly,
// SameSite=Lax, Path=/, Secure over HTTPS).
func SetSessionCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: account.CookieName, Value: token, Path: "/", MaxAge: int(CookieMaxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r),
	})
	w.Header().Set("Cache-Control", "no-store")
}

// ClearSessionCookie removes it.
func ClearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: account.CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secure(r),
	})
	w.Header().Set("Cache-Control", "no-store")
}

// IsForm reports whether a request carries an HTML form rather than JSON.
func IsForm(r *http.Request) bool {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}
