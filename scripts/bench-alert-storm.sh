#!/bin/sh
# Issue 18's alert storm end to end: `redisbot serve` sweeping 1,000 fake
# instances every 10 s, 200 of which turn critical at once, posting to the
# local Slack under Slack's rate limits while /redis diagnose is asked in
# the alerts channel every 3 s (cmd/redisbot's TestAlertStorm with
# REDISBOT_STORM=1). It runs on a baseline commit (BASE, by default
# 967f3e4: main before 45b415b grouped alerts, which delivered them one by
# one) and on this tree, alternately, ROUNDS times, with the load average
# before each run. BASE gets this tree's test file, so it fails the
# grouping checks and prints its figures; it must have resptest's
# Server.SetInfo.
#
#   scripts/bench-alert-storm.sh             # ROUNDS=1, storm only: about 10 min
#   RECOVER=1 scripts/bench-alert-storm.sh   # and the recovery: the 10 min clear period, then the resolves
#
# `make test` runs TestAlertStorm at 100 instances, 20 critical, 3 s sweeps.
set -eu
GO=${GO:-go}
BASE=${BASE:-967f3e4}
ROUNDS=${ROUNDS:-1}
RECOVER=${RECOVER:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
base=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$base" >/dev/null 2>&1 || rm -rf "$base"' EXIT
git -C "$root" worktree add --detach "$base" "$BASE" >/dev/null 2>&1
cp "$root/cmd/redisbot/storm_test.go" "$base/cmd/redisbot/"

storm() {
	echo "$2: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	(cd "$1" && REDISBOT_STORM=1 REDISBOT_STORM_RECOVER=$RECOVER $GO test -count=1 -timeout 60m -run '^TestAlertStorm$' -v ./cmd/redisbot/) |
		grep -E 'storm_test.go:|^(ok|FAIL|---)' | sed "s|^|$2: |" || true
}

i=0
while [ "$i" -lt "$ROUNDS" ]; do
	storm "$base" "baseline $BASE"
	storm "$root" "this tree $(git -C "$root" rev-parse --short HEAD)"
	i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
