package main

import (
	"net/url"
	"unicode/utf8"

	"github.com/azen-sh/gateway/internal/jsonobj"
)

// Limits of the list query (contract §8).
const (
	maxPer     = 100
	defaultPer = 20
	maxPage    = 1<<31 - 1
)

// listRequest is a list query: page mode when Cursor is nil, keyset mode
// (Page unused) when it is set.
type listRequest struct {
	Page   int64
	Per    int64
	UserID string
	Cursor *Cursor
}

// parseList reads the list query string: page, per, userId, cursor.
func parseList(rawQuery string) (listRequest, error) {
	values, err := url.ParseQuery(rawQuery)
	if err != nil {
		// "invalid URL escape "%zz"", "invalid semicolon separator in query"
		return listRequest{}, invalid("Malformed query string: %s", err.Error())
	}
	req := listRequest{Page: 1, Per: defaultPer}
	for name, vs := range values {
		switch name {
		case "page", "per", "userId", "cursor":
		default:
			return listRequest{}, invalid("Unknown query parameter %s", jsonobj.QuoteName(name))
		}
		if len(vs) > 1 {
			return listRequest{}, invalid("%s must be given at most once", name)
		}
	}
	if v, ok := values["page"]; ok {
		if req.Page, err = jsonobj.ParseInt("page", v[0], 1, maxPage); err != nil {
			return listRequest{}, err
		}
	}
	if v, ok := values["per"]; ok {
		if req.Per, err = jsonobj.ParseInt("per", v[0], 1, maxPer); err != nil {
			return listRequest{}, err
		}
	}
	if v, ok := values["userId"]; ok {
		if !utf8.ValidString(v[0]) {
			return listRequest{}, invalid("userId must be UTF-8 text: a percent-escape in it (such as %%ff) decodes to bytes that are not UTF-8")
		}
		if err := checkUserID(v[0]); err != nil {
			return listRequest{}, err
		}
		req.UserID = v[0]
	}
	if v, ok := values["cursor"]; ok {
		if _, withPage := values["page"]; withPage {
			return listRequest{}, invalid("cursor cannot be combined with page")
		}
		c := startCursor
		if v[0] != "" {
			if c, ok = decodeCursor(v[0]); !ok {
				return listRequest{}, invalid("cursor is not a cursor this API returned")
			}
		}
		req.Cursor = &c
	}
	return req, nil
}
