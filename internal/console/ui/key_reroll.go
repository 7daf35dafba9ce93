package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// keyRerollShow is GET /console/keys/{id}/reroll: choose a grace period.
func (u *UI) keyRerollShow(w http.ResponseWriter, r *http.Request, q *request) error {
	if !q.Actor.Can(apikey.KeysWrite) {
		return console.ErrForbiddenRole(*q.Actor, apikey.KeysWrite)
	}
	k, err := u.svc.Key(r.Context(), *q.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	f := form.New(nil)
	f.Values.Set("gracePeriod", "3600")
	u.showRerollForm(w, r, q, http.StatusOK, k, f)
	return nil
}

func (u *UI) showRerollForm(w http.ResponseWriter, r *http.Request, q *request, code int, k console.KeyView, f *form.State) {
	u.render(w, r, code, "key_reroll", view{request: q, Title: "Reroll " + k.Name, Nav: "keys", Form: f,
		Data: struct {
			Key   console.KeyView
			Grace any
		}{k, form.GraceChoices}})
}

// keyReroll is POST /console/keys/{id}/reroll: the new secret is shown once.
func (u *UI) keyReroll(w http.ResponseWriter, r *http.Request, q *request) error {
	grace, ok := form.Grace(q.Form)
	if ok {
		k, plain, err := u.svc.RerollKey(r.Context(), *q.Actor, r.PathValue("id"), grace)
		if err == nil {
			u.showSecret(w, r, q, k, plain, "Your rerolled API key")
			return nil
		}
		if !q.Form.Absorb(err) {
			return err
		}
	}
	k, err := u.svc.Key(r.Context(), *q.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	u.showRerollForm(w, r, q, http.StatusBadRequest, k, q.Form)
	return nil
}
