package main

import (
	"testing"

	"github.com/azen-sh/gateway/internal/ids"
)

func FuzzParseList(f *testing.F) {
	for _, s := range []string{"", "page=2&per=100", "cursor=", "userId=u&cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "page=%zz", "per=1&per=2", "page=+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		req, err := parseList(q)
		checkDecodeErr(t, err)
		if err == nil && (req.Page < 1 || req.Per < 1 || req.Per > maxPer) {
			t.Fatalf("accepted %+v", req)
		}
		if req.Cursor != nil {
			if id, ok := ids.Parse(req.Cursor.ID); !ok || id != req.Cursor.ID {
				t.Fatalf("cursor id %q", req.Cursor.ID)
			}
			if c, ok := decodeCursor(encodeCursor(*req.Cursor)); !ok || c != *req.Cursor {
				t.Fatalf("cursor round trip %+v -> %+v", req.Cursor, c)
			}
		}
	})
}
