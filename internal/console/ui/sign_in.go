package ui

import (
	"errors"
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// signInShow is GET /console/sign-in.
func (u *UI) signInShow(w http.ResponseWriter, r *http.Request, q *request) error {
	if q.Actor != nil {
		redirect(w, r, "/console/")
		return nil
	}
	u.showSignIn(w, r, nil, http.StatusOK, "")
	return nil
}

// showSignIn renders the sign-in form; it posts to /auth/sign-in, the
// route the gateway limits per client address.
func (u *UI) showSignIn(w http.ResponseWriter, r *http.Request, f *form.State, code int, msg string) {
	if f == nil {
		f = form.New(nil)
		next := r.URL.RequestURI()
		if r.Method != http.MethodGet || r.URL.Path == "/console/sign-in" {
			next = r.URL.Query().Get("next")
		}
		f.Values.Set("next", safeNext(next))
	}
	f.Message = msg
	u.render(w, r, code, "sign_in", view{Title: "Sign in", Form: f})
}

// signInCheck is a sign-in form posted to /auth/sign-in: 303 to the page
// asked for, or the form again with 401 "Invalid email or password" (a
// failed attempt the gateway counts).
func (u *UI) signInCheck(w http.ResponseWriter, r *http.Request, q *request) error {
	f := q.Form
	signed, err := u.svc.SignIn(r.Context(), f.Value("email"), f.Value("password"))
	if errors.Is(err, console.ErrInvalidLogin) {
		f.Values.Del("password")
		u.showSignIn(w, r, f, http.StatusUnauthorized, console.ErrInvalidLogin.Message)
		return nil
	}
	if err != nil {
		return err
	}
	console.SetSessionCookie(w, r, signed.Token)
	next := safeNext(f.Value("next"))
	if signed.ActiveOrganizationID == "" {
		next = "/console/organizations"
	}
	redirect(w, r, next)
	return nil
}
