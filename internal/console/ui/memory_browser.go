package ui

import "net/http"

// memoryBrowser is GET /console/memories: the page's script lists,
// searches, shows and deletes the organization's memories through
// /api/v1, with the session cookie (contract §9).
func (u *UI) memoryBrowser(w http.ResponseWriter, r *http.Request, q *request) error {
	u.render(w, r, http.StatusOK, "memories", view{request: q, Title: "Memories", Nav: "memories"})
	return nil
}
