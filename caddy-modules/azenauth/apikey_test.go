package azenauth

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestGeneratedKeysAreWellFormedAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != KeyLen || !strings.HasPrefix(k, KeyPrefix) {
			t.Fatalf("key %q has the wrong shape", k)
		}
		if !WellFormed(k) {
			t.Fatalf("generated key %q is not well formed", k)
		}
		if seen[k] {
			t.Fatal("duplicate key")
		}
		seen[k] = true
	}
}

func TestKeyFromBytesIsFixedWidth(t *testing.T) {
	var zero, ones [32]byte
	for i := range ones {
		ones[i] = 0xff
	}
	for _, b := range [][32]byte{zero, ones} {
		k := keyFromBytes(b)
		if len(k) != KeyLen || !WellFormed(k) {
			t.Errorf("key %q from extreme bytes is not a fixed-width, well-formed key", k)
		}
	}
	if k := keyFromBytes(zero); k[:len(KeyPrefix)+keyBodyLen] != KeyPrefix+strings.Repeat("0", keyBodyLen) {
		t.Errorf("zero bytes give %q", k)
	}
}

func TestWellFormedRefusesMistypedKeys(t *testing.T) {
	good, _ := GenerateKey()
	flip := func(i int) string {
		b := []byte(good)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	cases := map[string]string{
		"empty":                   "",
		"prefix only":             KeyPrefix,
		"truncated":               good[:len(good)-1],
		"one character too many":  good + "0",
		"wrong prefix":            "azen-" + good[5:],
		"upper-case prefix":       "AZEN_" + good[5:],
		"space inside":            good[:20] + " " + good[21:],
		"non-base62 character":    good[:20] + "_" + good[21:],
		"non-ASCII character":     good[:20] + "é" + good[22:],
		"changed body character":  flip(10),
		"changed last body char":  flip(len(KeyPrefix) + keyBodyLen - 1),
		"changed checksum":        flip(len(good) - 1),
		"changed first checksum":  flip(len(KeyPrefix) + keyBodyLen),
		"swapped body characters": swap(good, 8, 9),
	}
	for name, k := range cases {
		if k == good {
			continue // swap of equal characters: not a change
		}
		if WellFormed(k) {
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
	good, _ := GenerateKey()
	for i := len(KeyPrefix); i < len(KeyPrefix)+keyBodyLen; i++ {
		for _, c := range []byte(base62) {
			if c == good[i] {
				continue
			}
			b := []byte(good)
			b[i] = c
			if WellFormed(string(b)) {
				t.Fatalf("substitution at %d with %q accepted", i, c)
			}
		}
	}
}

func TestHashAndPrefix(t *testing.T) {
	k, _ := GenerateKey()
	h := HashKey(k).Hex()
	if len(h) != 64 || strings.Contains(h, k) {
		t.Errorf("hash %q", h)
	}
	if p := KeyDisplayPrefix(k); p != k[:12] || len(p) != 12 {
		t.Errorf("prefix %q", p)
	}
}

func FuzzWellFormed(f *testing.F) {
	good, _ := GenerateKey()
	f.Add(good)
	f.Add(good[:len(good)-1] + "0")
	f.Add("")
	f.Add("azen_")
	f.Add("azen_" + strings.Repeat("z", keyBodyLen+keyCheckLen))
	f.Add(strings.Repeat("\xff", KeyLen))
	f.Fuzz(func(t *testing.T, s string) {
		if !WellFormed(s) {
			return
		}
		// Anything accepted has the exact shape and a matching checksum.
		if len(s) != KeyLen || !strings.HasPrefix(s, KeyPrefix) {
			t.Fatalf("accepted %q of the wrong shape", s)
		}
		body := s[len(KeyPrefix) : len(KeyPrefix)+keyBodyLen]
		want := string(appendChecksum(nil, crc32.ChecksumIEEE([]byte(body))))
		if s[len(KeyPrefix)+keyBodyLen:] != want {
			t.Fatalf("accepted %q with a wrong checksum", s)
		}
	})
}

func TestStringCRCMatchesTheLibrary(t *testing.T) {
	for _, s := range []string{"", "a", "azen", strings.Repeat("xyz", 20)} {
		if crc32IEEEString(s) != crc32.ChecksumIEEE([]byte(s)) {
			t.Errorf("crc of %q differs", s)
		}
	}
}
