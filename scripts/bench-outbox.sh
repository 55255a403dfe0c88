#!/bin/sh
# The outbox under Slack's rate limits (issue 18): BenchmarkReplyDuringAlertStorm
# (bot/slackbot) on this tree and on a baseline commit, alternately, with the
# load average. The baseline (BASE, by default the commit before the outbox)
# gets this tree's local Slack, which applies Slack's rate limits, and the
# benchmark; its bot calls the Slack API itself, so only the wiring differs.
#
#   scripts/bench-outbox.sh            # ROUNDS=1: one storm each, about 3 min
set -eu
GO=${GO:-go}
BASE=${BASE:-c107f95}
ROUNDS=${ROUNDS:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/base"
git -C "$root" archive "$BASE" | tar -x -C "$tmp/base"
rm -rf "$tmp/base/bot/slacktest"
cp -r "$root/bot/slacktest" "$tmp/base/bot/slacktest"
cp "$root/go.mod" "$root/go.sum" "$tmp/base/"
cp "$root/bot/slackbot/storm_bench_test.go" "$tmp/base/bot/slackbot/"
cat >"$tmp/base/bot/slackbot/storm_wiring_test.go" <<'GO'
package slackbot_test

import (
	"github.com/slack-go/slack"

	"github.com/redisbot/redisbot/bot/slackbot"
)

func stormOptions(api *slack.Client) slackbot.Options { return slackbot.Options{API: api} }
GO

storm() {
	(cd "$1" && $GO test -run '^$' -bench BenchmarkReplyDuringAlertStorm -benchtime 1x -v ./bot/slackbot/) |
		grep -E 'alerts in|^BenchmarkReplyDuringAlertStorm' | sed "s|^|$2: |"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	storm "$tmp/base" "baseline $BASE"
	storm "$root" "outbox $(git -C "$root" rev-parse --short HEAD)"
	i=$((i + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
