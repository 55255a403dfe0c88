#!/usr/bin/env bash
# bench-sweep-faults.sh times serve's sweep over a fleet with issue 18's
# faults (5% blackholed, 5% slow at 800 ms a reply, 2% down), the code
# before the short first probes (BASE) beside this tree, alternately, at
# each probe.concurrency in CONCURRENCY: the knee of the concurrency, and
# whether the probe stage of a sweep ends within the probe timeout + 3 s.
# The results go in docs/benchmarks.md, "Sweep time with faults (#18)".
#
#   scripts/bench-sweep-faults.sh                       # 10,000 instances
#   INSTANCES=1000 CONCURRENCY="128 1024" scripts/bench-sweep-faults.sh
#   BASE=<rev> SWEEPS=3 ROUNDS=2 scripts/bench-sweep-faults.sh
#
# The fleet is served by scripts/hostilefleet in processes of at most
# 5,000 instances each (a fleet server needs about 3 descriptors per
# instance; this machine's hard limit is 20,000), their faults.yaml
# concatenated. Each run is scripts/sweepbench (the sweep as serve wires
# it, Slack left out) for SWEEPS sweeps one after the other: the first is
# cold (every connection dialled, nothing known to be down), the next ones
# probe the instances found down with the short first timeout. Every
# sweep is checked: every down instance was refused and every blackholed
# one timed out; a slow one (800 ms a reply, two replies before INFO's
# on a new connection) may time out too on a loaded machine, and the
# table shows how many did.
set -euo pipefail

INSTANCES=${INSTANCES:-10000}
CONCURRENCY=${CONCURRENCY:-128 256 512 1024 2048}
SWEEPS=${SWEEPS:-2}
ROUNDS=${ROUNDS:-1}
TIMEOUT=${TIMEOUT:-2s}
BASE=${BASE:-b2c2e4f} # main before the short first probes (feb7698)
GO=${GO:-go}

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t redisbot-bench-sweep-faults-XXXXXX)
base="$work/base"
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	git -C "$root" worktree remove --force "$base" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building sweepbench (this tree and $BASE) and the fleet server"
(cd "$root" && "$GO" build -o "$work/sweepbench-after" ./scripts/sweepbench && "$GO" build -o "$work/hostilefleet" ./scripts/hostilefleet)
git -C "$root" worktree add --detach "$base" "$BASE" >/dev/null 2>&1
mkdir -p "$base/scripts/sweepbench"
cp "$root/scripts/sweepbench/main.go" "$base/scripts/sweepbench/"
(cd "$base" && "$GO" build -o "$work/sweepbench-before" ./scripts/sweepbench)

# The fleet: processes of at most 5,000 instances, each with the faults.
per=5000
parts=$(((INSTANCES + per - 1) / per))
configs=()
for k in $(seq "$parts"); do
	n=$((INSTANCES / parts))
	[ "$k" -eq "$parts" ] && n=$((INSTANCES - (parts - 1) * (INSTANCES / parts)))
	mkdir -p "$work/fleet$k"
	"$work/hostilefleet" -healthy "$n" -hostile 0 -blackholed 0.05 -slow 0.05 -slow-delay 800ms -down 0.02 -dir "$work/fleet$k" &
	pids+=($!)
	configs+=("$work/fleet$k/faults.yaml")
done
want_timeout=0 want_refused=0 slow_total=0
for k in $(seq "$parts"); do
	for _ in $(seq 1200); do
		[ -f "$work/fleet$k/ready" ] && break
		if ! kill -0 "${pids[$((k - 1))]}" 2>/dev/null; then
			echo "error: fleet server $k exited before it was ready (out of loopback ports? another 10,000-instance benchmark running?)" >&2
			exit 1
		fi
		sleep 0.1
	done
	if [ ! -f "$work/fleet$k/ready" ]; then
		echo "error: fleet server $k was not ready within 120 s" >&2
		exit 1
	fi
	# shellcheck source=/dev/null
	. "$work/fleet$k/ready" # blackholed, slow, down
	want_timeout=$((want_timeout + blackholed))
	want_refused=$((want_refused + down))
	slow_total=$((slow_total + slow))
	# Names are unique across the servers' configs.
	sed -i "s/name: /name: p$k-/" "$work/fleet$k/faults.yaml"
done
config=$(IFS=,; echo "${configs[*]}")
echo "fleet: $INSTANCES instances in $parts fleet servers, $want_timeout blackholed, $want_refused down, $slow_total slow (800 ms a reply)"

# measure BINARY CONCURRENCY: SWEEPS sweeps, as table rows.
measure() {
	local bin=$1 c=$2 load line n tick stage failed refused timeout stages cpu rss live
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	"$work/sweepbench-$bin" -config "$config" -concurrency "$c" -timeout "$TIMEOUT" -sweeps "$SWEEPS" >"$work/out.txt"
	while read -r line; do
		n=$(sed -E 's/^sweep ([0-9]+):.*/\1/' <<<"$line")
		tick=$(sed -E 's/.*tick ([0-9.]+) s.*/\1/' <<<"$line")
		stage=$(sed -E 's/.*probe stage ([0-9.]+) s.*/\1/' <<<"$line")
		failed=$(sed -E 's/.*failed ([^,]*), .*$/\1/' <<<"$line")
		rss=$(grep -oE 'peak rss [0-9]+ MiB' <<<"$line" | cut -d' ' -f3 || true)
		live=$(grep -oE 'live heap [0-9]+ MiB' <<<"$line" | cut -d' ' -f3 || true)
		cpu=$(grep -oE 'cpu [0-9.]+ s' <<<"$line" | cut -d' ' -f2 || true)
		stages=$(sed -E 's/.*, stages (.*)$/\1/' <<<"$line")
		refused=$(grep -oE 'refused=[0-9]+' <<<"$failed" | cut -d= -f2 || true)
		timeout=$(grep -oE 'timeout=[0-9]+' <<<"$failed" | cut -d= -f2 || true)
		if [ "$(sed -E 's/(refused|timeout)=[0-9]+ ?//g' <<<"$failed")" != "" ] || [ "${refused:-0}" -ne "$want_refused" ] ||
			[ "${timeout:-0}" -lt "$want_timeout" ] || [ "${timeout:-0}" -gt $((want_timeout + slow_total)) ]; then
			echo "error: $bin at $c, sweep $n: failed $failed, want refused=$want_refused and timeout=$want_timeout (up to $((want_timeout + slow_total)) with slow ones)" >&2
			exit 1
		fi
		echo "| $bin | $c | $n | $stage | $tick | ${cpu:--} | ${rss:--} | ${live:--} | ${timeout:-0} | $stages | $load |"
	done <"$work/out.txt"
}

echo
echo "serve's sweep over $INSTANCES instances with faults, probe.timeout $TIMEOUT, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'); before: $BASE"
echo
echo "| code | probe.concurrency | sweep | probe stage s | whole sweep s | bot CPU s | bot peak RSS MiB | bot live heap MiB | timed out | stages (logged by sweep done) | load average before |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for _ in $(seq "$ROUNDS"); do
	for c in $CONCURRENCY; do
		measure before "$c"
		measure after "$c"
	done
done
