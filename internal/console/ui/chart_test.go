package ui

import (
	"testing"

	"github.com/azen-sh/gateway/internal/console"
)

func TestChartRules(t *testing.T) {
	for _, row := range []struct{ in, want int64 }{{0, 4}, {3, 4}, {5, 8}, {9, 20}, {41, 80}, {1000, 2000}} {
		if got := niceMax(row.in); got != row.want || got < row.in {
			t.Errorf("niceMax(%d) = %d, want %d", row.in, got, row.want)
		}
	}
	rep := console.UsageReport{Labels: []string{"2026-01-01", "2026-01-02"}, Series: map[string][]int64{
		"total": {0, 6}, "success": {0, 3}, "error": {0, 2}, "rate_limited": {0, 1}}}
	c := stackedChart(rep)
	if len(c.Bars) != 2 || len(c.Bars[0].Segments) != 0 || len(c.Bars[1].Segments) != 3 {
		t.Fatalf("bars %+v", c.Bars)
	}
	top := c.Bars[1].Segments[2]
	if top.Class != "limited" || top.Y < c.Plot.Top || c.Bars[1].Segments[0].Y+c.Bars[1].Segments[0].H != c.Plot.Bottom {
		t.Fatalf("segments %+v", c.Bars[1].Segments)
	}
}

func TestSafeNextStaysInTheConsole(t *testing.T) {
	for in, want := range map[string]string{
		"/console/usage?days=7": "/console/usage?days=7", "": "/console/", "https://evil.example/console/": "/console/",
		"//evil.example/console/": "/console/", "/console/../api/v1": "/console/", "/console/sign-in": "/console/",
		"/console\\x": "/console/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
