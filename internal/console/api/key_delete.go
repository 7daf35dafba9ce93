package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyDelete is DELETE /console/api/keys/{id}: 200
// {"status":"success","deleted":true}.
func (a *API) keyDelete(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	if _, err := parse(body, true); err != nil {
		return err
	}
	id, err := keyID(r)
	if err != nil {
		return err
	}
	if err := a.svc.DeleteKey(r.Context(), actor, id); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"status": "success", "deleted": true})
}
