package azenauth

import "strings"

// access is what a route asks of the caller (contract §9, §10). azen_auth
// knows the contract's routes itself, so that what the contract promises
// does not depend on how a Caddyfile splits them.
type access int

const (
	// accessAPI: an API key, or a session with an active organization
	// (/api/v1/* and any route the contract does not name).
	accessAPI access = iota
	// accessKeys: the console's key routes. A session with an active
	// organization, or a key with keys:read / keys:write (§10).
	accessKeys
	// accessSession: a session with an active organization.
	accessSession
	// accessSessionNoOrg: a session, with or without an active
	// organization (listing, creating and choosing organizations).
	accessSessionNoOrg
	// accessOptional: a session if there is a valid one, else anonymous
	// (the console's pages, sign-out).
	accessOptional
	// accessAnonymous: no credential; failed attempts are limited per
	// client address (sign-up, sign-in).
	accessAnonymous
)

func (a access) String() string {
	return [...]string{"api", "keys", "session", "session-without-organization", "optional", "anonymous"}[a]
}

// accessOf classifies a request path.
func accessOf(path string) access {
	switch {
	case strings.HasPrefix(path, "/api/"):
		return accessAPI
	case path == "/console/api/keys" || strings.HasPrefix(path, "/console/api/keys/"):
		return accessKeys
	case path == "/console/api/organizations" || path == "/console/api/organizations/active":
		return accessSessionNoOrg
	case strings.HasPrefix(path, "/console/api/") || path == "/auth/session":
		return accessSession
	case path == "/auth/sign-in" || path == "/auth/sign-up":
		return accessAnonymous
	case path == "/console" || strings.HasPrefix(path, "/console/") || path == "/auth/sign-out":
		return accessOptional
	}
	return accessAPI
}

// isSignIn reports whether a 401 answer on path is a failed sign-in, to be
// counted against the client's address.
func isSignIn(path string) bool { return path == "/auth/sign-in" }
