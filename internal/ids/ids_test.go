package ids

import (
	"strings"
	"testing"
)

func TestNewIsCanonicalAndOrdered(t *testing.T) {
	prev := ""
	for i := 0; i < 100; i++ {
		id := New()
		if got, ok := Parse(id); !ok || got != id {
			t.Fatalf("New() = %q is not canonical lower case", id)
		}
		if id[14] != '7' {
			t.Fatalf("New() = %q is not version 7", id)
		}
		if id[:13] < prev[:min(len(prev), 13)] {
			t.Fatalf("ids went back in time: %q after %q", id, prev)
		}
		prev = id
	}
}

func TestParseAcceptsOnlyTheCanonicalForm(t *testing.T) {
	const id = "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11"
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"canonical", id, true},
		{"upper case is folded", strings.ToUpper(id), true},
		{"braces", "{" + id + "}", false},
		{"urn", "urn:uuid:" + id, false},
		{"no dashes", strings.ReplaceAll(id, "-", ""), false},
		{"dash moved", "0b9f0e2c8-c4c-4a47-9a3e-0b9b4b1e7a11", false},
		{"not hex", "0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a1g", false},
		{"empty", "", false},
		{"wildcard", "*", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.in)
			if ok != tt.ok || ok && got != id {
				t.Errorf("Parse(%q) = %q, %v", tt.in, got, ok)
			}
		})
	}
}

func TestBytesRoundTrip(t *testing.T) {
	const id = "0193819c-1e2f-7abc-8def-0123456789ab"
	b, ok := Bytes(strings.ToUpper(id))
	want := [16]byte{0x01, 0x93, 0x81, 0x9c, 0x1e, 0x2f, 0x7a, 0xbc, 0x8d, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab}
	if !ok || b != want {
		t.Fatalf("Bytes(%q) = %x, %v", id, b, ok)
	}
	if got := FromBytes(b); got != id {
		t.Fatalf("FromBytes(%x) = %q, want %q", b, got, id)
	}
	if _, ok := Bytes("{" + id + "}"); ok {
		t.Fatal("Bytes accepted braces")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0b9f0e2c-8c4c-4a47-9a3e-0b9b4b1e7a11")
	f.Add("0B0E7A4C-1111-4A4A-8A8A-00000000000G")
	f.Add("*")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := Parse(s)
		if !ok {
			return
		}
		if len(s) != 36 || !strings.EqualFold(got, s) || strings.Trim(got, "0123456789abcdef-") != "" || strings.Count(got, "-") != 4 {
			t.Fatalf("Parse(%q) accepted as %q", s, got)
		}
		if b, ok := Bytes(s); !ok || FromBytes(b) != got {
			t.Fatalf("Bytes(%q) = %x, %v does not round-trip to %q", s, b, ok, got)
		}
	})
}
