package api

import (
	"net/http"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/jsonobj"
)

// quotaField reads "quota": {"limit": N, "period": "day"|"month"} or null.
// present is true for null too (PATCH: remove the quota).
func quotaField(f jsonobj.Object) (q apikey.Quota, present bool, err error) {
	if !f.Has("quota") {
		return apikey.Quota{}, false, nil
	}
	if f.IsNull("quota") {
		return apikey.Quota{}, true, nil
	}
	inner, _, err := f.Object("quota", "limit", "period")
	if err != nil {
		return apikey.Quota{}, false, err
	}
	limit, ok, err := inner.Int("limit", 1, apikey.MaxQuota)
	if err != nil {
		msg, _ := contract.PublicMessage(err)
		return apikey.Quota{}, false, contract.Public("quota." + msg)
	}
	if !ok {
		return apikey.Quota{}, false, contract.Public("quota.limit is required")
	}
	period, _, err := inner.String("period", true)
	if err != nil {
		msg, _ := contract.PublicMessage(err)
		return apikey.Quota{}, false, contract.Public("quota." + msg)
	}
	return apikey.Quota{Limit: limit, Period: period}, true, nil
}

// permissionsField reads "permissions": ["memory:read", …].
func permissionsField(f jsonobj.Object) ([]string, error) {
	list, present, err := f.Strings("permissions")
	if err != nil || !present {
		return nil, err
	}
	return list, nil
}

// timeField reads an RFC 3339 time or null (zero).
func timeField(f jsonobj.Object, name string) (t time.Time, present bool, err error) {
	if !f.Has(name) {
		return time.Time{}, false, nil
	}
	if f.IsNull(name) {
		return time.Time{}, true, nil
	}
	s, _, err := f.String(name, true)
	if err != nil {
		return time.Time{}, false, err
	}
	t, perr := time.Parse(time.RFC3339, s)
	if perr != nil {
		return time.Time{}, false, contract.Public(name + " must be an RFC 3339 time such as 2030-01-31T12:00:00Z, or null")
	}
	return t, true, nil
}

// keyID is the {id} of a key route. A malformed id is a 400 (contract §3:
// an invalid UUID in a path).
func keyID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !validUUID(id) {
		return "", contract.Public("Key id " + jsonobj.QuoteName(id) + " is not a UUID")
	}
	return id, nil
}
