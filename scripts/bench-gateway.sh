#!/usr/bin/env bash
# bench-gateway.sh: what azen_auth + azen_ratelimit cost on top of a bare
# Caddy reverse_proxy.
#
# Starts, on this machine: redis-server, one upstream (a Caddy `respond`), a
# bare gateway (reverse_proxy only), the full gateway (request id, azen_auth
# with a real key on SQLite, azen_ratelimit on Redis with limits far above
# the offered load, reverse_proxy) and, to tell the limiter's share apart,
# the same without azen_ratelimit ("auth"), all to that same upstream. Then
# it runs wrk against them in interleaved rounds (the order rotates each
# round), at saturation and at light load, and prints:
#   - the median throughput ratio full/bare (goal >= 0.90), and full/auth,
#   - p50/p99 latency of each (medians over rounds) and the latency added,
#   - Redis calls per request of the full gateway, from INFO commandstats
#     deltas (goal: exactly one script call per allowed request).
#
# Usage: scripts/bench-gateway.sh
# Tunables (environment): ROUNDS=6 DURATION=10s CONNS=64 LIGHT_CONNS=2
#                         THREADS=2 WARMUP=3s
#   BENCH_REDIS_URL=redis://host:port  use that Redis (e.g. on its own host)
#                                      instead of starting one here; its
#                                      command statistics are reset.
set -euo pipefail

ROUNDS=${ROUNDS:-6}
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

if [ -n "${BENCH_REDIS_URL:-}" ]; then
	redis_url=$BENCH_REDIS_URL
else
	redis_port=$(free_port)
	redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
		--dir "$work" >"$work/redis.log" 2>&1 &
	pids+=($!)
	wait_port "$redis_port"
	redis_url="redis://127.0.0.1:$redis_port"
fi
rcli() { redis-cli -u "$redis_url" "$@"; }

up_port=$(free_port)
bare_port=$(free_port)
full_port=$(free_port)
auth_port=$(free_port)

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

# The same gateway without the limiter.
awk -v port="$auth_port" '
	/azen_ratelimit \{/ { skip = 1 }
	skip && /^\t\t\}/ { skip = 0; next }
	skip { next }
	{ sub(/^:[0-9]+ \{/, ":" port " {"); print }' "$work/full.Caddyfile" >"$work/auth.Caddyfile"

export AZEN_DATABASE_URL="sqlite:$work/azen.db"
export AZEN_REDIS_URL="$redis_url"
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
start auth "$work/auth.Caddyfile" "$auth_port"

key=$(HOME="$work" "$gw" keys create --org "$(python3 -c 'import uuid; print(uuid.uuid4())')" \
	--user bench --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

bare_url="http://127.0.0.1:$bare_port/api/v1/memory"
full_url="http://127.0.0.1:$full_port/api/v1/memory"
auth_url="http://127.0.0.1:$auth_port/api/v1/memory"
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
DURATION=$WARMUP run_wrk "$auth_url" "$CONNS" >/dev/null

: >"$work/sat" ; : >"$work/light"
full_reqs=0 full_non2xx=0
rcli config resetstat >/dev/null
for level in sat light; do
	conns=$CONNS
	[ "$level" = light ] && conns=$LIGHT_CONNS
	for round in $(seq 1 "$ROUNDS"); do
		case $((round % 3)) in
		1) order="bare auth full" ;;
		2) order="auth full bare" ;;
		0) order="full bare auth" ;;
		esac
		for which in $order; do
			case $which in
			bare) url=$bare_url ;;
			auth) url=$auth_url ;;
			full) url=$full_url ;;
			esac
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
	pair_ratio() { awk -v a="$1" -v b="$2" '$2 == a { x[$1] = $3 } $2 == b { y[$1] = $3 } END { for (r in y) printf "%.4f\n", x[r] / y[r] }' "$f" | median; }
	col() { awk -v w="$1" -v c="$2" '$2 == w { print $c }' "$f" | median; }
	local bare_rps auth_rps full_rps b50 b99 a50 a99 f50 f99
	bare_rps=$(col bare 3) auth_rps=$(col auth 3) full_rps=$(col full 3)
	b50=$(col bare 4) b99=$(col bare 5) a50=$(col auth 4) a99=$(col auth 5) f50=$(col full 4) f99=$(col full 5)
	printf "  throughput req/s: bare %s, auth %s, full %s\n" "$bare_rps" "$auth_rps" "$full_rps"
	printf "  median ratio full/bare %s (goal >= 0.90); full/auth %s (the limiter alone)\n" "$(pair_ratio full bare)" "$(pair_ratio full auth)"
	printf "  latency p50 ms: bare %s, auth %s, full %s (full adds %.3f over bare, %.3f over auth)\n" "$b50" "$a50" "$f50" "$(echo "$f50 - $b50" | bc -l)" "$(echo "$f50 - $a50" | bc -l)"
	printf "  latency p99 ms: bare %s, auth %s, full %s (full adds %.3f over bare, %.3f over auth)\n" "$b99" "$a99" "$f99" "$(echo "$f99 - $b99" | bc -l)" "$(echo "$f99 - $a99" | bc -l)"
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
