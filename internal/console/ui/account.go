package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// accountShow is GET /console/account: who is signed in, and the password form.
func (u *UI) accountShow(w http.ResponseWriter, r *http.Request, q *request) error {
	u.render(w, r, http.StatusOK, "account", view{request: q, Title: "Account", Nav: "account", Form: form.New(nil)})
	return nil
}

// passwordChange is POST /console/account/password.
func (u *UI) passwordChange(w http.ResponseWriter, r *http.Request, q *request) error {
	in, ok := form.Password(q.Form)
	if ok {
		signed, err := u.svc.ChangePassword(r.Context(), *q.Actor, in)
		if err == nil {
			console.SetSessionCookie(w, r, signed.Token)
			redirect(w, r, "/console/account?done=password")
			return nil
		}
		if !q.Form.Absorb(err) {
			return err
		}
	}
	for _, f := range []string{"currentPassword", "newPassword", "confirmPassword"} {
		q.Form.Values.Del(f)
	}
	u.render(w, r, http.StatusBadRequest, "account", view{request: q, Title: "Account", Nav: "account"})
	return nil
}
