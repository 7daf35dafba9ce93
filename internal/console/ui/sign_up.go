package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// signUpShow is GET /console/sign-up.
func (u *UI) signUpShow(w http.ResponseWriter, r *http.Request, q *request) error {
	if q.Actor != nil {
		redirect(w, r, "/console/")
		return nil
	}
	u.render(w, r, http.StatusOK, "sign_up", view{Title: "Create your account", Form: form.New(nil)})
	return nil
}

// signUpCreate is a sign-up form posted to /auth/sign-up: the person is
// signed in and asked to create an organization.
func (u *UI) signUpCreate(w http.ResponseWriter, r *http.Request, q *request) error {
	f := q.Form
	signed, err := u.svc.SignUp(r.Context(), form.SignUp(f))
	if err != nil {
		if !f.Absorb(err) {
			return err
		}
		f.Values.Del("password")
		u.render(w, r, http.StatusBadRequest, "sign_up", view{Title: "Create your account", Form: f})
		return nil
	}
	console.SetSessionCookie(w, r, signed.Token)
	redirect(w, r, "/console/organizations")
	return nil
}
