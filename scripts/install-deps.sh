#!/usr/bin/env bash
# Installs the servers the tests start privately (redis-server, redis-cli,
# PostgreSQL's initdb/pg_ctl), the headless browser of the console tests
# (chromium) and a C compiler for the test clock shim (gcc) when they are
# missing. Debian/Ubuntu, as root.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The quota boundary test builds a small LD_PRELOAD library that moves the
# private redis-server's clock (internal/testenv/clockshim).
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -e /usr/include/stdlib.h ] || missing+=(libc6-dev)
# The console's browser tests drive a real headless Chromium.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "missing: ${missing[*]}; install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
