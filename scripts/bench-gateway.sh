#!/usr/bin/env bash
# bench-gateway.sh: what azen_auth + azen_ratelimit cost on top of a bare
# Caddy reverse_proxy.
#
# Starts, on this machine: redis-server, one upstream (a Caddy `respond`) and
# five gateways to it, all with the same upstream transport settings:
#   bare  reverse_proxy only
#   floor bare plus the headers the contract makes every admitted request
#         carry (eight to the upstream, six to the client) with fixed values,
#         set by a handler that does nothing else (scripts/benchfloor): what
#         the contract's headers cost before any of our code runs
#   auth  request id + azen_auth (a real key on SQLite) + reverse_proxy
#   full  auth + azen_ratelimit on Redis, limits far above the load
#   near  the same with the key held at its limit (NEAR_RATE, NEAR_BURST):
#         most requests are refused, the rest use the shared bucket's last
#         tokens one by one
# Then it runs interleaved pairs (bare and one other, the order alternating
# by round), at saturation (wrk, a closed loop of CONNS connections) and at
# light load (scripts/benchrate: a fixed LIGHT_RATE requests per second, an
# open loop), and prints, not asserts:
#   - throughput ratio X/bare per pair (medians), full/bare goal >= 0.90,
#     and full/floor: what our code costs beyond the contract's headers,
#   - p50/p99 latency and what X adds to bare at light load (goal: p99
#     added <= 0.5 ms),
#   - Redis script calls per admitted request for full and near, from INFO
#     commandstats deltas around each run (goal: <= 0.05 far from the limit).
# This machine is shared: before each pair it waits (at most LOAD_WAIT
# seconds) for the 1-minute load average to fall below LOAD_MAX, and prints
# the load average beside each figure.
#
# Usage: scripts/bench-gateway.sh
# Tunables (environment): ROUNDS=3 DURATION=10s CONNS=64 THREADS=2 WARMUP=3s
#   LIGHT_RATE=1000 LOAD_MAX=1.0 LOAD_WAIT=120 NEAR_RATE=30000/m NEAR_BURST=50
#   UPSTREAM_IDLE=128 (keepalive_idle_conns_per_host, as the shipped Caddyfile)
#   FLOOR=contract    the floor's headers: contract (the 8 + 6 above),
#                     request (the 8 request headers only) or compact (what a
#                     smaller contract would carry: one signed identity header
#                     up, X-Request-Id and the two draft-10 fields back)
#   BENCH_REDIS_URL=redis://host:port  use that Redis (e.g. on its own host)
#                                      instead of starting one here (script
#                                      calls are counted as INFO deltas).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-3s}
LIGHT_RATE=${LIGHT_RATE:-1000}
LOAD_MAX=${LOAD_MAX:-1.0}
LOAD_WAIT=${LOAD_WAIT:-120}
NEAR_RATE=${NEAR_RATE:-30000/m}
NEAR_BURST=${NEAR_BURST:-50}
UPSTREAM_IDLE=${UPSTREAM_IDLE:-128}
FLOOR=${FLOOR:-contract}

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

echo "building azen-gateway and benchrate ..." >&2
(cd "$root" && go build -o "$work/azen-gateway" ./gateway && go build -o "$work/benchrate" ./scripts/benchrate &&
	go build -o "$work/benchfloor" ./scripts/benchfloor)
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
near_port=$(free_port)
floor_port=$(free_port)

# The same upstream transport for every gateway (the shipped Caddyfile's
# keep-alive pool), so the comparison is about the handlers only.
proxy="reverse_proxy 127.0.0.1:$up_port {
			transport http {
				keepalive_idle_conns_per_host $UPSTREAM_IDLE
			}
		}"

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
	handle {
		$proxy
	}
}
EOF

cat >"$work/floor.Caddyfile" <<EOF
{
	admin off
}
:$floor_port {
	handle {
		bench_contract_headers $FLOOR
		$proxy
	}
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
		$proxy
	}
	handle {
		azen_error 404 "Unknown endpoint"
	}
	handle_errors {
		azen_error
	}
}
EOF

# The same gateway held near its limit.
sed -e "s/^:$full_port {/:$near_port {/" -e "s|rate  6000000/m|rate  $NEAR_RATE|" \
	-e "s|burst 100000|burst $NEAR_BURST|" "$work/full.Caddyfile" >"$work/near.Caddyfile"

# The same gateway without the limiter.
awk -v port="$auth_port" '
	/azen_ratelimit \{/ { skip = 1 }
	skip && /^\t\t\}/ { skip = 0; next }
	skip { next }
	{ sub(/^:[0-9]+ \{/, ":" port " {"); print }' "$work/full.Caddyfile" >"$work/auth.Caddyfile"

export AZEN_DATABASE_URL="sqlite:$work/azen.db"
export AZEN_REDIS_URL="$redis_url"
export AZEN_GATEWAY_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

start() { # name config port [binary]
	HOME="$work" XDG_DATA_HOME="$work/data-$1" XDG_CONFIG_HOME="$work/config-$1" \
		"${4:-$gw}" run --config "$2" --adapter caddyfile >"$work/$1.log" 2>&1 &
	pids+=($!)
	wait_port "$3"
}
start up "$work/up.Caddyfile" "$up_port"
start bare "$work/bare.Caddyfile" "$bare_port"
start full "$work/full.Caddyfile" "$full_port"
start auth "$work/auth.Caddyfile" "$auth_port"
start near "$work/near.Caddyfile" "$near_port"
start floor "$work/floor.Caddyfile" "$floor_port" "$work/benchfloor"

key=$(HOME="$work" "$gw" keys create --org "$(python3 -c 'import uuid; print(uuid.uuid4())')" \
	--user bench --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

bare_url="http://127.0.0.1:$bare_port/api/v1/memory"
full_url="http://127.0.0.1:$full_port/api/v1/memory"
auth_url="http://127.0.0.1:$auth_port/api/v1/memory"
near_url="http://127.0.0.1:$near_port/api/v1/memory"
floor_url="http://127.0.0.1:$floor_port/api/v1/memory"
for u in "$full_url" "$near_url"; do
	status=$(curl -s -o /dev/null -w '%{http_code}' -H "azen-api-key: $key" "$u")
	[ "$status" = 200 ] || { echo "$u answered $status, not 200" >&2; cat "$work/full.log" >&2; exit 1; }
done

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

# run_rate URL → the same line, at LIGHT_RATE requests per second.
run_rate() {
	"$work/benchrate" -url "$1" -rate "$LIGHT_RATE" -duration "$DURATION" -header "azen-api-key: $key"
}

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

script_calls() {
	rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '
		/^cmdstat_(evalsha|eval):/ { n += $3 } END { print n + 0 }'
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# wait_load: until the 1-minute load average is below LOAD_MAX, at most
# LOAD_WAIT seconds; prints the load average it ends with.
wait_load() {
	local waited=0 l
	while :; do
		l=$(loadavg)
		if awk -v l="$l" -v m="$LOAD_MAX" 'BEGIN { exit !(l < m) }'; then break; fi
		[ "$waited" -ge "$LOAD_WAIT" ] && break
		sleep 5
		waited=$((waited + 5))
	done
	echo "$l"
}

url_of() {
	case $1 in
	bare) echo "$bare_url" ;;
	auth) echo "$auth_url" ;;
	full) echo "$full_url" ;;
	near) echo "$near_url" ;;
	floor) echo "$floor_url" ;;
	esac
}

echo "warming up ..." >&2
for w in bare floor auth full near; do DURATION=$WARMUP run_wrk "$(url_of $w)" "$CONNS" >/dev/null; done

# Each line of $work/runs: level round pair which rps p50 p99 requests non2xx script_calls load
: >"$work/runs"
pair=0
for round in $(seq 1 "$ROUNDS"); do
	for level in sat light; do
		others="auth full near"
		[ "$level" = sat ] && others="floor $others" # at light load the headers' latency is noise
		for x in $others; do
			pair=$((pair + 1))
			load=$(wait_load)
			order="bare $x"
			[ $((round % 2)) -eq 0 ] && order="$x bare"
			for which in $order; do
				before=$(script_calls)
				if [ "$level" = sat ]; then
					res=$(run_wrk "$(url_of "$which")" "$CONNS")
				else
					res=$(run_rate "$(url_of "$which")")
				fi
				calls=$(($(script_calls) - before))
				echo "$level round $round pair $pair $which: $res (script calls $calls, load $load)" >&2
				echo "$level $round $pair $which $res $calls $load" >>"$work/runs"
			done
		done
	done
done

summarise() { # level
	local f="$work/runs" lv=$1
	col() { awk -v l="$lv" -v w="$1" -v c="$2" '$1 == l && $4 == w { print $c }' "$f" | median; }
	ratio() { awk -v l="$lv" -v x="$1" '$1 == l && $4 == "bare" { b[$3] = $5 } $1 == l && $4 == x { y[$3] = $5 } END { for (p in y) if (b[p] > 0) printf "%.4f\n", y[p] / b[p] }' "$f" | median; }
	added() { awk -v l="$lv" -v x="$1" -v c="$2" '$1 == l && $4 == "bare" { b[$3] = $c } $1 == l && $4 == x { y[$3] = $c } END { for (p in y) printf "%.3f\n", y[p] - b[p] }' "$f" | median; }
	loads() { awk -v l="$lv" '$1 == l { print $11 }' "$f" | sort -u -g | tr '\n' ' '; }
	calls_per() { awk -v l="$lv" -v x="$1" '$1 == l && $4 == x { c += $10; a += $8 - $9 } END { if (a > 0) printf "%.4f (%d calls, %d admitted)", c / a, c, a; else print "n/a" }' "$f"; }
	admitted_share() { awk -v l="$lv" -v x="$1" '$1 == l && $4 == x { r += $8; n += $9 } END { if (r > 0) printf "%.1f %%", 100 * (r - n) / r }' "$f"; }
	printf "  load averages before its pairs: %s\n" "$(loads)"
	printf "  throughput req/s (medians): bare %s, floor %s, auth %s, full %s, near %s\n" "$(col bare 5)" "$(col floor 5)" "$(col auth 5)" "$(col full 5)" "$(col near 5)"
	printf "  ratio to bare (median of pairs): floor %s, auth %s, full %s (goal >= 0.90), near %s\n" "$(ratio floor)" "$(ratio auth)" "$(ratio full)" "$(ratio near)"
	if [ "$lv" = sat ]; then
		printf "  full/floor (the two medians' ratio: what our code costs beyond the contract's headers): %s\n" \
			"$(awk -v f="$(ratio full)" -v c="$(ratio floor)" 'BEGIN { if (c > 0) printf "%.3f", f / c; else print "n/a" }')"
	fi
	printf "  p50 ms: bare %s, auth %s, full %s, near %s; added to bare: auth %s, full %s, near %s\n" \
		"$(col bare 6)" "$(col auth 6)" "$(col full 6)" "$(col near 6)" "$(added auth 6)" "$(added full 6)" "$(added near 6)"
	printf "  p99 ms: bare %s, auth %s, full %s, near %s; added to bare: auth %s, full %s, near %s\n" \
		"$(col bare 7)" "$(col auth 7)" "$(col full 7)" "$(col near 7)" "$(added auth 7)" "$(added full 7)" "$(added near 7)"
	printf "  Redis script calls per admitted request: full %s; near %s\n" "$(calls_per full)" "$(calls_per near)"
	printf "  admitted (2xx) share: full %s, near %s\n" "$(admitted_share full)" "$(admitted_share near)"
}

echo
echo "== azen gateway benchmark ($(nproc) CPUs, $ROUNDS rounds of interleaved pairs, $DURATION each, wrk -t$THREADS -c$CONNS; light: $LIGHT_RATE req/s open loop) =="
echo "saturation (wrk -c $CONNS):"
summarise sat
echo "light load ($LIGHT_RATE req/s):"
summarise light
echo "  near: $NEAR_RATE burst $NEAR_BURST; full: 6000000/m burst 100000; floor: $FLOOR headers"
