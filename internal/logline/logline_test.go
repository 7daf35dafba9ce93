package logline

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// TestFieldsAreTheGateways: a backend line has Caddy's field names and
// forms, so one query reads both binaries' logs.
func TestFieldsAreTheGateways(t *testing.T) {
	var buf bytes.Buffer
	before := float64(time.Now().UnixNano()) / 1e9
	New(&buf, "azen-backend").Warn("database not reachable yet", "request_id", "r-1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	ts, ok := line["ts"].(float64)
	if !ok || ts < before || ts > before+5 {
		t.Errorf("ts %v is not Unix seconds (%f)", line["ts"], before)
	}
	want := map[string]any{"level": "warn", "logger": "azen-backend", "msg": "database not reachable yet", "request_id": "r-1"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, line[k], v, buf.Bytes())
		}
	}
	if _, ok := line["time"]; ok {
		t.Errorf("slog's time field is still there: %s", buf.Bytes())
	}
}

func TestOneLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"one line stays", errors.New("no such key"), "no such key"},
		{"pgx's address list is folded", errors.New("failed to connect to `user=azen database=x`:\n\t127.0.0.1:1 (127.0.0.1): dial error\n\t[::1]:1 (::1): dial error"),
			"failed to connect to `user=azen database=x`: 127.0.0.1:1 (127.0.0.1): dial error; [::1]:1 (::1): dial error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := OneLine(tc.err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
