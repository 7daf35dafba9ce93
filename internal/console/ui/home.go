package ui

import "net/http"

// home is GET /console/: the keys of the active organization.
func (u *UI) home(w http.ResponseWriter, r *http.Request, q *request) error {
	redirect(w, r, "/console/keys")
	return nil
}
