package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// sessionShow is GET /auth/session.
func (a *API) sessionShow(w http.ResponseWriter, r *http.Request, actor console.Actor, _ []byte) error {
	if err := noQuery(r); err != nil {
		return err
	}
	u, err := a.svc.CurrentUser(r.Context(), actor)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toSession(u, actor.OrganizationID))
}
