package azenready

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   string
		want    Handler
		wantErr string
	}{
		{name: "no block: the defaults", input: `azen_ready`, want: Handler{}},
		{name: "a timeout", input: "azen_ready {\n timeout 250ms\n}", want: Handler{Timeout: caddy.Duration(250 * time.Millisecond)}},
		{name: "argument on the directive line", input: "azen_ready now", wantErr: "takes no arguments"},
		{name: "unknown subdirective", input: "azen_ready {\n interval 1s\n}", wantErr: `unknown subdirective "interval"`},
		{name: "timeout twice", input: "azen_ready {\n timeout 1s\n timeout 2s\n}", wantErr: "more than once"},
		{name: "timeout without a value", input: "azen_ready {\n timeout\n}", wantErr: "takes one duration"},
		{name: "timeout not a duration", input: "azen_ready {\n timeout soon\n}", wantErr: `timeout "soon"`},
		{name: "timeout not positive", input: "azen_ready {\n timeout 0s\n}", wantErr: "positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "Testfile:") {
					t.Errorf("error has no file and line: %v", err)
				}
				return
			}
			if err != nil || h.Timeout != tc.want.Timeout {
				t.Fatalf("got %+v, %v; want %+v", h, err, tc.want)
			}
		})
	}
}

// TestAdaptInAHandleBlock: the shape the shipped Caddyfile uses.
func TestAdaptInAHandleBlock(t *testing.T) {
	caddytest.AssertAdapt(t, `:8080 {
	@readyz path /readyz
	handle @readyz {
		azen_ready {
			timeout 500ms
		}
	}
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
							"match": [
								{
									"path": [
										"/readyz"
									]
								}
							],
							"handle": [
								{
									"handler": "subroute",
									"routes": [
										{
											"handle": [
												{
													"handler": "azen_ready",
													"timeout": 500000000
												}
											]
										}
									]
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
