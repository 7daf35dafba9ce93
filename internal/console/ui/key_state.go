package ui

import "net/http"

// keyState is POST /console/keys/{id}/disable and /enable.
func (u *UI) keyState(enabled bool) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, q *request) error {
		if _, err := u.svc.SetKeyEnabled(r.Context(), *q.Actor, r.PathValue("id"), enabled); err != nil {
			return err
		}
		done := "disabled"
		if enabled {
			done = "enabled"
		}
		redirect(w, r, "/console/keys?done="+done)
		return nil
	}
}
