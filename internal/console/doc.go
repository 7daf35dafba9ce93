// Package console is what the console's JSON API (package api) and its
// pages (package ui) both call (contract §9, §10): people signing up and
// in, organizations, the organization's API keys and its usage. Handlers
// only turn HTTP into these calls and their answers back into HTTP; every
// rule (what a field may hold, who may do what, which change is announced
// to the gateways) lives here, once.
//
// Identity comes from the gateway's signed headers (contract §4): the
// gateway has already checked the session cookie or the API key. The
// service still looks the caller's role up (one query) before it changes
// anything, so a page, which the gateway forwards without a role check,
// obeys the same permissions as the API.
//
// Changes that the gateways cache (a key, a session) are announced over
// Redis pub/sub (package revocation) so every gateway applies them within a
// second. Choosing another organization gives the browser a new session
// (and ends the old one) instead of editing the cached one in place: the
// next request then carries a secret no gateway has cached, so the switch
// applies at once on every gateway, with or without Redis.
package console
