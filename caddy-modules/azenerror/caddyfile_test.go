package azenerror

import (
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    Handler
		wantErr bool
	}{
		{"no arguments", `azen_error`, Handler{}, false},
		{"status", `azen_error 404`, Handler{StatusCode: "404"}, false},
		{"message only", `azen_error "Nothing here"`, Handler{Message: "Nothing here"}, false},
		{"status and message", `azen_error 429 "Slow down"`, Handler{StatusCode: "429", Message: "Slow down"}, false},
		{"placeholder status", `azen_error {http.error.status_code}`, Handler{StatusCode: "{http.error.status_code}"}, false},
		{"message first is an error", `azen_error "Slow down" 429`, Handler{}, true},
		{"too many arguments", `azen_error 404 a b`, Handler{}, true},
		{"block is an error", "azen_error 404 {\n\tfoo\n}", Handler{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (h.StatusCode != tt.want.StatusCode || h.Message != tt.want.Message) {
				t.Errorf("got %+v, want %+v", h, tt.want)
			}
		})
	}
}

func TestAdapt(t *testing.T) {
	caddytest.AssertAdapt(t, `:8080 {
	azen_request_id
	handle /api/* {
		respond "ok"
	}
	handle {
		azen_error 404 "Unknown endpoint"
	}
	handle_errors {
		azen_error
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
							"handle": [
								{
									"handler": "azen_request_id"
								}
							]
						},
						{
							"group": "group3",
							"match": [
								{
									"path": [
										"/api/*"
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
													"body": "ok",
													"handler": "static_response"
												}
											]
										}
									]
								}
							]
						},
						{
							"group": "group3",
							"handle": [
								{
									"handler": "subroute",
									"routes": [
										{
											"handle": [
												{
													"handler": "azen_error",
													"message": "Unknown endpoint",
													"status_code": 404
												}
											]
										}
									]
								}
							]
						}
					],
					"errors": {
						"routes": [
							{
								"handle": [
									{
										"handler": "subroute",
										"routes": [
											{
												"handle": [
													{
														"handler": "azen_error"
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
	}
}`)
}
