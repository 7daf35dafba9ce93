package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// organizationCreate is POST /console/api/organizations: 201
// {"organization"}. When it becomes the active one the answer carries a new
// session cookie (see package console).
func (a *API) organizationCreate(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	f, err := parse(body, false, "name")
	if err != nil {
		return err
	}
	name, _, err := f.String("name", true)
	if err != nil {
		return err
	}
	c, err := a.svc.CreateOrganization(r.Context(), actor, name)
	if err != nil {
		return err
	}
	out := map[string]any{"organization": toOrganization(c.Organization)}
	if c.Token != "" {
		console.SetSessionCookie(w, r, c.Token)
		out["activeOrganizationId"] = c.Organization.ID
	}
	return writeJSON(w, http.StatusCreated, out)
}
