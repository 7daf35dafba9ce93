package azencors

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/azen-sh/gateway/caddy-modules/azenauth" // azen_auth, for the order fixture
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{name: "no block: no origin", input: `azen_cors`, want: Handler{}},
		{name: "origins with no value: no origin (an empty variable)", input: "azen_cors {\n origins\n}", want: Handler{}},
		{name: "every subdirective", input: "azen_cors {\n origins https://app.example.com http://localhost:5173\n allow_headers x-trace-id x-app-*\n max_age 1h\n}",
			want: Handler{Origins: []string{"https://app.example.com", "http://localhost:5173"}, AllowHeaders: []string{"x-trace-id", "x-app-*"}, MaxAge: caddy.Duration(time.Hour)}},
		{name: "any origin", input: "azen_cors {\n origins *\n}", want: Handler{Origins: []string{"*"}}},
		{name: "argument on the directive line", input: "azen_cors https://a.example", wantErr: "takes no arguments"},
		{name: "unknown subdirective", input: "azen_cors {\n origin https://a.example\n}", wantErr: `unknown subdirective "origin"`},
		{name: "subdirective twice", input: "azen_cors {\n origins https://a.example\n origins https://b.example\n}", wantErr: "origins given more than once"},
		{name: "origin without scheme", input: "azen_cors {\n origins app.example.com\n}", wantErr: `origin "app.example.com": want scheme://host`},
		{name: "origin with another scheme", input: "azen_cors {\n origins ftp://app.example.com\n}", wantErr: "with http or https"},
		{name: "origin with a path", input: "azen_cors {\n origins https://app.example.com/app\n}", wantErr: "has no user, path, query or fragment"},
		{name: "origin with a trailing slash", input: "azen_cors {\n origins https://app.example.com/\n}", wantErr: "has no user, path, query or fragment"},
		{name: "origin with a user", input: "azen_cors {\n origins https://me@app.example.com\n}", wantErr: "has no user"},
		{name: "origin with a query", input: "azen_cors {\n origins https://app.example.com?x=1\n}", wantErr: "has no user, path, query"},
		{name: "origin null", input: "azen_cors {\n origins null\n}", wantErr: `origin "null"`},
		{name: "origin listed twice", input: "azen_cors {\n origins https://a.example HTTPS://A.example\n}", wantErr: "listed twice"},
		{name: "allow_headers without a value", input: "azen_cors {\n allow_headers\n}", wantErr: "allow_headers needs at least one"},
		{name: "header name with a space", input: "azen_cors {\n allow_headers \"x trace\"\n}", wantErr: "not a valid header name"},
		{name: "header star alone", input: "azen_cors {\n allow_headers *\n}", wantErr: "prefix ending in *"},
		{name: "header star inside", input: "azen_cors {\n allow_headers x-*-id\n}", wantErr: "prefix ending in *"},
		{name: "max_age not a duration", input: "azen_cors {\n max_age soon\n}", wantErr: `max_age "soon"`},
		{name: "max_age zero", input: "azen_cors {\n max_age 0s\n}", wantErr: "positive duration"},
		{name: "max_age two values", input: "azen_cors {\n max_age 1m 2m\n}", wantErr: "max_age takes one duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.Origins, tt.want.Origins) || !slices.Equal(h.AllowHeaders, tt.want.AllowHeaders) || h.MaxAge != tt.want.MaxAge {
				t.Fatalf("got %+v, want %+v", h, tt.want)
			}
		})
	}
}

func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"azen_cors {\n origins https://app.example.com\n}",
		"azen_cors {\n origins * \n allow_headers x-a-*\n max_age 5m\n}",
		"azen_cors {\n origins https://a.example/x\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var h Handler
		if err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input)); err != nil {
			return
		}
		// Whatever parses must provision.
		if err := h.Provision(caddy.Context{}); err != nil {
			t.Fatalf("parsed %q but it does not provision: %v", input, err)
		}
	})
}

// TestAdaptOrdersBeforeAuth: without an `order` line, azen_cors runs
// before azen_auth, whatever order they are written in, so a preflight
// never needs a key.
func TestAdaptOrdersBeforeAuth(t *testing.T) {
	caddytest.AssertAdapt(t, `:8080 {
	azen_auth {
		secret {env.AZEN_GATEWAY_SECRET}
	}
	azen_cors {
		origins https://app.example.com
	}
	respond "ok"
}`, "caddyfile", `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [
						":8080"
					],
					"routes": [
						{
							"handle": [
								{
									"handler": "azen_cors",
									"origins": [
										"https://app.example.com"
									]
								},
								{
									"handler": "azen_auth",
									"secret": "{env.AZEN_GATEWAY_SECRET}"
								},
								{
									"body": "ok",
									"handler": "static_response"
								}
							]
						}
					]
				}
			}
		}
	}
}`)
}
