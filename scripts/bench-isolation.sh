#!/bin/sh
# Chat isolation (issue 18): BenchmarkBurstWithDeadInstances (bot/slackbot),
# 25 healthy and 25 blackholed `/redis diagnose` at once, on this tree and on
# a baseline commit (BASE, by default main before the slow lane), alternately,
# with the load average before each run. The baseline gets this tree's
# benchmark file, which needs only what both trees have.
#
#   scripts/bench-isolation.sh            # ROUNDS=2, about a minute
set -eu
GO=${GO:-go}
BASE=${BASE:-3735c85}
ROUNDS=${ROUNDS:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/base"
git -C "$root" archive "$BASE" | tar -x -C "$tmp/base"
cp "$root/bot/slackbot/isolation_bench_test.go" "$tmp/base/bot/slackbot/"

burst() {
	load=$(cut -d' ' -f1 /proc/loadavg)
	(cd "$1" && $GO test -run '^$' -bench BenchmarkBurstWithDeadInstances -benchtime 1x ./bot/slackbot/) |
		grep -E '^BenchmarkBurstWithDeadInstances' | sed "s|^|$2 (load $load): |"
}

i=0
while [ "$i" -lt "$ROUNDS" ]; do
	burst "$tmp/base" "baseline $BASE"
	burst "$root" "slow lane $(git -C "$root" rev-parse --short HEAD)"
	i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
