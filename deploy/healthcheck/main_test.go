package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestExitStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/unready":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/slow":
			time.Sleep(500 * time.Millisecond)
		}
	}))
	defer srv.Close()
	// A port where nothing listens: take one and close it again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("http://%s/readyz", ln.Addr())
	ln.Close()

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"2xx is healthy", []string{srv.URL + "/ok"}, 0},
		{"503 is unhealthy", []string{srv.URL + "/unready"}, 1},
		{"a redirect is unhealthy, not followed", []string{srv.URL + "/redirect"}, 1},
		{"refused connection is unhealthy", []string{closed}, 1},
		{"timeout is unhealthy", []string{"-timeout", "100ms", srv.URL + "/slow"}, 1},
		{"no URL is usage", nil, 2},
		{"two URLs is usage", []string{srv.URL, srv.URL}, 2},
		{"not http is usage", []string{"ftp://example.com/"}, 2},
		{"no host is usage", []string{"http:///readyz"}, 2},
		{"unknown flag is usage", []string{"-x", srv.URL}, 2},
		{"zero timeout is usage", []string{"-timeout", "0s", srv.URL + "/ok"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(tc.args, &stderr); got != tc.want {
				t.Errorf("run(%q) = %d, want %d; stderr: %s", tc.args, got, tc.want, stderr.String())
			}
			if tc.want != 0 && strings.TrimSpace(stderr.String()) == "" {
				t.Error("a failure printed nothing")
			}
		})
	}
}
