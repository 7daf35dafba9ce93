package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// organizationCreate is POST /console/organizations.
func (u *UI) organizationCreate(w http.ResponseWriter, r *http.Request, q *request) error {
	c, err := u.svc.CreateOrganization(r.Context(), *q.Actor, q.Form.Value("name"))
	if err != nil {
		if !q.Form.Absorb(err) {
			return err
		}
		u.render(w, r, http.StatusBadRequest, "organizations", view{request: q, Title: "Organizations", Nav: "organizations"})
		return nil
	}
	if c.Token != "" {
		console.SetSessionCookie(w, r, c.Token)
		redirect(w, r, "/console/keys?done=created")
		return nil
	}
	redirect(w, r, "/console/organizations?done=created")
	return nil
}
