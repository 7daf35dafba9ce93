package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// signIn is POST /auth/sign-in: 200 {"user","activeOrganizationId"} and the
// cookie, or 401 "Invalid email or password" (which the gateway counts
// against the client's address).
func (a *API) signIn(w http.ResponseWriter, r *http.Request, body []byte) error {
	f, err := parse(body, false, "email", "password")
	if err != nil {
		return err
	}
	email, _, err := f.String("email", true)
	if err != nil {
		return err
	}
	password, _, err := f.String("password", true)
	if err != nil {
		return err
	}
	signed, err := a.svc.SignIn(r.Context(), email, password)
	if err != nil {
		return err
	}
	console.SetSessionCookie(w, r, signed.Token)
	return writeJSON(w, http.StatusOK, toSession(signed.User, signed.ActiveOrganizationID))
}
