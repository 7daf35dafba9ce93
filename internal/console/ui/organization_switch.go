package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// organizationSwitch is POST /console/organizations/active: a new session
// in the chosen organization.
func (u *UI) organizationSwitch(w http.ResponseWriter, r *http.Request, q *request) error {
	_, token, err := u.svc.ChooseOrganization(r.Context(), *q.Actor, q.Form.Value("organizationId"))
	if err != nil {
		return err
	}
	console.SetSessionCookie(w, r, token)
	redirect(w, r, "/console/keys?done=switched")
	return nil
}
