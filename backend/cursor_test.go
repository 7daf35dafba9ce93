package main

import (
	"strings"
	"testing"

	"github.com/azen-sh/gateway/internal/ids"
)

// Cursors handed out by one release must be read by the next: the encoding
// is pinned here.
func TestCursorEncodingIsStable(t *testing.T) {
	const id = "0193819c-1e2f-7abc-8def-0123456789ab"
	rows := []struct {
		rule   string
		cursor Cursor
		want   string
	}{
		{"the zero position", Cursor{0, "00000000-0000-0000-0000-000000000000"}, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"the start of keyset paging", startCursor, "f_________8AAAAAAAAAAAAAAAAAAAAA"},
		{"time then id, big-endian", Cursor{1733050000123456, id}, "AAYoMyWipkABk4GcHi96vI3vASNFZ4mr"},
		{"an upper-case id encodes as its lower-case form", Cursor{5, strings.ToUpper(id)}, "AAAAAAAAAAUBk4GcHi96vI3vASNFZ4mr"},
	}
	for _, row := range rows {
		t.Run(row.rule, func(t *testing.T) {
			if got := encodeCursor(row.cursor); got != row.want {
				t.Fatalf("encodeCursor(%+v) = %q, want %q", row.cursor, got, row.want)
			}
			want := Cursor{row.cursor.CreatedAt, strings.ToLower(row.cursor.ID)}
			if got, ok := decodeCursor(row.want); !ok || got != want {
				t.Fatalf("decodeCursor(%q) = %+v, %v, want %+v", row.want, got, ok, want)
			}
		})
	}
}

func TestDecodeCursorRefusesWhatTheAPIDidNotReturn(t *testing.T) {
	for _, s := range []string{"", "xyz", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/"} {
		if c, ok := decodeCursor(s); ok {
			t.Errorf("decodeCursor(%q) = %+v", s, c)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{"AAYoMyWipkABk4GcHi96vI3vASNFZ4mr", "f_________8AAAAAAAAAAAAAAAAAAAAA", "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := decodeCursor(s)
		if !ok {
			return
		}
		if id, valid := ids.Parse(c.ID); !valid || id != c.ID || c.CreatedAt < 0 {
			t.Fatalf("decodeCursor(%q) = %+v", s, c)
		}
		if again, ok := decodeCursor(encodeCursor(c)); !ok || again != c {
			t.Fatalf("%q: %+v does not round-trip: %+v", s, c, again)
		}
	})
}
