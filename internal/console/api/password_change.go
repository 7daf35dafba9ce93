package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// passwordChange is POST /console/api/account/password (our addition):
// {"currentPassword","newPassword"} → 200 {"status":"success"}. Every
// session of the person ends on every gateway; this browser gets a new one.
func (a *API) passwordChange(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	f, err := parse(body, false, "currentPassword", "newPassword")
	if err != nil {
		return err
	}
	var in console.ChangePasswordInput
	if in.CurrentPassword, _, err = f.String("currentPassword", true); err != nil {
		return err
	}
	if in.NewPassword, _, err = f.String("newPassword", true); err != nil {
		return err
	}
	signed, err := a.svc.ChangePassword(r.Context(), actor, in)
	if err != nil {
		return err
	}
	console.SetSessionCookie(w, r, signed.Token)
	return writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}
