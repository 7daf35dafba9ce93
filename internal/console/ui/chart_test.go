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

func TestChartLabelsStayInside(t *testing.T) {
	labels := make([]string, 30)
	series := map[string][]int64{"total": make([]int64, 30), "success": make([]int64, 30), "error": make([]int64, 30), "rate_limited": make([]int64, 30)}
	for i := range labels {
		labels[i] = "2026-01-" + string(rune('0'+(i+1)/10)) + string(rune('0'+(i+1)%10))
	}
	series["total"][29], series["success"][29] = 123456, 123456
	c := stackedChart(console.UsageReport{Labels: labels, Series: series})
	first, last := c.XLabels[0], c.XLabels[len(c.XLabels)-1]
	if first.Anchor != "start" || first.X != c.Plot.Left || last.Anchor != "end" || last.X != c.Plot.Right || last.Label != "01-30" {
		t.Fatalf("first label %+v, last %+v: they must line up with the plot's edges", first, last)
	}
	if widest := c.Ticks[len(c.Ticks)-1].Label; c.Plot.Left < 14+13*float64(len(widest)) {
		t.Fatalf("plot starts at %v, too close for the y label %q", c.Plot.Left, widest)
	}
}
