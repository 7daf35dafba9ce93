package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyShow is GET /console/api/keys/{id} (our addition).
func (a *API) keyShow(w http.ResponseWriter, r *http.Request, actor console.Actor, _ []byte) error {
	id, err := keyID(r)
	if err != nil {
		return err
	}
	k, err := a.svc.Key(r.Context(), actor, id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"key": toKey(k)})
}
