package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyReroll is POST /console/api/keys/{id}/reroll with gracePeriod
// (seconds, 0–86400, default 0): 200 {"key":{…,"key":"azen_…"}} with the new
// secret, shown once; the old one works until the grace period ends.
func (a *API) keyReroll(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	id, err := keyID(r)
	if err != nil {
		return err
	}
	f, err := parse(body, true, "gracePeriod")
	if err != nil {
		return err
	}
	grace, _, err := f.Int("gracePeriod", 0, console.MaxGracePeriod)
	if err != nil {
		return err
	}
	k, plain, err := a.svc.RerollKey(r.Context(), actor, id, grace)
	if err != nil {
		return err
	}
	j := toKey(k)
	j.Key = plain
	return writeJSON(w, http.StatusOK, map[string]any{"key": j})
}
