package ui

import (
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/azen-sh/gateway/internal/apikey"
	"github.com/azen-sh/gateway/internal/console/ui/form"
)

var funcs = template.FuncMap{
	"join": strings.Join,
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return strconv.Itoa(int(d/time.Minute)) + " min ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d/time.Hour)) + " h ago"
		}
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	},
	"allPermissions": func() []string { return apikey.AllPermissions },
	"num": func(n int64) string {
		s := strconv.FormatInt(n, 10)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 && s[0] != '-' {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	},
	"deref": func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	},
	"percent": func(used *int64, limit int64) int64 {
		if used == nil || limit <= 0 {
			return 0
		}
		return min(100, *used*100/limit)
	},
	"itoa": func(n int64) string { return strconv.FormatInt(n, 10) },
	"sub":  func(a, b float64) float64 { return a - b },
	"fieldArgs": func(f *form.State, name, label, typ, autocomplete string) fieldArgs {
		return fieldArgs{Form: f, Name: name, Label: label, Type: typ, Autocomplete: autocomplete}
	},
}

// fieldArgs are the "field" template's: one labelled input with its error.
type fieldArgs struct {
	Form                            *form.State
	Name, Label, Type, Autocomplete string
}
