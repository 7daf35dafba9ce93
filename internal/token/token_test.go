package token

import (
	"hash/crc32"
	"strings"
	"testing"
)

const prefix = "azen_"

func TestNewTokensAreWellFormedAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		k, err := New(prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != Len(prefix) || !strings.HasPrefix(k, prefix) {
			t.Fatalf("token %q has the wrong shape", k)
		}
		if !WellFormed(prefix, k) {
			t.Fatalf("new token %q is not well formed", k)
		}
		if seen[k] {
			t.Fatal("duplicate token")
		}
		seen[k] = true
	}
}

func TestFromBytesIsFixedWidth(t *testing.T) {
	var zero, ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	for _, b := range [][32]byte{zero, ones} {
		k := FromBytes(prefix, b)
		if len(k) != Len(prefix) || !WellFormed(prefix, k) {
			t.Errorf("token %q from extreme bytes is not a fixed-width, well-formed token", k)
		}
	}
	if k := FromBytes(prefix, zero); k[:len(prefix)+bodyLen] != prefix+strings.Repeat("0", bodyLen) {
		t.Errorf("zero bytes give %q", k)
	}
}

func TestWellFormedRefusesMistypedTokens(t *testing.T) {
	good, _ := New(prefix)
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	session, _ := New("azen_sess_")
	cases := map[string]string{
		"empty":                   "",
		"prefix only":             prefix,
		"truncated":               good[:len(good)-1],
		"one character too many":  good + "0",
		"wrong prefix":            "azen-" + good[5:],
		"upper-case prefix":       "AZEN_" + good[5:],
		"space inside":            good[:20] + " " + good[21:],
		"non-base62 character":    good[:20] + "_" + good[21:],
		"non-ASCII character":     good[:20] + "é" + good[22:],
		"changed body character":  flip(10),
		"changed last body char":  flip(len(prefix) + bodyLen - 1),
		"changed checksum":        flip(len(good) - 1),
		"changed first checksum":  flip(len(prefix) + bodyLen),
		"swapped body characters": swap(good, 8, 9),
		"another kind of token":   session,
	}
	for name, k := range cases {
		if k == good {
			continue // swap of equal characters: not a change
		}
		if WellFormed(prefix, k) {
			t.Errorf("%s: %q accepted", name, k)
		}
	}
}

func swap(s string, i, j int) string {
	b := []byte(s)
	b[i], b[j] = b[j], b[i]
	return string(b)
}

func TestEveryBodySubstitutionIsCaught(t *testing.T) {
	// CRC32 catches every single-character substitution in the body.
	good, _ := New(prefix)
	for i := len(prefix); i < len(prefix)+bodyLen; i++ {
		for _, c := range []byte(base62) {
			if c == good[i] {
				continue
			}
			b := []byte(good)
			b[i] = c
			if WellFormed(prefix, string(b)) {
				t.Fatalf("substitution at %d with %q accepted", i, c)
			}
		}
	}
}

func TestHashAndDisplay(t *testing.T) {
	k, _ := New(prefix)
	h := HashOf(k).Hex()
	if len(h) != 64 || strings.Contains(h, k) {
		t.Errorf("hash %q", h)
	}
	long := strings.Repeat("x", 100)
	if HashOf(long) != HashOf(strings.Clone(long)) {
		t.Error("hash of a long value is not stable")
	}
	if p := Display(k); p != k[:12] || len(p) != 12 {
		t.Errorf("display %q", p)
	}
}

func FuzzWellFormed(f *testing.F) {
	good, _ := New(prefix)
	f.Add(good)
	f.Add(good[:len(good)-1] + "0")
	f.Add("")
	f.Add(prefix)
	f.Add(prefix + strings.Repeat("z", bodyLen+checkLen))
	f.Add(strings.Repeat("\xff", Len(prefix)))
	f.Fuzz(func(t *testing.T, s string) {
		if !WellFormed(prefix, s) {
			return
		}
		// Anything accepted has the exact shape and a matching checksum.
		if len(s) != Len(prefix) || !strings.HasPrefix(s, prefix) {
			t.Fatalf("accepted %q of the wrong shape", s)
		}
		body := s[len(prefix) : len(prefix)+bodyLen]
		sum := uint64(crc32.ChecksumIEEE([]byte(body)))
		want := make([]byte, checkLen)
		for i := checkLen - 1; i >= 0; i-- {
			want[i] = base62[sum%62]
			sum /= 62
		}
		if s[len(prefix)+bodyLen:] != string(want) {
			t.Fatalf("accepted %q with a wrong checksum", s)
		}
	})
}

func TestStringCRCMatchesTheLibrary(t *testing.T) {
	for _, s := range []string{"", "a", "azen", strings.Repeat("xyz", 20)} {
		if crc32String(s) != crc32.ChecksumIEEE([]byte(s)) {
			t.Errorf("crc of %q differs", s)
		}
	}
}
