package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/azen-sh/gateway/internal/contract"
)

// Every decoder error must be a client-facing 400 message, never a panic.
func checkDecodeErr(t *testing.T, err error) {
	if err == nil {
		return
	}
	if msg, ok := contract.PublicMessage(err); !ok || msg == "" || !utf8.ValidString(msg) {
		t.Fatalf("error is not a public message: %v", err)
	}
}

func FuzzParseCreate(f *testing.F) {
	for _, s := range []string{`{"text":"a"}`, `{"text":"a","dedupKey":"k","metadata":{"a":[1,{"b":null}]}}`,
		`{"text":1}`, `{"text":"a"}x`, `[]`, `null`, `{"text":"\ud800"}`, `{"text":"\ud83d\ude00"}`, `{"text":"\\ud800"}`, `{"text":"\udc00\ud800"}`, `{"metadata":null,"text":"é"}`, `{"a":`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseCreate(data)
		checkDecodeErr(t, err)
		if err == nil {
			if n := utf8.RuneCountInString(req.Text); n < 1 || n > maxTextRunes {
				t.Fatalf("accepted text of %d characters", n)
			}
			if len(req.Metadata) > maxMetadataBytes || (req.Metadata != nil && req.Metadata[0] != '{') {
				t.Fatalf("accepted metadata %q", req.Metadata)
			}
			// U+FFFD comes out only if the client sent it: an unpaired
			// surrogate is refused, never replaced.
			if strings.ContainsRune(req.Text, utf8.RuneError) && !strings.ContainsRune(string(data), utf8.RuneError) &&
				!strings.Contains(strings.ToLower(string(data)), `\ufffd`) {
				t.Fatalf("accepted %q as text %q with a replacement character", data, req.Text)
			}
		}
	})
}

func FuzzParsePatch(f *testing.F) {
	for _, s := range []string{`{"text":"a"}`, `{"metadata":null}`, `{}`, `{"text":null}`, `{"metadata":"x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parsePatch(data)
		checkDecodeErr(t, err)
		if err == nil && req.Text == nil && !req.SetMetadata {
			t.Fatal("accepted an empty patch")
		}
	})
}

func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{`{"query":"a"}`, `{"query":"a","topK":50,"userId":"u"}`, `{"query":"a","topK":1e2}`,
		`{"query":"a","topK":-1}`, `{"query":"a","topK":99999999999999999999}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := parseSearch(data)
		checkDecodeErr(t, err)
		if err == nil && (req.TopK < 1 || req.TopK > maxTopK || req.Query == "") {
			t.Fatalf("accepted %+v", req)
		}
	})
}

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
			if _, ok := parseUUID(req.Cursor.ID); !ok {
				t.Fatalf("cursor id %q", req.Cursor.ID)
			}
			if c, ok := decodeCursor(encodeCursor(*req.Cursor)); !ok || c != *req.Cursor {
				t.Fatalf("cursor round trip %+v -> %+v", req.Cursor, c)
			}
		}
	})
}

func FuzzParseUUID(f *testing.F) {
	for _, s := range []string{"0190a000-0000-7000-8000-000000000000", "0190A000-0000-7000-8000-00000000000F", "x", "0190a000-0000-7000-8000-00000000000g", "0190a000_0000-7000-8000-000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseUUID(s)
		if ok {
			if id2, ok2 := parseUUID(id); !ok2 || id2 != id || id != strings.ToLower(s) {
				t.Fatalf("%q not canonical: %q", s, id)
			}
		}
	})
}

func TestTermsFoldCaseAndNormalise(t *testing.T) {
	freq, n := terms("Straße STRASSE straße — ｆｕｌｌ-width, café CAFÉ 42")
	if n != 8 || freq["strasse"] != 3 || freq["full"] != 1 || freq["width"] != 1 || freq["café"] != 2 || freq["42"] != 1 {
		t.Errorf("terms: %v (%d)", freq, n)
	}
}

func TestNewUUIDv7IsCanonical(t *testing.T) {
	id := newUUIDv7()
	if got, ok := parseUUID(id); !ok || got != id || id[14] != '7' {
		t.Errorf("%s", id)
	}
}

func FuzzTerms(f *testing.F) {
	for _, s := range []string{"Hello, World!", "Straße ﬁne ＡＢＣ", "\xff\xfe", strings.Repeat("a", 200), "日本語のテキスト", "e\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		freq, n := terms(text)
		total := 0
		for term, c := range freq {
			if term == "" || utf8.RuneCountInString(term) > maxTermRunes || c < 1 {
				t.Fatalf("term %q x%d", term, c)
			}
			total += c
		}
		if total != n {
			t.Fatalf("length %d, counts sum to %d", n, total)
		}
	})
}
