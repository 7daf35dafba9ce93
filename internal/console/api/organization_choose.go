package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// organizationChoose is POST /console/api/organizations/active: 200
// {"activeOrganizationId","organization"} with a new session cookie; not a
// member: 403.
func (a *API) organizationChoose(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	f, err := parse(body, false, "organizationId")
	if err != nil {
		return err
	}
	id, _, err := f.String("organizationId", true)
	if err != nil {
		return err
	}
	m, token, err := a.svc.ChooseOrganization(r.Context(), actor, id)
	if err != nil {
		return err
	}
	console.SetSessionCookie(w, r, token)
	return writeJSON(w, http.StatusOK, map[string]any{"activeOrganizationId": m.ID, "organization": toOrganization(m)})
}
