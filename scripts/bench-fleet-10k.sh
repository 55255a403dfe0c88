#!/usr/bin/env bash
# bench-fleet-10k.sh measures the peak RSS and wall time of `redisbot fleet
# --json` over 10,000 fake instances (issue 18: at most 300 MB), RUNS times,
# with the load average before each run; with BASE set, a binary built from
# that revision runs side by side, alternating. The results go in
# docs/benchmarks.md, "10,000 instances (#18)".
#
#   scripts/bench-fleet-10k.sh                   # 10,000 healthy instances, 3 runs
#   BASE=3735c85 scripts/bench-fleet-10k.sh      # and the code before, alternating
#   FAULTS=1 scripts/bench-fleet-10k.sh          # issue 18's faults: 5% blackholed, 5% slow, 2% down
#   INSTANCES=2000 RUNS=1 scripts/bench-fleet-10k.sh
#
# The fleet is served by scripts/hostilefleet, which needs about 3 file
# descriptors an instance: over a hard limit of 20,000 (the machines this
# runs on), 10,000 instances take two processes of PER_SERVER each. Their
# configs are concatenated with the instance names prefixed by the
# process's number, so that names stay unique. Every run is checked: one
# report per instance, the exit code of a fragmented fleet (2) or of probe
# errors (3, with FAULTS), a failed probe for every down and blackholed
# instance and none for a healthy one (a slow one may time out on a loaded
# machine), no panic.
set -euo pipefail

INSTANCES=${INSTANCES:-10000}
PER_SERVER=${PER_SERVER:-5000}
RUNS=${RUNS:-3}
BASE=${BASE:-}
FAULTS=${FAULTS:-}
GO=${GO:-go}

cd "$(dirname "$0")/.."

. scripts/gnu-time.sh

work=$(mktemp -d -t redisbot-bench-fleet-XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ -d "$work/base-src" ]; then
		git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "building redisbot and the fleet server"
"$GO" build -o "$work/redisbot-after" ./cmd/redisbot
"$GO" build -o "$work/hostilefleet" ./scripts/hostilefleet
binaries=(after)
if [ -n "$BASE" ]; then
	echo "building redisbot at $BASE"
	git worktree add --detach "$work/base-src" "$BASE" >/dev/null 2>&1
	(cd "$work/base-src" && "$GO" build -o "$work/redisbot-before" ./cmd/redisbot)
	binaries=(before after)
fi

fault_flags=()
config=healthy.yaml
if [ -n "$FAULTS" ]; then
	fault_flags=(-blackholed 0.05 -slow 0.05 -down 0.02)
	config=faults.yaml
fi

# Start the fleet servers, PER_SERVER instances each (the last the rest).
left=$INSTANCES
n=0
while [ "$left" -gt 0 ]; do
	size=$((left < PER_SERVER ? left : PER_SERVER))
	mkdir -p "$work/fleet$n"
	"$work/hostilefleet" -healthy "$size" -hostile 0 -dir "$work/fleet$n" "${fault_flags[@]}" &
	pids+=($!)
	left=$((left - size))
	n=$((n + 1))
done
down=0 blackholed=0 slow=0
echo "instances:" >"$work/fleet.yaml"
for i in $(seq 0 $((n - 1))); do
	for _ in $(seq 1200); do
		[ -f "$work/fleet$i/ready" ] && break
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			echo "error: fleet server $i exited before it was ready" >&2
			exit 1
		fi
		sleep 0.1
	done
	if [ ! -f "$work/fleet$i/ready" ]; then
		echo "error: fleet server $i was not ready within 120 s" >&2
		exit 1
	fi
	# ready counts the faulty instances of faults.yaml (0 without FAULTS).
	down=$((down + $(sed -n 's/^down=//p' "$work/fleet$i/ready")))
	blackholed=$((blackholed + $(sed -n 's/^blackholed=//p' "$work/fleet$i/ready")))
	slow=$((slow + $(sed -n 's/^slow=//p' "$work/fleet$i/ready")))
	sed -e 1d -e "s/^  - name: /  - name: p$i-/" "$work/fleet$i/$config" >>"$work/fleet.yaml"
done
got=$(grep -c '^  - name: ' "$work/fleet.yaml")
if [ "$got" -ne "$INSTANCES" ]; then
	echo "error: the merged config has $got instances, want $INSTANCES" >&2
	exit 1
fi
min_failed=$((down + blackholed))
max_failed=$((min_failed + slow))
want_code=2
[ "$min_failed" -gt 0 ] && want_code=3
echo "fleet: $INSTANCES instances from $n fleet servers; $blackholed blackholed, $slow slow, $down down"

# measure BINARY RUN: one `fleet --json` under GNU time, checked, as a
# table row.
measure() {
	local bin=$1 run=$2 load code rss wall reports failed
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	set +e
	/usr/bin/time -v -o "$work/time.txt" "$work/redisbot-$bin" fleet --json --config "$work/fleet.yaml" \
		>"$work/out.json" 2>"$work/err.txt"
	code=$?
	set -e
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
	reports=$(grep -c '^    "instance": ' "$work/out.json" || true)
	failed=$(grep -c '^      "class": ' "$work/out.json" || true)
	if [ "$code" -ne "$want_code" ] || [ "$reports" -ne "$INSTANCES" ] || [ "$failed" -lt "$min_failed" ] || [ "$failed" -gt "$max_failed" ]; then
		echo "error: $bin run $run: exit $code (want $want_code), $reports reports (want $INSTANCES), $failed failed probes (want $min_failed to $max_failed)" >&2
		head -c 2000 "$work/err.txt" >&2
		exit 1
	fi
	if grep -q 'internal error' "$work/out.json" "$work/err.txt"; then
		echo "error: $bin run $run: a panic" >&2
		exit 1
	fi
	awk -v b="$bin" -v r="$run" -v kb="$rss" -v w="$wall" -v f="$failed" -v l="$load" \
		'BEGIN { printf "| %s | %d | %.0f | %s | %d | %s |\n", b, r, kb / 1024, w, f, l }'
}

echo
echo "redisbot fleet --json, $INSTANCES instances${FAULTS:+ with faults}, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| binary | run | peak RSS MiB | wall (m:ss) | failed probes | load average before |"
echo "|---|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
	for bin in "${binaries[@]}"; do
		measure "$bin" "$run"
	done
done
