package main

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// maxTermRunes bounds one indexed term; longer runs of letters are cut, so
// a pathological word cannot make a huge index entry.
const maxTermRunes = 64

// terms splits text into normalised search terms: NFKC, Unicode case
// folding, then maximal runs of letters, marks and digits. It returns each
// distinct term with its frequency, and the total number of terms (the
// document length BM25 uses).
func terms(text string) (freq map[string]int, length int) {
	// A Caser keeps state: one per call.
	folded := cases.Fold().String(norm.NFKC.String(text))
	freq = make(map[string]int)
	var b strings.Builder
	n := 0
	flush := func() {
		if b.Len() > 0 {
			freq[b.String()]++
			length++
			b.Reset()
			n = 0
		}
	}
	for _, r := range folded {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r) {
			if n < maxTermRunes {
				b.WriteRune(r)
				n++
			}
			continue
		}
		flush()
	}
	flush()
	return freq, length
}
