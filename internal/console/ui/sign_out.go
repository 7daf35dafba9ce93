package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// signOut is the sign-out form posted to /auth/sign-out.
func (u *UI) signOut(w http.ResponseWriter, r *http.Request, q *request) error {
	if q.Actor != nil {
		if err := u.svc.SignOut(r.Context(), *q.Actor); err != nil {
			return err
		}
	}
	console.ClearSessionCookie(w, r)
	redirect(w, r, "/console/sign-in?done=signed-out")
	return nil
}
