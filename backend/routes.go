package main

import "net/http"

// routes registers every endpoint. API routes need the gateway's signature;
// the operational ones do not.
func (s *server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler())

	mux.Handle("POST /api/v1/memory", s.api(s.handleCreate))
	mux.Handle("GET /api/v1/memory", s.api(s.handleList))
	mux.Handle("POST /api/v1/memory/search", s.api(s.handleSearch))
	mux.Handle("GET /api/v1/memory/{id}", s.api(s.handleGet))
	mux.Handle("PATCH /api/v1/memory/{id}", s.api(s.handlePatch))
	mux.Handle("DELETE /api/v1/memory/{id}", s.api(s.handleDelete))
	mux.HandleFunc("/", unknownEndpoint)
}
