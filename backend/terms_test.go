package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTermsFoldCaseAndNormalise(t *testing.T) {
	freq, n := terms("Straße STRASSE straße — ｆｕｌｌ-width, café CAFÉ 42")
	if n != 8 || freq["strasse"] != 3 || freq["full"] != 1 || freq["width"] != 1 || freq["café"] != 2 || freq["42"] != 1 {
		t.Errorf("terms: %v (%d)", freq, n)
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
