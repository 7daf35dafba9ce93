#!/usr/bin/env bash
# measure-reload.sh: what `azen-gateway reload --force` costs clients that
# keep connections alive.
#
# Runs BenchmarkReloadUnderPOSTLoad (tests/edge_reload_bench_test.go): the
# real gateway on the shipped Caddyfile in front of two stand-in replicas,
# 20 clients POSTing as fast as they can, RELOADS reloads one second apart,
# for each of: the shipped Caddyfile (azen_drain on), the same without
# azen_drain, without it but with clients that send Idempotency-Key (Go's
# client then retries a request on a connection the server closed), and
# without it over h2c. Prints requests and failed requests per reload and
# the failures by kind.
#
# Usage: scripts/measure-reload.sh        RELOADS=20 by default
set -euo pipefail
cd "$(dirname "$0")/.."
RELOADS=${RELOADS:-20}
go test -run '^$' -bench 'BenchmarkReloadUnderPOSTLoad' -benchtime "${RELOADS}x" -timeout 30m ./tests/ 2>&1 |
	grep -v '^[[:space:]]*{"level"' | grep -v '^{'
