package ui

import "net/http"

// Routes registers the pages on mux.
func (u *UI) Routes(mux *http.ServeMux) {
	mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusSeeOther))
	mux.Handle("GET /console/{$}", u.page(needOrg, u.home))
	mux.Handle("GET /console/static/", Static())
	mux.Handle("GET /console/sign-in", u.page(anyone, u.signInShow))
	mux.Handle("GET /console/sign-up", u.page(anyone, u.signUpShow))

	mux.Handle("GET /console/organizations", u.page(needSession, u.organizationList))
	mux.Handle("POST /console/organizations", u.page(needSession, u.organizationCreate))
	mux.Handle("POST /console/organizations/active", u.page(needSession, u.organizationSwitch))

	mux.Handle("GET /console/keys", u.page(needOrg, u.keyList))
	mux.Handle("GET /console/keys/new", u.page(needOrg, u.keyNew))
	mux.Handle("POST /console/keys", u.page(needOrg, u.keyCreate))
	mux.Handle("GET /console/keys/{id}/edit", u.page(needOrg, u.keyEdit))
	mux.Handle("POST /console/keys/{id}/edit", u.page(needOrg, u.keyUpdate))
	mux.Handle("GET /console/keys/{id}/reroll", u.page(needOrg, u.keyRerollShow))
	mux.Handle("POST /console/keys/{id}/reroll", u.page(needOrg, u.keyReroll))
	mux.Handle("POST /console/keys/{id}/disable", u.page(needOrg, u.keyState(false)))
	mux.Handle("POST /console/keys/{id}/enable", u.page(needOrg, u.keyState(true)))
	mux.Handle("POST /console/keys/{id}/delete", u.page(needOrg, u.keyDelete))

	mux.Handle("GET /console/usage", u.page(needOrg, u.usageShow))
	mux.Handle("GET /console/memories", u.page(needOrg, u.memoryBrowser))
	mux.Handle("GET /console/account", u.page(needSession, u.accountShow))
	mux.Handle("POST /console/account/password", u.page(needSession, u.passwordChange))
}

// Forms are the page handlers of the forms that post to the API's /auth/
// routes (see api.Routes).
func (u *UI) Forms() map[string]http.Handler {
	return map[string]http.Handler{
		"POST /auth/sign-in":  u.page(anyone, u.signInCheck),
		"POST /auth/sign-up":  u.page(anyone, u.signUpCreate),
		"POST /auth/sign-out": u.page(anyone, u.signOut),
	}
}
