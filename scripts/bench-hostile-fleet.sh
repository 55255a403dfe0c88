#!/usr/bin/env bash
# bench-hostile-fleet.sh measures the peak RSS and wall time of
# `redisbot fleet --json` over (a) a fleet of healthy fake servers and (b)
# the same fleet with some of them replaced by hostile ones (issue 12: no
# server can bloat redisbot). Both run side by side, RUNS times each,
# alternating, with the load average before each run; the results go in
# docs/benchmarks.md.
#
#   scripts/bench-hostile-fleet.sh                 # 1,000 instances, 50 hostile, 3 runs
#   HEALTHY=200 HOSTILE=40 RUNS=1 scripts/bench-hostile-fleet.sh
#   BULK=0 scripts/bench-hostile-fleet.sh          # without the big-info servers
#
# The fleet is served by scripts/hostilefleet (handlers/resptest servers
# in one process); redisbot is the real binary, built here, measured by GNU
# time (`/usr/bin/time -v`, installed with apt-get when missing). Every run
# is checked: one report per instance, every hostile instance but the
# big-info ones (see scripts/hostilefleet) failed with class protocol and
# nothing else failed, exit code 2 (the healthy fleet is fragmented:
# critical) or 3 (probe errors), no panic.
set -euo pipefail

HEALTHY=${HEALTHY:-1000}
HOSTILE=${HOSTILE:-50}
RUNS=${RUNS:-3}
BULK=${BULK:-} # bytes of the big-info servers' INFO; default the probe's bulk limit
GO=${GO:-go}

cd "$(dirname "$0")/.."

. scripts/gnu-time.sh

work=$(mktemp -d -t redisbot-bench-hostile-XXXXXX)
fleet_pid=""
cleanup() {
	if [ -n "$fleet_pid" ]; then
		kill "$fleet_pid" 2>/dev/null || true
		wait "$fleet_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "building redisbot and the fleet server"
"$GO" build -o "$work/redisbot" ./cmd/redisbot
"$GO" build -o "$work/hostilefleet" ./scripts/hostilefleet

"$work/hostilefleet" -healthy "$HEALTHY" -hostile "$HOSTILE" ${BULK:+-bulk "$BULK"} -dir "$work" &
fleet_pid=$!
for _ in $(seq 600); do
	[ -f "$work/ready" ] && break
	if ! kill -0 "$fleet_pid" 2>/dev/null; then
		echo "error: the fleet server exited before it was ready" >&2
		exit 1
	fi
	sleep 0.1
done
if [ ! -f "$work/ready" ]; then
	echo "error: the fleet server was not ready within 60 s" >&2
	exit 1
fi
# shellcheck source=/dev/null
. "$work/ready" # healthy, hostile, protocol, bulk
echo "fleet: $healthy instances; the hostile fleet has $hostile hostile ones, $protocol of them breaking a limit$([ "$bulk" -gt 0 ] && echo ", the others answering INFO with $bulk bytes")"

# measure VARIANT RUN: one `fleet --json` under GNU time, checked, as a
# table row.
measure() {
	local variant=$1 run=$2 load code rss wall reports failed want_code want_failed
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	set +e
	/usr/bin/time -v -o "$work/time.txt" "$work/redisbot" fleet --json --config "$work/$variant.yaml" \
		>"$work/out.json" 2>"$work/err.txt"
	code=$?
	set -e
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
	reports=$(grep -c '^    "instance": ' "$work/out.json" || true)
	failed=$(grep -c '^      "class": ' "$work/out.json" || true)
	if [ "$variant" = healthy ]; then
		want_code=2 want_failed=0
	else
		want_code=3 want_failed=$protocol
	fi
	if [ "$code" -ne "$want_code" ] || [ "$reports" -ne "$HEALTHY" ] || [ "$failed" -ne "$want_failed" ] ||
		[ "$(grep -c '^      "class": "protocol",' "$work/out.json" || true)" -ne "$want_failed" ]; then
		echo "error: $variant run $run: exit $code (want $want_code), $reports reports (want $HEALTHY), $failed failed probes (want $want_failed, all protocol)" >&2
		head -c 2000 "$work/err.txt" >&2
		exit 1
	fi
	if grep -q 'internal error' "$work/err.txt"; then
		echo "error: $variant run $run: a panic" >&2
		cat "$work/err.txt" >&2
		exit 1
	fi
	awk -v v="$variant" -v r="$run" -v kb="$rss" -v w="$wall" -v l="$load" \
		'BEGIN { printf "| %s | %d | %.1f | %s | %s |\n", v, r, kb / 1024, w, l }'
}

echo
echo "redisbot fleet --json, $HEALTHY instances ($HOSTILE hostile in the hostile fleet), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| fleet | run | peak RSS MiB | wall (m:ss) | load average before |"
echo "|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
	measure healthy "$run"
	measure hostile "$run"
done
