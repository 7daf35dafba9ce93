// Package limiter is azen_ratelimit's logic, without Caddy: a GCRA limit
// per bucket shared exactly by every gateway through Redis, and a key's
// quota per UTC day or month counted in the same call (contract §5, §10).
//
// A gateway leases tokens (lease.go) and spends them in process; one Lua
// script (redis.go), whose arithmetic gcra.go repeats in Go for the
// in-process limiter and the tests, grants, settles and returns leases and
// bounds every grant by the quota left (quota.go is the gateway's side of
// quotas: the counter of the current period, local shares, charges). The
// Limiter (limiter.go) composes them with the in-process fallback, the
// circuit breaker (breaker.go) and the pipelining of concurrent calls
// (batch.go); headers.go writes the response fields and messages.
//
// docs/ratelimit.md explains the design, its consistency and its bounds
// per fault.
package limiter
