package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/apikey"
)

// keyList is GET /console/keys.
func (u *UI) keyList(w http.ResponseWriter, r *http.Request, q *request) error {
	keys, err := u.svc.ListKeys(r.Context(), *q.Actor)
	if err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "keys", view{request: q, Title: "API keys", Nav: "keys", Data: struct {
		Keys     any
		CanWrite bool
	}{keys, q.Actor.Can(apikey.KeysWrite)}})
	return nil
}
