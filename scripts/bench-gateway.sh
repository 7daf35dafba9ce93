#!/usr/bin/env bash
# bench-gateway.sh: what azen_auth + azen_ratelimit cost on top of a bare
# Caddy reverse_proxy.
#
# Starts, on this machine: redis-server, one upstream (a Caddy `respond`), a
# bare gateway (reverse_proxy only) and the full gateway (request id,
# azen_auth with a real key on SQLite, azen_ratelimit on Redis with limits far
# above the offered load, reverse_proxy), both to that same upstream. Then it
# runs wrk against both in interleaved pairs (the order alternates each
# round), at saturation and at light load, and prints:
#   - the median throughput ratio full/bare (goal >= 0.90),
#   - p50/p99 latency of each (medians over rounds) and the p99 added,
#   - Redis calls per request of the full gateway, from INFO commandstats
#     deltas (goal: exactly one script call per allowed request).
#
# Usage: scripts/bench-gateway.sh
# Tunables (environment): ROUNDS=5 DURATION=10s CONNS=64 LIGHT_CONNS=2
#                         THREADS=2 WARMUP=3s
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
LIGHT_CONNS=${LIGHT_CONNS:-2}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3s}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

need_apt() { # binary package
	command -v "$1" >/dev/null && return
	echo "installing $2 ..." >&2
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$2" >/dev/null
	command -v "$1" >/dev/null || { echo "cannot install $2; install it and retry" >&2; exit 1; }
}
need_apt wrk wrk
need_apt redis-server redis-server
need_apt redis-cli redis-tools

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
		sleep 0.05
	done
	echo "nothing listens on port $1" >&2
	exit 1
}

echo "building azen-gateway ..." >&2
(cd "$root" && go build -o "$work/azen-gateway" ./gateway)
gw="$work/azen-gateway"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"
rcli() { redis-cli -p "$redis_port" "$@"; }

up_port=$(free_port)
bare_port=$(free_port)
full_port=$(free_port)

cat >"$work/up.Caddyfile" <<EOF
{
	admin off
}
:$up_port {
	respond "ok" 200
}
EOF

cat >"$work/bare.Caddyfile" <<EOF
{
	admin off
}
:$bare_port {
	reverse_proxy 127.0.0.1:$up_port
}
EOF

cat >"$work/full.Caddyfile" <<EOF
{
	admin off
}
:$full_port {
	azen_request_id
	handle /api/v1/* {
		azen_auth {
			database {env.AZEN_DATABASE_URL}
			redis    {env.AZEN_REDIS_URL}
			secret   {env.AZEN_GATEWAY_SECRET}
		}
		azen_ratelimit {
			redis {env.AZEN_REDIS_URL}
			rate  6000000/m
			burst 100000
		}
		reverse_proxy 127.0.0.1:$up_port
	}
	handle {
		azen_error 404 "Unknown endpoint"
	}
	handle_errors {
		azen_error
	}
}
EOF

export AZEN_DATABASE_URL="sqlite:$work/azen.db"
export AZEN_REDIS_URL="redis://127.0.0.1:$redis_port"
export AZEN_GATEWAY_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

start() { # name config port
	HOME="$work" XDG_DATA_HOME="$work/data-$1" XDG_CONFIG_HOME="$work/config-$1" \
		"$gw" run --config "$2" --adapter caddyfile >"$work/$1.log" 2>&1 &
	pids+=($!)
	wait_port "$3"
}
start up "$work/up.Caddyfile" "$up_port"
start bare "$work/bare.Caddyfile" "$bare_port"
start full "$work/full.Caddyfile" "$full_port"

key=$(HOME="$work" "$gw" keys create --org "$(python3 -c 'import uuid; print(uuid.uuid4())')" \
	--user bench --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

bare_url="http://127.0.0.1:$bare_port/api/v1/memory"
full_url="http://127.0.0.1:$full_port/api/v1/memory"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "azen-api-key: $key" "$full_url")
[ "$status" = 200 ] || { echo "full gateway answered $status, not 200" >&2; cat "$work/full.log" >&2; exit 1; }

# run_wrk URL CONNS → prints "rps p50_ms p99_ms requests non2xx"
run_wrk() {
	local out
	out=$(wrk -t "$THREADS" -c "$2" -d "$DURATION" --latency -H "azen-api-key: $key" "$1")
	echo "$out" | awk '
		function ms(v) {
			if (v ~ /us$/) { sub(/us$/, "", v); return v / 1000 }
			if (v ~ /ms$/) { sub(/ms$/, "", v); return v + 0 }
			if (v ~ /s$/)  { sub(/s$/, "", v);  return v * 1000 }
			return v
		}
		/Requests\/sec:/         { rps = $2 }
		/^ +50%/                 { p50 = ms($2) }
		/^ +99%/                 { p99 = ms($2) }
		/requests in/            { reqs = $1 }
		/Non-2xx or 3xx/         { non2xx = $5 }
		END { printf "%s %.3f %.3f %s %d\n", rps, p50, p99, reqs, non2xx }'
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

script_calls() {
	rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '
		/^cmdstat_(evalsha|eval):/ { n += $3 } END { print n + 0 }'
}
all_calls() {
	rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ { n += $3 } END { print n + 0 }'
}
commandstats() {
	rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); print $1, $3 }' | sort
}

echo "warming up ..." >&2
DURATION=$WARMUP run_wrk "$bare_url" "$CONNS" >/dev/null
DURATION=$WARMUP run_wrk "$full_url" "$CONNS" >/dev/null

: >"$work/sat" ; : >"$work/light"
full_reqs=0 full_non2xx=0
rcli config resetstat >/dev/null
for level in sat light; do
	conns=$CONNS
	[ "$level" = light ] && conns=$LIGHT_CONNS
	for round in $(seq 1 "$ROUNDS"); do
		order="bare full"
		[ $((round % 2)) -eq 0 ] && order="full bare"
		for which in $order; do
			url=$bare_url
			[ "$which" = full ] && url=$full_url
			before=$(script_calls)
			res=$(run_wrk "$url" "$conns")
			after=$(script_calls)
			echo "$level round $round $which: $res (script calls $((after - before)))" >&2
			echo "$round $which $res" >>"$work/$level"
			if [ "$which" = full ]; then
				full_reqs=$((full_reqs + $(echo "$res" | awk '{print $4}')))
				full_non2xx=$((full_non2xx + $(echo "$res" | awk '{print $5}')))
			fi
		done
	done
done
total_scripts=$(script_calls)
total_all=$(all_calls)

summarise() { # level
	local f="$work/$1"
	local ratio bare_rps full_rps b50 b99 f50 f99
	ratio=$(awk '$2 == "bare" { b[$1] = $3 } $2 == "full" { f[$1] = $3 } END { for (r in b) printf "%.4f\n", f[r] / b[r] }' "$f" | median)
	bare_rps=$(awk '$2 == "bare" { print $3 }' "$f" | median)
	full_rps=$(awk '$2 == "full" { print $3 }' "$f" | median)
	b50=$(awk '$2 == "bare" { print $4 }' "$f" | median)
	b99=$(awk '$2 == "bare" { print $5 }' "$f" | median)
	f50=$(awk '$2 == "full" { print $4 }' "$f" | median)
	f99=$(awk '$2 == "full" { print $5 }' "$f" | median)
	printf "  throughput: bare %s req/s, full %s req/s, median ratio full/bare %s\n" "$bare_rps" "$full_rps" "$ratio"
	printf "  latency p50: bare %s ms, full %s ms (added %.3f ms)\n" "$b50" "$f50" "$(echo "$f50 - $b50" | bc -l)"
	printf "  latency p99: bare %s ms, full %s ms (added %.3f ms)\n" "$b99" "$f99" "$(echo "$f99 - $b99" | bc -l)"
}

echo
echo "== azen gateway benchmark ($(nproc) CPUs, $ROUNDS interleaved rounds of $DURATION, wrk -t$THREADS) =="
echo "saturation (wrk -c $CONNS):"
summarise sat
echo "light load (wrk -c $LIGHT_CONNS):"
summarise light
echo "Redis, full gateway (all runs: $full_reqs requests, $full_non2xx non-2xx):"
printf "  script calls (EVALSHA+EVAL) per request: %s\n" "$(echo "scale=4; $total_scripts / $full_reqs" | bc -l)"
printf "  all commands per request (script-internal TIME/GET/SET included): %s\n" "$(echo "scale=4; $total_all / $full_reqs" | bc -l)"
echo "  commandstats (calls): $(commandstats | tr '\n' ' ')"
