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
		if err == nil && req == (MemoryPatch{}) {
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
