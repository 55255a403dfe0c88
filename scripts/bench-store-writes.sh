#!/bin/sh
# Disk writes of one sweep of 1,000 instances on the bbolt store (issue 18),
# the code before the change (BASE) beside this tree, alternately, ROUNDS
# times each: BenchmarkStoreWritesPerSweep in bot/store, run on BASE with
# BASE's own way of recording a sweep (the sweep's RecordSweep calls in
# chunks of 128). Prints the load average before and after.
#
#   scripts/bench-store-writes.sh              # BASE=c107f95, ROUNDS=2
#   BASE=<rev> ROUNDS=3 SWEEPS=60 scripts/bench-store-writes.sh
set -eu
GO=${GO:-go}
BASE=${BASE:-c107f95}
ROUNDS=${ROUNDS:-2}
SWEEPS=${SWEEPS:-30}
root=$(git rev-parse --show-toplevel)
base=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$base" >/dev/null 2>&1 || rm -rf "$base"' EXIT
git -C "$root" worktree add --detach "$base" "$BASE" >/dev/null 2>&1
cp "$root/bot/store/writes_bench_test.go" "$base/bot/store/"
cat >"$base/bot/store/writes_record_test.go" <<'GO'
package store_test

import (
	"context"

	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers"
)

func benchRecord(s *handlers.Snapshot) store.SweepRecord {
	p := handlers.PointOf(s)
	return store.SweepRecord{Instance: s.Instance, Snapshot: s, Sample: store.Sample{At: p.At, UsedMemory: p.UsedMemory, RSS: p.RSS,
		Peak: p.Peak, Maxmemory: p.Maxmemory, EvictedKeys: p.EvictedKeys, OOMErrors: p.OOMErrors, Keys: p.Keys,
		FragRatio: p.FragRatio, AllocFragRatio: p.AllocFragRatio}}
}

// As bot/sweep recorded a sweep before the change: 128 records a call.
func recordSweep(st *store.Store, records []store.SweepRecord) error {
	for start := 0; start < len(records); start += 128 {
		if err := st.RecordSweep(context.Background(), records[start:min(start+128, len(records))]); err != nil {
			return err
		}
	}
	return nil
}
GO
run() {
	(cd "$1" && $GO test -run '^$' -bench 'StoreWritesPerSweep$' -benchtime "${SWEEPS}x" ./bot/store/ | grep '^Benchmark' | sed "s/^/$2 /")
}
echo "loadavg before: $(cat /proc/loadavg)"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	run "$base" "base=$BASE"
	run "$root" "this-tree"
	i=$((i + 1))
done
echo "loadavg after: $(cat /proc/loadavg)"
