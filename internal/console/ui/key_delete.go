package ui

import "net/http"

// keyDelete is POST /console/keys/{id}/delete (the page asks first).
func (u *UI) keyDelete(w http.ResponseWriter, r *http.Request, q *request) error {
	if err := u.svc.DeleteKey(r.Context(), *q.Actor, r.PathValue("id")); err != nil {
		return err
	}
	redirect(w, r, "/console/keys?done=deleted")
	return nil
}
