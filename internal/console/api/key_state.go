package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyState is POST /console/api/keys/{id}/disable and /enable: 200 {"key"};
// another organization's key is a 404.
func (a *API) keyState(enabled bool) handler {
	return func(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
		if _, err := parse(body, true); err != nil {
			return err
		}
		id, err := keyID(r)
		if err != nil {
			return err
		}
		k, err := a.svc.SetKeyEnabled(r.Context(), actor, id, enabled)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]any{"key": toKey(k)})
	}
}
