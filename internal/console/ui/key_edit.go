package ui

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

// keyEdit is GET /console/keys/{id}/edit.
func (u *UI) keyEdit(w http.ResponseWriter, r *http.Request, q *request) error {
	if !q.Actor.Can(apikey.KeysWrite) {
		return console.ErrForbiddenRole(*q.Actor, apikey.KeysWrite)
	}
	k, err := u.svc.Key(r.Context(), *q.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	u.showEditForm(w, r, q, http.StatusOK, k, form.KeyValues(k.Key))
	return nil
}

func (u *UI) showEditForm(w http.ResponseWriter, r *http.Request, q *request, code int, k console.KeyView, f *form.State) {
	u.render(w, r, code, "key_edit", view{request: q, Title: "Edit " + k.Name, Nav: "keys", Form: f, Data: k})
}

// keyUpdate is POST /console/keys/{id}/edit.
func (u *UI) keyUpdate(w http.ResponseWriter, r *http.Request, q *request) error {
	k, err := u.svc.Key(r.Context(), *q.Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	patch, ok := form.EditKey(q.Form)
	if ok {
		_, err := u.svc.UpdateKey(r.Context(), *q.Actor, k.ID, patch)
		if err == nil {
			redirect(w, r, "/console/keys?done=updated")
			return nil
		}
		if !q.Form.Absorb(err) {
			return err
		}
	}
	u.showEditForm(w, r, q, http.StatusBadRequest, k, q.Form)
	return nil
}
