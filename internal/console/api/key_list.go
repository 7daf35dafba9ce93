package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyList is GET /console/api/keys: the active organization's keys.
func (a *API) keyList(w http.ResponseWriter, r *http.Request, actor console.Actor, _ []byte) error {
	if err := noQuery(r); err != nil {
		return err
	}
	keys, err := a.svc.ListKeys(r.Context(), actor)
	if err != nil {
		return err
	}
	out := make([]keyJSON, len(keys))
	for i, k := range keys {
		out[i] = toKey(k)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}
