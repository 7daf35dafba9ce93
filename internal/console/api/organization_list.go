package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// organizationList is GET /console/api/organizations.
func (a *API) organizationList(w http.ResponseWriter, r *http.Request, actor console.Actor, _ []byte) error {
	if err := noQuery(r); err != nil {
		return err
	}
	ms, err := a.svc.Organizations(r.Context(), actor)
	if err != nil {
		return err
	}
	out := make([]organizationJSON, len(ms))
	for i, m := range ms {
		out[i] = toOrganization(m)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"organizations": out})
}
