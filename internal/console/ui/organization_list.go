package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// organizationList is GET /console/organizations: switch, or create one.
func (u *UI) organizationList(w http.ResponseWriter, r *http.Request, q *request) error {
	u.render(w, r, http.StatusOK, "organizations", view{request: q, Title: "Organizations", Nav: "organizations", Form: form.New(nil)})
	return nil
}
