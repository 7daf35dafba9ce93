// Package logline makes every line our processes write read like the
// gateway's: the backend's JSON log lines carry the field names Caddy's zap
// encoder writes (`ts` as Unix seconds with a fraction, `level` in lower
// case, `logger`, `msg`; request ids as `request_id`), and an error shown
// to an operator is one line.
package logline

import (
	"io"
	"log/slog"
	"strings"
	"time"
)

// New returns a JSON logger on w whose lines carry name as `logger`, as a
// Caddy logger's do (`http.log.access.log0`, `azen-backend`).
func New(w io.Writer, name string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: likeZap})).With("logger", name)
}

// likeZap renames slog's built-in fields to the names and forms of Caddy's
// default JSON encoder: {"level":"info","ts":1764583200.123456,"logger":…,"msg":…}.
func likeZap(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.TimeKey:
		t, ok := a.Value.Any().(time.Time)
		if !ok {
			return a
		}
		return slog.Float64("ts", float64(t.UnixNano())/1e9)
	case slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String("level", strings.ToLower(l.String()))
		}
	}
	return a
}

// OneLine is err's text on one line: some drivers' errors span several
// (pgx lists every address it tried on its own line), which a terminal or
// a log collector would split.
func OneLine(err error) string {
	if err == nil {
		return ""
	}
	var b strings.Builder
	for _, l := range strings.FieldsFunc(err.Error(), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if b.Len() > 0 {
			if s := b.String(); strings.HasSuffix(s, ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}
