package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// keyNew is GET /console/keys/new: the create form.
func (u *UI) keyNew(w http.ResponseWriter, r *http.Request, q *request) error {
	u.showKeyForm(w, r, q, http.StatusOK, form.KeyDefaults())
	return nil
}

func (u *UI) showKeyForm(w http.ResponseWriter, r *http.Request, q *request, code int, f *form.State) {
	u.render(w, r, code, "key_new", view{request: q, Title: "Create an API key", Nav: "keys", Form: f,
		Data: struct{ Expiry any }{form.ExpiryChoices}})
}
