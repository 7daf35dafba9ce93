package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/ids"
)

// Routes registers the API on mux. The pages' sign-up, sign-in and
// sign-out forms post to the same /auth/ routes as the API (they are the
// routes the gateway limits and protects); forms holds, by pattern, the
// page handlers that answer a form post there with HTML.
func (a *API) Routes(mux *http.ServeMux, forms map[string]http.Handler) {
	withForms := func(pattern string, h http.Handler) {
		if f, ok := forms[pattern]; ok {
			mux.Handle(pattern, formOr(f, h))
			return
		}
		mux.Handle(pattern, h)
	}
	withForms("POST /auth/sign-up", a.anonymous(a.signUp))
	withForms("POST /auth/sign-in", a.anonymous(a.signIn))
	withForms("POST /auth/sign-out", a.optional(a.signOut))
	mux.Handle("GET /auth/session", a.signed(a.sessionShow))

	mux.Handle("GET /console/api/organizations", a.signed(a.organizationList))
	mux.Handle("POST /console/api/organizations", a.signed(a.organizationCreate))
	mux.Handle("POST /console/api/organizations/active", a.signed(a.organizationChoose))
	mux.Handle("POST /console/api/account/password", a.signed(a.passwordChange))

	mux.Handle("GET /console/api/keys", a.signed(a.keyList))
	mux.Handle("POST /console/api/keys", a.signed(a.keyCreate))
	mux.Handle("GET /console/api/keys/{id}", a.signed(a.keyShow))
	mux.Handle("PATCH /console/api/keys/{id}", a.signed(a.keyUpdate))
	mux.Handle("DELETE /console/api/keys/{id}", a.signed(a.keyDelete))
	mux.Handle("POST /console/api/keys/{id}/disable", a.signed(a.keyState(false)))
	mux.Handle("POST /console/api/keys/{id}/enable", a.signed(a.keyState(true)))
	mux.Handle("POST /console/api/keys/{id}/reroll", a.signed(a.keyReroll))

	mux.Handle("GET /console/api/usage", a.signed(a.usageShow))
}

// formOr sends HTML form posts to form and everything else to json.
func formOr(form, json http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if console.IsForm(r) {
			form.ServeHTTP(w, r)
			return
		}
		json.ServeHTTP(w, r)
	})
}

func validUUID(s string) bool { return ids.Valid(s) }
