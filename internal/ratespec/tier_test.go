package ratespec

import (
	"strings"
	"testing"
)

func TestValidTierName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"letters", "pro", true},
		{"digits", "2024", true},
		{"a dot inside", "gold.v2", true},
		{"underscore and dash inside", "team_a-1", true},
		{"one character", "x", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"leading underscore", "_x", false},
		{"leading dash", "-x", false},
		{"leading dot", ".x", false},
		{"space", "gold v2", false},
		{"slash", "gold/v2", false},
		{"non-ASCII letter", "grün", false},
		{"quote (breaks RateLimit-Policy)", `a"b`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidTierName(tt.in); got != tt.want {
				t.Errorf("ValidTierName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
