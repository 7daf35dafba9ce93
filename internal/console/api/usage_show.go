package api

import (
	"net/http"
	"strconv"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/contract"
	"github.com/azen-sh/gateway/internal/jsonobj"
)

type usageJSON struct {
	Range struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"range"`
	Labels  []string           `json:"labels"`
	Series  map[string][]int64 `json:"series"`
	Summary map[string]any     `json:"summary"`
	Quotas  []keyQuotaJSON     `json:"quotas"`
}

type keyQuotaJSON struct {
	KeyID string `json:"keyId"`
	Name  string `json:"name"`
	quotaJSON
}

// usageShow is GET /console/api/usage?days=1..90&keyId=UUID.
func (a *API) usageShow(w http.ResponseWriter, r *http.Request, actor console.Actor, _ []byte) error {
	q, err := usageQuery(r)
	if err != nil {
		return err
	}
	rep, err := a.svc.Usage(r.Context(), actor, q)
	if err != nil {
		return err
	}
	var out usageJSON
	out.Range.Start, out.Range.End = rep.Start, rep.End
	out.Labels, out.Series = rep.Labels, rep.Series
	out.Summary = map[string]any{"days": len(rep.Labels)}
	for k, v := range rep.Summary {
		out.Summary[k] = v
	}
	out.Quotas = []keyQuotaJSON{}
	for _, k := range rep.Quotas {
		out.Quotas = append(out.Quotas, keyQuotaJSON{KeyID: k.ID, Name: k.Name,
			quotaJSON: quotaJSON{Limit: k.Quota.Limit, Period: k.Quota.Period, Used: k.QuotaUsed}})
	}
	if q.KeyID != "" && len(rep.Quotas) == 1 {
		out.Summary["quota"] = out.Quotas[0].quotaJSON
	}
	return writeJSON(w, http.StatusOK, out)
}

func usageQuery(r *http.Request) (console.UsageQuery, error) {
	q := console.UsageQuery{Days: console.DefaultUsageDays}
	values := r.URL.Query()
	for name, vs := range values {
		if name != "days" && name != "keyId" {
			return q, contract.Public("Unknown query parameter " + jsonobj.QuoteName(name))
		}
		if len(vs) > 1 {
			return q, contract.Public(name + " must be given at most once")
		}
	}
	if v, ok := values["days"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || v[0][0] == '+' || n < 1 || n > console.MaxUsageDays {
			return q, contract.Public("days must be an integer from 1 to 90")
		}
		q.Days = n
	}
	if v, ok := values["keyId"]; ok {
		if !validUUID(v[0]) {
			return q, contract.Public("keyId must be a UUID")
		}
		q.KeyID = v[0]
	}
	return q, nil
}
