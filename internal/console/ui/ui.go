// Package ui is the console's pages (contract §9): server-rendered
// html/template pages under /console/, one small file per page action,
// with their templates, style sheet and scripts embedded in the binary (no
// CDN, no build step). Every page asks the console service, as the JSON
// API does; forms are read by package form.
//
// The gateway forwards a page request with the signed identity of a valid
// session, or anonymous when there is none: an anonymous visitor is shown
// the sign-in form, never a JSON 401.
package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/account"
	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/console/ui/form"
	"github.com/azen-sh/gateway/internal/contract"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// maxForm bounds a page's form body.
const maxForm = 64 << 10

// requestTimeout bounds one page's database work.
const requestTimeout = 15 * time.Second

// UI serves the pages.
type UI struct {
	svc    *console.Service
	signer *contract.Signer
	logger *slog.Logger
	pages  map[string]*template.Template
	// crossOrigin refuses forged cross-site form posts here too (the
	// gateway already does; this keeps a backend reached some other way
	// just as safe).
	crossOrigin *http.CrossOriginProtection
}

// New parses the templates.
func New(svc *console.Service, signer *contract.Signer, logger *slog.Logger) (*UI, error) {
	u := &UI{svc: svc, signer: signer, logger: logger, pages: map[string]*template.Template{},
		crossOrigin: http.NewCrossOriginProtection()}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, err
		}
		u.pages[base] = t
	}
	return u, nil
}

// request is what a page handler gets: the caller (nil when anonymous),
// their person and organizations, and the posted form.
type request struct {
	Actor     *console.Actor
	User      account.User
	Orgs      []account.Membership
	ActiveOrg *account.Membership
	Form      *form.State
	Path      string
}

// view is what a template gets.
type view struct {
	*request
	Title string
	Nav   string // the current section, for aria-current
	Done  string // a message after a redirect
	Data  any
	Form  *form.State
}

// access is what a page asks of the caller.
type access int

const (
	needOrg     access = iota // a session with an active organization
	needSession               // a session, with or without an organization
	anyone                    // shown to everyone (sign-in, sign-up)
)

type pageFunc func(w http.ResponseWriter, r *http.Request, q *request) error

// page wraps a page action: it checks the gateway's signature and the
// body hash (contract.ReadSigned), resolves the caller, shows the sign-in
// form to anonymous visitors of pages that need a session, and renders
// errors as pages.
func (u *UI) page(need access, h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		if err := u.crossOrigin.Check(r); err != nil {
			u.renderError(w, r, nil, http.StatusForbidden, "This form was sent from another site, so it was refused.")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		q := &request{Path: r.URL.Path}
		id, _, err := u.signer.ReadSigned(w, r, u.svc.Now(), maxForm)
		if err == nil {
			if q, err = u.resolve(ctx, r, id); err != nil {
				u.fail(w, r, nil, err)
				return
			}
		}
		if err != nil && !errors.Is(err, contract.ErrSignatureMissing) && !contract.IsBodyError(err) {
			u.logger.Warn("page request with a bad gateway signature, shown as anonymous", "path", r.URL.Path, "error", err.Error())
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				u.renderError(w, r, q, http.StatusBadRequest, "The form could not be read.")
				return
			}
			q.Form = form.From(r.PostForm)
		}
		switch {
		case need != anyone && q.Actor == nil:
			u.showSignIn(w, r, nil, http.StatusOK, "")
			return
		case need == needOrg && q.Actor.OrganizationID == "":
			http.Redirect(w, r, "/console/organizations", http.StatusSeeOther)
			return
		}
		if err := h(w, r, q); err != nil {
			u.fail(w, r, q, err)
		}
	})
}

func (u *UI) resolve(ctx context.Context, r *http.Request, id contract.Identity) (*request, error) {
	q := &request{Path: r.URL.Path}
	if id.Credential != contract.CredentialSession {
		return q, nil // pages are for people; a key is shown the sign-in form
	}
	a, err := u.svc.Actor(ctx, id)
	if err != nil {
		return nil, err
	}
	user, err := u.svc.CurrentUser(ctx, a)
	if errors.Is(err, console.ErrNoSession) {
		return q, nil
	}
	if err != nil {
		return nil, err
	}
	orgs, err := u.svc.Organizations(ctx, a)
	if err != nil {
		return nil, err
	}
	q.Actor, q.User, q.Orgs = &a, user, orgs
	for i := range orgs {
		if orgs[i].ID == a.OrganizationID {
			q.ActiveOrg = &orgs[i]
		}
	}
	return q, nil
}

// fail renders a service refusal as a page with its status, or logs an
// internal error and shows a generic page.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, q *request, err error) {
	var ce *console.Error
	if errors.As(err, &ce) {
		u.renderError(w, r, q, ce.Code, ce.Message)
		return
	}
	u.logger.Error("internal error", "request_id", w.Header().Get(contract.RequestIDHeader), "path", r.URL.Path, "error", err.Error())
	u.renderError(w, r, q, http.StatusInternalServerError, "Something went wrong on our side. Please try again.")
}

func (u *UI) renderError(w http.ResponseWriter, r *http.Request, q *request, code int, msg string) {
	if q == nil {
		q = &request{Path: r.URL.Path}
	}
	u.render(w, r, code, "error", view{request: q, Title: http.StatusText(code), Data: msg})
}

// render writes a page. The template runs into a buffer first, so a
// template failure is a clean 500, not half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, code int, name string, v view) {
	t, ok := u.pages[name]
	if !ok {
		u.logger.Error("no such template", "name", name)
		http.Error(w, "Internal server error", http.StatusInternalServerError)
		return
	}
	if v.request == nil {
		v.request = &request{Path: r.URL.Path}
	}
	if v.Form == nil {
		v.Form = v.request.Form
	}
	if v.Form == nil {
		v.Form = form.New(nil)
	}
	if v.Done == "" {
		v.Done = doneMessages[r.URL.Query().Get("done")]
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		u.logger.Error("render page", "name", name, "error", err.Error())
		http.Error(w, "Internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// doneMessages are the fixed confirmations a redirect may ask for
// (?done=NAME): a query string can never put its own text on the page.
var doneMessages = map[string]string{
	"disabled":   "The key is disabled: every gateway refuses it within a second.",
	"enabled":    "The key is enabled again.",
	"deleted":    "The key is deleted: every gateway refuses it within a second.",
	"updated":    "The key is updated on every gateway.",
	"switched":   "Organization switched.",
	"created":    "Organization created.",
	"signed-out": "You are signed out.",
	"password":   "Password changed. Your other sessions have ended.",
}

// redirect answers a form post with 303 to a console page.
func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// safeNext is where to go after signing in: a console page, else /console/.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err == nil {
		u.Path = path.Clean(u.Path) + map[bool]string{true: "/"}[strings.HasSuffix(u.Path, "/") && u.Path != "/"]
	}
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/console/") ||
		strings.HasPrefix(next, "//") || strings.Contains(next, "\\") || strings.HasPrefix(u.Path, "/console/sign-") {
		return "/console/"
	}
	return u.RequestURI()
}

// Static serves the embedded assets.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/console/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
