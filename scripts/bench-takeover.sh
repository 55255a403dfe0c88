#!/usr/bin/env bash
# bench-takeover.sh measures how long the second of two `redisbot serve`
# replicas takes to lead after the leader dies (issue 17): KILLS rounds of
# kill -9, alternating with KILLS rounds of SIGTERM (the leader releases
# its lease: the baseline), on a real redis-server store with AOF and the
# local Slack, with a 3s lease and a sweep every second. It prints the load
# average before and after; the results go in docs/benchmarks.md.
#
#   scripts/bench-takeover.sh            # 10 kills and 10 SIGTERMs, about 8 minutes
#   KILLS=3 scripts/bench-takeover.sh
#
# The measurement is cmd/redisbot's TestHATakeoverTime, which `make test`
# runs for one round of each signal, without the time bound.
set -euo pipefail

KILLS=${KILLS:-10}
GO=${GO:-go}

cd "$(dirname "$0")/.."
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
REDISBOT_TAKEOVER_KILLS=$KILLS "$GO" test -count=1 -timeout 30m -run '^TestHATakeoverTime$' -v ./cmd/redisbot |
	grep -E 'round|kill -9 *x|SIGTERM *x|^(ok|FAIL|---)' || true
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
