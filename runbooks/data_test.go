package runbooks

import (
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

// A Redis 6.2+ reply without an errorstat_OOM line had no OOM rejection:
// the runbooks show 0, not "unknown"; a reply with one shows its count,
// not INFO's raw "count=N".
func TestEvidenceShowsTheOOMCount(t *testing.T) {
	lib := mustLoad(t, "")
	for _, tc := range []struct {
		name string
		info handlers.Info
		want string
	}{
		{"none since start", handlers.Info{"total_error_replies": "0", "maxmemory": "1048576"}, "OOM rejections since start: 0"},
		{"some since start", handlers.Info{"total_error_replies": "9", "errorstat_OOM": "count=9", "maxmemory": "1048576"}, "OOM rejections since start: 9"},
		{"before Redis 6.2", handlers.Info{"maxmemory": "1048576"}, "OOM rejections since start: unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := &handlers.Report{Instance: "cache-1", Snapshot: &handlers.Snapshot{Info: tc.info, Config: map[string]string{}}}
			f := handlers.Finding{ID: "maxmemory-near", Runbook: "maxmemory-near"}
			rb, err := lib.Render("maxmemory-near", DataFor(rep, f))
			if err != nil {
				t.Fatal(err)
			}
			if ev := section(t, rb, "Evidence"); !strings.Contains(ev, tc.want) {
				t.Errorf("Evidence lacks %q:\n%s", tc.want, ev)
			}
		})
	}
}
