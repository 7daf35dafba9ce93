package ui

import (
	"net/http"
	"strconv"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/console"
)

// usageShow is GET /console/usage?days=N&keyId=ID: requests per day, a
// chart and a table, per key or for the whole organization.
func (u *UI) usageShow(w http.ResponseWriter, r *http.Request, q *request) error {
	query := console.UsageQuery{Days: console.DefaultUsageDays, KeyID: r.URL.Query().Get("keyId")}
	if d := r.URL.Query().Get("days"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil {
			n = -1
		}
		query.Days = n
	}
	rep, err := u.svc.Usage(r.Context(), *q.Actor, query)
	if err != nil {
		return err
	}
	var keys []console.KeyView
	if q.Actor.Can(apikey.KeysRead) {
		if keys, err = u.svc.ListKeys(r.Context(), *q.Actor); err != nil {
			return err
		}
	}
	type row struct {
		Day                               string
		Total, Success, Error, Limited    int64
		Create, Search, Read, Update, Del int64
	}
	rows := make([]row, len(rep.Labels))
	for i, d := range rep.Labels {
		s := rep.Series
		rows[len(rows)-1-i] = row{d, s["total"][i], s["success"][i], s["error"][i], s["rate_limited"][i],
			s["memory_create"][i], s["memory_search"][i], s["memory_read"][i], s["memory_update"][i], s["memory_delete"][i]}
	}
	u.render(w, r, http.StatusOK, "usage", view{request: q, Title: "Usage", Nav: "usage", Data: struct {
		Report console.UsageReport
		Chart  chart
		Rows   []row
		Keys   []console.KeyView
		Query  console.UsageQuery
		Days   []int
	}{rep, stackedChart(rep), rows, keys, query, []int{7, 30, 90}}})
	return nil
}
