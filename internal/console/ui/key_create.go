package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// keyCreate is POST /console/keys: the new key is shown once, on this
// answer (never in a URL or a redirect).
func (u *UI) keyCreate(w http.ResponseWriter, r *http.Request, q *request) error {
	in, ok := form.NewKey(q.Form)
	if ok {
		k, plain, err := u.svc.CreateKey(r.Context(), *q.Actor, in)
		if err == nil {
			u.showSecret(w, r, q, k, plain, "Your new API key")
			return nil
		}
		if !q.Form.Absorb(err) {
			return err
		}
	}
	u.showKeyForm(w, r, q, http.StatusBadRequest, q.Form)
	return nil
}

// showSecret shows a key's plaintext, the only time it is shown.
func (u *UI) showSecret(w http.ResponseWriter, r *http.Request, q *request, k console.KeyView, plain, title string) {
	u.render(w, r, http.StatusOK, "key_secret", view{request: q, Title: title, Nav: "keys", Data: struct {
		Key   console.KeyView
		Plain string
	}{k, plain}})
}
