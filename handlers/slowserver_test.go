package handlers

import (
	"strings"
	"testing"
	"time"
)

func TestSlowServer(t *testing.T) {
	type want map[string]Severity
	cases := []struct {
		name               string
		roundTrip, connect time.Duration
		fields             map[string]string
		tweak              func(*Thresholds)
		want               want
		summary            []string
		evidence           map[string]string // fact -> its text
	}{
		{name: "a healthy server on a pooled connection",
			roundTrip: 400 * time.Microsecond,
			want:      want{"slow-server": SeverityNone}},
		{name: "a new connection across a datacenter",
			roundTrip: 3 * time.Millisecond, connect: 9 * time.Millisecond,
			want: want{"slow-server": SeverityNone}},
		{name: "INFO at 250 ms on an open connection",
			roundTrip: 250 * time.Millisecond,
			want:      want{"slow-server": SeverityInfo},
			summary:   []string{"INFO took 250 ms to answer on an open connection", "at or over slow_reply_info 200 ms"},
			evidence:  map[string]string{"info_round_trip_ms": "250 ms", "connect_ms": "none (an open connection)", "slow_reply_threshold_ms": "200 ms (slow_reply_info)"}},
		{name: "800 ms a reply, the connect's HELLO included",
			roundTrip: 801 * time.Millisecond, connect: 803 * time.Millisecond,
			want:     want{"slow-server": SeverityWarning},
			summary:  []string{"Connecting took 803 ms (TCP, TLS and HELLO), then INFO 801 ms", "slow_reply_warning 500 ms", "a client with a shorter timeout fails"},
			evidence: map[string]string{"info_round_trip_ms": "801 ms", "connect_ms": "803 ms", "slow_reply_threshold_ms": "500 ms (slow_reply_warning)"}},
		{name: "blocked while connecting, fast once connected",
			roundTrip: 2 * time.Millisecond, connect: 1250 * time.Millisecond,
			want:    want{"slow-server": SeverityWarning},
			summary: []string{"Connecting took 1.25 s (TCP, TLS and HELLO), then INFO 2 ms"}},
		{name: "a fork in progress is the lead",
			roundTrip: 700 * time.Millisecond,
			fields:    map[string]string{"rdb_bgsave_in_progress": "1", "latest_fork_usec": "640000"},
			want:      want{"slow-server": SeverityWarning},
			summary:   []string{"A BGSAVE or AOF rewrite is running: its fork stalls a big instance (the last one took 640 ms)."},
			evidence:  map[string]string{"latest_fork_usec": "640000", "fork_in_progress": "yes"}},
		{name: "a slow last fork is named",
			roundTrip: 300 * time.Millisecond,
			fields:    map[string]string{"latest_fork_usec": "350000"},
			want:      want{"slow-server": SeverityInfo},
			summary:   []string{"The last fork stalled the server for 350 ms."}},
		{name: "a threshold raised for a far instance",
			roundTrip: 800 * time.Millisecond,
			tweak:     func(t *Thresholds) { t.SlowReplyWarning = 2 * time.Second },
			want:      want{"slow-server": SeverityInfo}},
		{name: "exactly at the warning threshold",
			roundTrip: 500 * time.Millisecond,
			want:      want{"slow-server": SeverityWarning}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := fixture(t, "redis-7.0.txt", tc.fields, nil)
			cur.RoundTrip, cur.Connect = tc.roundTrip, tc.connect
			th := DefaultThresholds()
			if tc.tweak != nil {
				tc.tweak(&th)
			}
			got := map[string]Finding{}
			for _, f := range Evaluate(Input{Cur: cur, T: th}) {
				got[f.ID] = f
			}
			for id, sev := range tc.want {
				f, ok := got[id]
				switch {
				case sev == SeverityNone && ok:
					t.Errorf("%s fired (%s): %s", id, f.Severity, f.Summary)
				case sev != SeverityNone && !ok:
					t.Errorf("%s did not fire; findings %v", id, ids(got))
				case ok && f.Severity != sev:
					t.Errorf("%s is %s, want %s: %s", id, f.Severity, sev, f.Summary)
				}
			}
			f := got["slow-server"]
			for _, s := range tc.summary {
				if !strings.Contains(f.Summary, s) {
					t.Errorf("summary %q lacks %q", f.Summary, s)
				}
			}
			for name, text := range tc.evidence {
				if fact, ok := f.Evidence.Get(name); !ok || fact.Text != text {
					t.Errorf("evidence %s = %+v, want %q", name, fact, text)
				}
			}
		})
	}
}

// The alert of a slow server clears only below the clearing thresholds, so
// a latency hovering at 500 ms does not flap.
func TestSlowServerClearing(t *testing.T) {
	c := DefaultThresholds().Clearing(0.05)
	if c.SlowReplyWarning != 475*time.Millisecond || c.SlowReplyInfo != 190*time.Millisecond {
		t.Errorf("clearing: warning %v, info %v; want 475ms, 190ms", c.SlowReplyWarning, c.SlowReplyInfo)
	}
}

func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{
		300 * time.Microsecond:  "0.3 ms",
		time.Millisecond:        "1 ms",
		812 * time.Millisecond:  "812 ms",
		time.Second:             "1.00 s",
		1249 * time.Millisecond: "1.25 s",
	} {
		if got := millis(d); got != want {
			t.Errorf("millis(%v) = %q, want %q", d, got, want)
		}
	}
}
