package api

import (
	"net/http"

	"github.com/azen-sh/gateway/internal/console"
)

// keyCreate is POST /console/api/keys: 201 {"key":{…,"key":"azen_…"}}, the
// only time the plaintext is shown. The key's userId is the caller's.
func (a *API) keyCreate(w http.ResponseWriter, r *http.Request, actor console.Actor, body []byte) error {
	f, err := parse(body, false, "name", "expiresIn", "tier", "rateLimit", "permissions", "quota")
	if err != nil {
		return err
	}
	var in console.KeyInput
	if in.Name, _, err = f.String("name", true); err != nil {
		return err
	}
	if in.ExpiresIn, _, err = f.Int("expiresIn", 1, console.MaxExpiresIn); err != nil {
		return err
	}
	if in.Tier, _, err = f.String("tier", false); err != nil {
		return err
	}
	if in.RateLimit, _, err = f.String("rateLimit", false); err != nil {
		return err
	}
	if in.Permissions, err = permissionsField(f); err != nil {
		return err
	}
	if in.Quota, _, err = quotaField(f); err != nil {
		return err
	}
	k, plain, err := a.svc.CreateKey(r.Context(), actor, in)
	if err != nil {
		return err
	}
	j := toKey(k)
	j.Key = plain
	return writeJSON(w, http.StatusCreated, map[string]any{"key": j})
}
