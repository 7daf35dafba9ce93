#!/usr/bin/env bash
# `make run`: the whole system on the embedded default (an SQLite file and the
# in-process limiter). Development secrets are generated once into .dev/
# (git-ignored). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where the development state and the binaries are (tests point them elsewhere).
dev="${AZEN_DEV_DIR:-.dev}"
bin="${AZEN_BIN_DIR:-bin}"
mkdir -p "$dev"
dev="$(cd "$dev" && pwd)" # printed commands work from any folder
umask 077

if [ ! -f $dev/secrets.env ]; then
	{
		echo "AZEN_GATEWAY_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		echo "AZEN_ENCRYPTION_KEYS=dev1:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
	} > $dev/secrets.env
	echo "generated development secrets in $dev/secrets.env"
fi
set -a
# shellcheck disable=SC1091
. $dev/secrets.env
set +a
export AZEN_DATABASE_URL="${AZEN_DATABASE_URL:-sqlite:$dev/azen.db}"
export AZEN_BACKEND_ADDR="${AZEN_BACKEND_ADDR:-127.0.0.1:8081}"
export AZEN_BACKENDS="${AZEN_BACKENDS:-$AZEN_BACKEND_ADDR}"
export AZEN_SITE_ADDRESS="${AZEN_SITE_ADDRESS:-:8080}"
export AZEN_ADMIN_ADDR="${AZEN_ADMIN_ADDR:-localhost:2019}"
# No load balancer watches a dev backend: stop it at once on Ctrl-C.
export AZEN_BACKEND_DRAIN_DELAY="${AZEN_BACKEND_DRAIN_DELAY:-0s}"
port="${AZEN_SITE_ADDRESS##*:}"
change_ports="AZEN_SITE_ADDRESS=:9080 AZEN_BACKEND_ADDR=127.0.0.1:9081 AZEN_ADMIN_ADDR=localhost:9019 make run"

# Every port must be free before anything starts: Caddy binds with
# SO_REUSEPORT, so a second gateway would silently share :8080 and the admin
# port with the first one, and requests would go to either.
in_use() { # host port
	local host="${1:-127.0.0.1}"
	[ "$host" = "0.0.0.0" ] && host=127.0.0.1
	if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Hltn "sport = :$2" 2>/dev/null)" ]; then
		return 0
	fi
	(exec 3<>"/dev/tcp/$host/$2") 2>/dev/null
}
busy=0
for spec in "AZEN_SITE_ADDRESS=$AZEN_SITE_ADDRESS:the gateway's site" \
	"AZEN_BACKEND_ADDR=$AZEN_BACKEND_ADDR:the backend" \
	"AZEN_ADMIN_ADDR=$AZEN_ADMIN_ADDR:the gateway's admin API"; do
	var="${spec%%=*}" rest="${spec#*=}"
	what="${rest##*:}" addr="${rest%:*}"
	host="${addr%:*}" p="${addr##*:}"
	host="${host#http://}" host="${host#https://}"
	if in_use "$host" "$p"; then
		echo "make run: port $p ($var=$addr, $what) is already in use, perhaps by another make run." >&2
		busy=1
	fi
done
if [ "$busy" = 1 ]; then
	echo "Stop it, or choose free ports, for example:" >&2
	echo "  $change_ports" >&2
	exit 1
fi

# The previous run's logs are kept beside the new ones.
for f in gateway backend; do
	if [ -s "$dev/$f.log" ]; then mv -f "$dev/$f.log" "$dev/$f.log.1"; fi
done

pids=()
stop() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "stopped"
}
trap stop INT TERM EXIT

$bin/azen-backend > $dev/backend.log 2>&1 &
pids+=($!)
$bin/azen-gateway run --config Caddyfile --adapter caddyfile > $dev/gateway.log 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
	if curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 &&
		curl -fsS "http://${AZEN_BACKEND_ADDR}/healthz" >/dev/null 2>&1; then
		break
	fi
	for p in "${pids[@]}"; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "a process exited at start; see $dev/backend.log and $dev/gateway.log" >&2
			tail -n 5 $dev/backend.log $dev/gateway.log >&2
			exit 1
		fi
	done
	sleep 0.1
done

base="http://127.0.0.1:${port}"
json_field() { sed -n 's/.*"'"$1"'": *"\([^"]*\)".*/\1/p' | head -n 1; }

# The development login for the console: created once, like the key below,
# and reused while it still signs in (a deleted $dev/azen.db takes it along).
dev_email="" dev_password="" dev_org=""
if [ -s $dev/dev-login ]; then
	# shellcheck disable=SC1091
	. $dev/dev-login
fi
if [ -z "$dev_email" ] || ! curl -fsS -o /dev/null -X POST "$base/auth/sign-in" -H 'Content-Type: application/json' \
	-d "{\"email\":\"$dev_email\",\"password\":\"$dev_password\"}" 2>/dev/null; then
	dev_email="dev-$(date +%s)@example.com"
	dev_password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
	jar=$dev/dev-cookies
	rm -f "$jar"
	if curl -fsS -c "$jar" -b "$jar" -o /dev/null -X POST "$base/auth/sign-up" -H 'Content-Type: application/json' \
		-d "{\"email\":\"$dev_email\",\"password\":\"$dev_password\",\"name\":\"Developer\"}" &&
		dev_org=$(curl -fsS -c "$jar" -b "$jar" -X POST "$base/console/api/organizations" -H 'Content-Type: application/json' \
			-d '{"name":"Development"}' | json_field id) && [ -n "$dev_org" ]; then
		printf 'dev_email=%s\ndev_password=%s\ndev_org=%s\n' "$dev_email" "$dev_password" "$dev_org" > $dev/dev-login
		rm -f $dev/dev-key $dev/dev-key.json # a new organization gets a new key
	else
		echo "could not create the development login (see $dev/backend.log)" >&2
		dev_email=""
	fi
	rm -f "$jar"
fi
dev_key_org="${dev_org:-00000000-0000-4000-8000-000000000001}"

# The development key, in the development login's organization (so its
# memories show in the console): reused while its id is still in the
# database, created otherwise.
key_id=$(sed -n 's/.*"id": *"\([^"]*\)".*/\1/p' $dev/dev-key.json 2>/dev/null | head -n 1 || true)
if [ -z "$key_id" ] || ! $bin/azen-gateway keys list --json 2>/dev/null | grep -q "\"$key_id\""; then
	if $bin/azen-gateway keys create --org "$dev_key_org" --user dev \
		--name "make run" --json > $dev/dev-key.json; then
		sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' $dev/dev-key.json > $dev/dev-key
	else
		echo "could not create a development key (see the error above)" >&2
		rm -f $dev/dev-key $dev/dev-key.json
	fi
fi

echo
echo "azen is running: gateway http://127.0.0.1:${port}, backend http://${AZEN_BACKEND_ADDR}, admin API http://${AZEN_ADMIN_ADDR}"
echo "other ports:         $change_ports"
echo "readiness:           curl -s http://127.0.0.1:${port}/readyz"
echo "keys:                AZEN_DATABASE_URL=$(printf %q "$AZEN_DATABASE_URL") $(printf %q "$bin/azen-gateway") keys list"
echo "logs:                $dev/gateway.log, $dev/backend.log (the previous run's: *.log.1); Ctrl-C stops everything"
if [ -n "$dev_email" ]; then
	echo
	echo "console:             ${base}/console/"
	echo "development login:   ${dev_email} / ${dev_password}"
fi
if [ -s $dev/dev-key ]; then
	key=$(cat $dev/dev-key)
	echo
	echo "development API key: ${key}"
	echo "SDK base URL:        http://127.0.0.1:${port}/api/v1"
	echo "try it:"
	echo "  curl -s -X POST http://127.0.0.1:${port}/api/v1/memory -H 'azen-api-key: ${key}' -H 'Content-Type: application/json' -d '{\"text\":\"I like green tea\"}'"
	echo "  curl -s -X POST http://127.0.0.1:${port}/api/v1/memory/search -H 'azen-api-key: ${key}' -H 'Content-Type: application/json' -d '{\"query\":\"tea\"}'"
fi
wait -n "${pids[@]}" || true
