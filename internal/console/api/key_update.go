package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyUpdate is PATCH /console/api/keys/{id} (contract §10): name, tier,
// rateLimit ("120/m burst 20", null or "" removes it), expiresAt (RFC 3339,
// null removes it), permissions, quota (null removes it). 400 names the
// field at fault.
func (a *API) keyUpdate(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	id, err := keyID(r)
	if err != nil {
		return err
	}
	f, err := parse(body, false, "name", "tier", "rateLimit", "expiresAt", "permissions", "quota")
	if err != nil {
		return err
	}
	var p console.KeyPatch
	if s, ok, err := f.String("name", false); err != nil {
		return err
	} else if ok {
		p.Name = &s
	}
	if s, ok, err := f.String("tier", false); err != nil {
		return err
	} else if ok || f.Has("tier") {
		p.Tier = &s
	}
	if s, ok, err := f.String("rateLimit", false); err != nil {
		return err
	} else if ok || f.Has("rateLimit") {
		p.RateLimit = &s
	}
	if t, ok, err := timeField(f, "expiresAt"); err != nil {
		return err
	} else if ok {
		p.ExpiresAt = &t
	}
	if p.Permissions, err = permissionsField(f); err != nil {
		return err
	}
	if q, ok, err := quotaField(f); err != nil {
		return err
	} else if ok {
		p.Quota = &q
	}
	k, err := a.svc.UpdateKey(r.Context(), actor, id, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"key": toKey(k)})
}
