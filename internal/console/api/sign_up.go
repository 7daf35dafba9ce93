package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// signUp is POST /auth/sign-up: 201 {"user"} and the session cookie.
func (a *API) signUp(w http.ResponseWriter, r *http.Request, body []byte) error {
	f, err := parse(body, false, "email", "password", "name")
	if err != nil {
		return err
	}
	var in console.SignUpInput
	for _, field := range []struct {
		name string
		dst  *string
	}{{"email", &in.Email}, {"password", &in.Password}, {"name", &in.Name}} {
		if *field.dst, _, err = f.String(field.name, true); err != nil {
			return err
		}
	}
	signed, err := a.svc.SignUp(r.Context(), in)
	if err != nil {
		return err
	}
	console.SetSessionCookie(w, r, signed.Token)
	return writeJSON(w, http.StatusCreated, map[string]any{"user": toUser(signed.User)})
}
