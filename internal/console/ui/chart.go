package ui

import (
	"strconv"

	"github.com/azen-sh/gateway/internal/console"
	"github.com/azen-sh/gateway/internal/usage"
)

// chart is a stacked bar chart of requests per day, drawn as SVG on the
// server: success, error and rate_limited per UTC day.
type chart struct {
	Width, Height float64
	Plot          struct{ Left, Top, Right, Bottom float64 }
	Bars          []bar
	Ticks         []tick
	XLabels       []tick
	Max           int64
}

type bar struct {
	X, W     float64
	Segments []segment
	Title    string
}

type segment struct {
	Class string
	Y, H  float64
}

type tick struct {
	X, Y   float64
	Label  string
	Anchor string // SVG text-anchor: start, middle or end
}

// stackedChart draws the report's days.
func stackedChart(rep console.UsageReport) chart {
	c := chart{Width: 720, Height: 240}
	n := len(rep.Labels)
	for _, v := range rep.Series["total"] {
		c.Max = max(c.Max, v)
	}
	top := niceMax(c.Max)
	// The axis labels are up to 22 px high when the chart shrinks to a
	// phone's width (console.css): leave the widest one room, about 13
	// units a digit.
	c.Plot.Left, c.Plot.Top, c.Plot.Right, c.Plot.Bottom = max(52, 14+13*float64(len(strconv.FormatInt(top, 10)))), 10, 710, 206
	plotH := c.Plot.Bottom - c.Plot.Top
	step := (c.Plot.Right - c.Plot.Left) / float64(max(n, 1))
	for i := 0; i <= 4; i++ {
		v := top * int64(i) / 4
		c.Ticks = append(c.Ticks, tick{X: c.Plot.Left - 6, Y: c.Plot.Bottom - plotH*float64(i)/4, Label: strconv.FormatInt(v, 10), Anchor: "end"})
	}
	every := max(1, (n+4)/5)
	for i, day := range rep.Labels {
		x := c.Plot.Left + step*float64(i)
		b := bar{X: x + step*0.15, W: step * 0.7}
		y := c.Plot.Bottom
		parts := []struct{ class, series string }{
			{"ok", usage.OutcomeSuccess}, {"err", usage.OutcomeError}, {"limited", usage.OutcomeRateLimited},
		}
		for _, p := range parts {
			v := rep.Series[p.series][i]
			if v == 0 {
				continue
			}
			h := plotH * float64(v) / float64(top)
			y -= h
			b.Segments = append(b.Segments, segment{Class: p.class, Y: y, H: h})
		}
		b.Title = day + ": " + strconv.FormatInt(rep.Series["total"][i], 10) + " requests (" +
			strconv.FormatInt(rep.Series[usage.OutcomeSuccess][i], 10) + " success, " +
			strconv.FormatInt(rep.Series[usage.OutcomeError][i], 10) + " errors, " +
			strconv.FormatInt(rep.Series[usage.OutcomeRateLimited][i], 10) + " rate-limited)"
		c.Bars = append(c.Bars, b)
		if i%every == 0 || i == n-1 {
			// The first and last labels line up with the plot's edges, so
			// neither is cut off nor runs into the y axis's labels.
			l := tick{X: x + step/2, Y: c.Plot.Bottom + 24, Label: day[5:], Anchor: "middle"}
			switch {
			case n == 1:
			case i == 0:
				l.X, l.Anchor = c.Plot.Left, "start"
			case i == n-1:
				l.X, l.Anchor = c.Plot.Right, "end"
			}
			c.XLabels = append(c.XLabels, l)
		}
	}
	return c
}

// niceMax rounds the tallest bar up to 1, 2 or 5 times a power of ten, at
// least 4, so the axis reads in round numbers.
func niceMax(v int64) int64 {
	if v <= 4 {
		return 4
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p*4 >= v && (m*p*4)%4 == 0 {
				return m * p * 4
			}
		}
	}
}
