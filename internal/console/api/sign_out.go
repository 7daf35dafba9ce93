package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// signOut is POST /auth/sign-out: the session ends on every gateway and the
// cookie is cleared. Without a valid session there is nothing to end; the
// cookie is cleared all the same.
func (a *API) signOut(w http.ResponseWriter, r *http.Request, actor *console.Actor) error {
	if actor != nil && actor.IsSession() {
		if err := a.svc.SignOut(r.Context(), *actor); err != nil {
			return err
		}
	}
	console.ClearSessionCookie(w, r)
	return writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}
