package handlers

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"testing"
	"time"
)

// probedAt is the probe time fixture gives the current snapshot.
var probedAt = time.Unix(1_800_000_000, 0)

// curve is a value at h hours from the current probe (negative: the past).
type curve func(h float64) float64

func flat(v float64) curve { return func(float64) float64 { return v } }

func linear(now, perHour float64) curve { return func(h float64) float64 { return now + perHour*h } }

// trendWindow describes n samples every step before the current probe; the
// current snapshot's fields follow the same curves at h = 0. Unset curves
// are flat: 200 MiB used, ratio 1.1, RSS = used * ratio.
type trendWindow struct {
	n                int
	step             time.Duration
	used, rss, ratio curve
}

func (w trendWindow) build() ([]Point, map[string]string) {
	if w.used == nil {
		w.used = flat(200 * MB)
	}
	if w.ratio == nil {
		w.ratio = flat(1.1)
	}
	if w.rss == nil {
		w.rss = func(h float64) float64 { return w.used(h) * w.ratio(h) }
	}
	round := func(f float64) float64 { return math.Round(f*100) / 100 } // as INFO prints it
	var pts []Point
	for i := w.n; i >= 1; i-- {
		d := time.Duration(i) * w.step
		h := -d.Hours()
		pts = append(pts, Point{At: probedAt.Add(-d), UsedMemory: int64(w.used(h)), RSS: int64(w.rss(h)), FragRatio: round(w.ratio(h))})
	}
	fields := map[string]string{
		"used_memory":             fmt.Sprint(int64(w.used(0))),
		"used_memory_rss":         fmt.Sprint(int64(w.rss(0))),
		"mem_fragmentation_ratio": fmt.Sprintf("%.2f", w.ratio(0)),
	}
	return pts, fields
}

const otherRunID = "0123456789abcdef0123456789abcdef01234567"

func TestHistoryRules(t *testing.T) {
	type want map[string]Severity // id -> severity; SeverityNone means must not fire
	noeviction := map[string]string{"maxmemory": mb(1024), "maxmemory-policy": "noeviction"}
	cases := []struct {
		name    string
		window  *trendWindow
		edit    func([]Point) []Point // changes the built window
		fields  map[string]string     // current snapshot, over the window's values
		config  map[string]string
		prev    map[string]string // previous snapshot, 10 min earlier: fields plus these; nil: no Prev
		limit   int64
		tweak   func(*Thresholds)
		want    want
		summary map[string]string  // id -> substring of its summary
		not     map[string]string  // id -> substring its summary must not have
		facts   map[string]float64 // "id.fact" -> value, within 10%
		absent  []string           // "id.fact" that must not be in the evidence
		check   func(t *testing.T, got map[string]Finding)
	}{
		// restarted
		{name: "no previous snapshot: no restart to see",
			want: want{"restarted": SeverityNone}},
		{name: "same process, uptime grew",
			prev: map[string]string{"uptime_in_seconds": "3"},
			want: want{"restarted": SeverityNone}},
		{name: "run_id changed",
			prev:    map[string]string{"run_id": otherRunID, "uptime_in_seconds": "86400"},
			limit:   1 << 30,
			want:    want{"restarted": SeverityWarning},
			summary: map[string]string{"restarted": "Restarted (run_id changed) 7s ago; before it, RSS was 120.6 MiB (12% of memory_limit 1.0 GiB), used_memory 58.1 MiB, 250000 keys (now 250000)."},
			not:     map[string]string{"restarted": "OOM killer"},
			facts:   map[string]float64{"restarted.uptime_seconds": 7, "restarted.previous_uptime_seconds": 86400, "restarted.previous_used_memory_rss": 126472192},
			check: func(t *testing.T, got map[string]Finding) {
				if f, _ := got["restarted"].Evidence.Get("previous_run_id"); f.Text != otherRunID {
					t.Errorf("previous_run_id = %q", f.Text)
				}
			}},
		{name: "uptime went back on a server without run_id",
			fields:  map[string]string{"run_id": absent},
			prev:    map[string]string{"uptime_in_seconds": "86400"},
			want:    want{"restarted": SeverityWarning},
			summary: map[string]string{"restarted": "Restarted (uptime went back from 24h to 7s) 7s ago"}},
		{name: "restart after RSS near the memory limit: OOM killer suspected",
			prev:    map[string]string{"run_id": otherRunID, "used_memory_rss": mb(130)},
			limit:   150 * MB,
			want:    want{"restarted": SeverityWarning},
			summary: map[string]string{"restarted": "RSS was 130.0 MiB (87% of memory_limit 150.0 MiB), used_memory 58.1 MiB, 250000 keys (now 250000): possibly killed by the kernel's OOM killer."},
			facts:   map[string]float64{"restarted.previous_rss_of_limit": 0.87}},
		{name: "restart after usage near maxmemory: OOM killer suspected",
			config:  map[string]string{"maxmemory": mb(64), "maxmemory-policy": "allkeys-lru"},
			prev:    map[string]string{"run_id": otherRunID},
			want:    want{"restarted": SeverityWarning},
			summary: map[string]string{"restarted": "(91% of maxmemory 64.0 MiB), 250000 keys (now 250000): possibly killed by the kernel's OOM killer."}},
		{name: "restart that lost the data",
			fields:  map[string]string{"db0": absent, "used_memory": mb(1)},
			prev:    map[string]string{"run_id": otherRunID, "db0": "keys=250000,expires=0,avg_ttl=0", "used_memory": mb(58)},
			want:    want{"restarted": SeverityWarning},
			summary: map[string]string{"restarted": "used_memory 58.0 MiB, 250000 keys (now 0)."}},

		// frag-rising
		{name: "fragmentation rising fast: critical projection",
			window:  &trendWindow{n: 12, step: 10 * time.Minute, ratio: linear(1.5, 0.15)},
			want:    want{"frag-rising": SeverityCritical},
			summary: map[string]string{"frag-rising": "mem_fragmentation_ratio rose from 1.20 to 1.50 in 2h (+0.15"}, // samples rounded as INFO does
			facts: map[string]float64{"frag-rising.frag_ratio_per_hour": 0.15, "frag-rising.first_frag_ratio": 1.2, "frag-rising.last_frag_ratio": 1.5,
				"frag-rising.window_span_seconds": 7200, "frag-rising.time_to_frag_critical_seconds": 3.33 * 3600}},
		{name: "fragmentation rising slowly: warning when frag_critical is more than a day away",
			window:  &trendWindow{n: 12, step: 10 * time.Minute, ratio: linear(1.34, 0.02)},
			tweak:   func(th *Thresholds) { th.FragRisingPerHour = 0.01 },
			want:    want{"frag-rising": SeverityWarning},
			summary: map[string]string{"frag-rising": "rose from 1.30 to 1.34 in 2h"}},
		{name: "slow rise below the default rate",
			window: &trendWindow{n: 12, step: 10 * time.Minute, ratio: linear(1.34, 0.02)},
			want:   want{"frag-rising": SeverityNone}},
		{name: "fragmentation flat",
			window: &trendWindow{n: 12, step: 10 * time.Minute, ratio: flat(1.6)},
			want:   want{"frag-rising": SeverityNone}},
		{name: "fragmentation falling",
			window: &trendWindow{n: 12, step: 10 * time.Minute, ratio: linear(1.5, -0.1)},
			want:   want{"frag-rising": SeverityNone}},
		{name: "window shorter than frag_rising_min_span",
			window: &trendWindow{n: 2, step: 10 * time.Minute, ratio: linear(1.5, 0.6)},
			want:   want{"frag-rising": SeverityNone}},
		{name: "rising but below 1.3",
			window: &trendWindow{n: 12, step: 10 * time.Minute, ratio: linear(1.25, 0.1)},
			want:   want{"frag-rising": SeverityNone}},
		{name: "rising on a small instance: noise",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: flat(10 * MB), ratio: linear(1.5, 0.15)},
			want:   want{"frag-rising": SeverityNone}},
		{name: "one high sample at the end is a rise",
			window: &trendWindow{n: 12, step: 10 * time.Minute, ratio: flat(1.4)},
			fields: map[string]string{"mem_fragmentation_ratio": "1.90"},
			want:   want{"frag-rising": SeverityCritical}},
		{name: "the same sample during a fork is copy-on-write, not a trend",
			window: &trendWindow{n: 12, step: 10 * time.Minute, ratio: flat(1.4)},
			fields: map[string]string{"mem_fragmentation_ratio": "1.90", "rdb_bgsave_in_progress": "1"},
			want:   want{"frag-rising": SeverityNone}},

		// oom-forecast
		{name: "used_memory reaches maxmemory in 10h",
			window:  &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			config:  noeviction,
			want:    want{"oom-forecast": SeverityWarning},
			summary: map[string]string{"oom-forecast": "used_memory (624.0 MiB, +40.0 MiB/h) reaches maxmemory 1.0 GiB in about 10h, when writes start failing with OOM errors (policy noeviction)"},
			facts: map[string]float64{"oom-forecast.time_to_maxmemory_seconds": 10 * 3600, "oom-forecast.used_memory_per_hour": 40 * MB,
				"oom-forecast.window_span_seconds": 7200, "oom-forecast.samples": 13},
			absent: []string{"oom-forecast.time_to_limit_seconds"}},
		{name: "used_memory reaches maxmemory in 1h: critical",
			window:  &trendWindow{n: 12, step: 10 * time.Minute, used: linear(984*MB, 40*MB)},
			config:  noeviction,
			want:    want{"oom-forecast": SeverityCritical},
			summary: map[string]string{"oom-forecast": "in about 1h,"},
			facts:   map[string]float64{"oom-forecast.time_to_maxmemory_seconds": 3600}},
		{name: "window that already holds the current sample",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			edit: func(w []Point) []Point {
				return append(w, Point{At: probedAt, UsedMemory: 624 * MB, RSS: 624 * MB * 11 / 10, FragRatio: 1.1})
			},
			config: noeviction,
			want:   want{"oom-forecast": SeverityWarning},
			facts:  map[string]float64{"oom-forecast.time_to_maxmemory_seconds": 10 * 3600, "oom-forecast.samples": 13}},
		{name: "volatile-lru with few TTLs cannot evict: forecast maxmemory",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			config: map[string]string{"maxmemory": mb(1024), "maxmemory-policy": "volatile-lru"},
			want:   want{"oom-forecast": SeverityWarning},
			facts:  map[string]float64{"oom-forecast.time_to_maxmemory_seconds": 10 * 3600}},
		{name: "volatile-lru with enough TTLs evicts at maxmemory",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			fields: map[string]string{"db0": "keys=250000,expires=100000,avg_ttl=0"},
			config: map[string]string{"maxmemory": mb(1024), "maxmemory-policy": "volatile-lru"},
			want:   want{"oom-forecast": SeverityNone}},
		{name: "allkeys-lru: eviction holds used_memory, RSS is forecast against the limit",
			window:  &trendWindow{n: 12, step: 10 * time.Minute, used: linear(900*MB, 40*MB), rss: linear(1400*MB, 100*MB)},
			config:  map[string]string{"maxmemory": mb(1024), "maxmemory-policy": "allkeys-lru"},
			limit:   2048 * MB,
			want:    want{"oom-forecast": SeverityWarning},
			summary: map[string]string{"oom-forecast": "RSS (1.4 GiB, +100.0 MiB/h) reaches memory_limit 2.0 GiB in about 6h 29m, when the kernel's OOM killer ends the process."},
			facts:   map[string]float64{"oom-forecast.time_to_limit_seconds": 6.48 * 3600, "oom-forecast.rss_per_hour": 100 * MB},
			absent:  []string{"oom-forecast.time_to_maxmemory_seconds"}},
		{name: "allkeys-lru without a memory limit: nothing to forecast",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(900*MB, 40*MB), rss: linear(1400*MB, 100*MB)},
			config: map[string]string{"maxmemory": mb(1024), "maxmemory-policy": "allkeys-lru"},
			want:   want{"oom-forecast": SeverityNone}},
		{name: "both limits: the nearer comes first",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB), rss: linear(1000*MB, 100*MB)},
			config: noeviction,
			limit:  1300 * MB,
			want:   want{"oom-forecast": SeverityWarning},
			facts:  map[string]float64{"oom-forecast.time_to_limit_seconds": 3 * 3600, "oom-forecast.time_to_maxmemory_seconds": 10 * 3600},
			check: func(t *testing.T, got map[string]Finding) {
				s := got["oom-forecast"].Summary
				if strings.Index(s, "memory_limit") > strings.Index(s, "reaches maxmemory") {
					t.Errorf("summary does not put the nearer limit first: %s", s)
				}
			}},
		{name: "replica ignoring maxmemory: no maxmemory forecast",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			fields: map[string]string{"role": "slave"},
			config: noeviction,
			want:   want{"oom-forecast": SeverityNone}},
		{name: "flat usage",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: flat(900 * MB)},
			config: noeviction,
			limit:  1100 * MB,
			want:   want{"oom-forecast": SeverityNone}},
		{name: "slow growth beyond the horizon",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 1*MB)},
			config: noeviction,
			want:   want{"oom-forecast": SeverityNone}},
		{name: "a shorter horizon",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			config: noeviction,
			tweak:  func(th *Thresholds) { th.OOMForecastHorizon = 5 * time.Hour },
			want:   want{"oom-forecast": SeverityNone}},
		{name: "too few points",
			window: &trendWindow{n: 3, step: 10 * time.Minute, used: linear(984*MB, 40*MB)},
			config: noeviction,
			want:   want{"oom-forecast": SeverityNone}},
		{name: "points over less than 15 minutes",
			window: &trendWindow{n: 10, step: time.Minute, used: linear(984*MB, 40*MB)},
			config: noeviction,
			want:   want{"oom-forecast": SeverityNone}},
		{name: "already at maxmemory: the present is other rules' business",
			window: &trendWindow{n: 12, step: 10 * time.Minute, used: linear(1024*MB, 40*MB)},
			config: noeviction,
			want:   want{"oom-forecast": SeverityNone, "oom-rejecting": SeverityCritical}},
		{name: "window with a restart: only the points after it",
			window: &trendWindow{n: 10, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			edit: func(w []Point) []Point {
				for i := range w[:4] { // the process before the restart was big
					w[i].UsedMemory, w[i].RSS = 1000*MB, 1500*MB
				}
				return w
			},
			config: noeviction,
			want:   want{"oom-forecast": SeverityWarning},
			facts:  map[string]float64{"oom-forecast.time_to_maxmemory_seconds": 10 * 3600, "oom-forecast.samples": 7}},
		{name: "a restart leaves too few points",
			window: &trendWindow{n: 10, step: 10 * time.Minute, used: linear(624*MB, 40*MB)},
			edit: func(w []Point) []Point {
				for i := range w[:7] {
					w[i].UsedMemory, w[i].RSS = 1000*MB, 1500*MB
				}
				return w
			},
			config: noeviction,
			want:   want{"oom-forecast": SeverityNone}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fields := map[string]string{}
			var window []Point
			if tc.window != nil {
				window, fields = tc.window.build()
			}
			if tc.edit != nil {
				window = tc.edit(window)
			}
			maps.Copy(fields, tc.fields)
			in := Input{Cur: fixture(t, "redis-7.0.txt", fields, tc.config), MemoryLimit: tc.limit, T: DefaultThresholds(), Window: window}
			if tc.prev != nil {
				prevFields := maps.Clone(fields)
				maps.Copy(prevFields, tc.prev)
				in.Prev = fixture(t, "redis-7.0.txt", prevFields, tc.config)
				in.Prev.ProbedAt = probedAt.Add(-10 * time.Minute)
			}
			if tc.tweak != nil {
				tc.tweak(&in.T)
			}
			got := map[string]Finding{}
			for _, f := range Evaluate(in) {
				got[f.ID] = f
			}
			checkFindings(t, got, tc.want, tc.summary)
			for id, sub := range tc.not {
				if strings.Contains(got[id].Summary, sub) {
					t.Errorf("%s summary %q contains %q", id, got[id].Summary, sub)
				}
			}
			for key, want := range tc.facts {
				id, name, _ := strings.Cut(key, ".")
				f, ok := got[id].Evidence.Get(name)
				if !ok {
					t.Errorf("%s has no fact %s: %+v", id, name, got[id].Evidence)
					continue
				}
				var v float64
				switch n := f.Value.(type) {
				case int64:
					v = float64(n)
				case float64:
					v = n
				default:
					t.Errorf("%s: %T value", key, f.Value)
				}
				if math.Abs(v-want) > 0.1*math.Abs(want) {
					t.Errorf("%s = %v (%s), want %v ±10%%", key, v, f.Text, want)
				}
			}
			for _, key := range tc.absent {
				id, name, _ := strings.Cut(key, ".")
				if f, ok := got[id].Evidence.Get(name); ok {
					t.Errorf("%s has fact %s = %s, want none", id, name, f.Text)
				}
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			for _, id := range []string{"restarted", "frag-rising", "oom-forecast"} {
				if f, ok := got[id]; ok && (len(f.Evidence) == 0 || f.Summary == "" || f.Title == "" || f.Runbook != id) {
					t.Errorf("%s incomplete: %+v", id, f)
				}
			}
		})
	}
}

func TestFitTrend(t *testing.T) {
	value := func(p Point) float64 { return float64(p.UsedMemory) }
	var pts []Point
	for i := range 7 {
		pts = append(pts, Point{At: probedAt.Add(time.Duration(i) * 20 * time.Minute), UsedMemory: 1000 + int64(i)*30})
	}
	tr, ok := fitTrend(pts, value)
	if !ok || math.Abs(tr.perHour-90) > 1e-9 || math.Abs(tr.last-1180) > 1e-9 {
		t.Errorf("fitTrend = %+v, %v; want 90/h ending at 1180", tr, ok)
	}
	if d, ok := tr.until(1360); !ok || d != 2*time.Hour {
		t.Errorf("until(1360) = %v, %v; want 2h", d, ok)
	}
	if d, ok := tr.until(1100); !ok || d != 0 {
		t.Errorf("until(a value already passed) = %v, %v; want 0", d, ok)
	}
	if _, ok := (trend{perHour: 0, last: 5}).until(10); ok {
		t.Error("a flat trend reaches a target")
	}
	if _, ok := (trend{perHour: 1e-12, last: 0}).until(1e9); ok {
		t.Error("a forecast centuries away is reported")
	}
	same := []Point{{At: probedAt, UsedMemory: 1}, {At: probedAt, UsedMemory: 2}}
	if _, ok := fitTrend(same, value); ok {
		t.Error("fitTrend of points at one time succeeded")
	}
}

func TestSeries(t *testing.T) {
	cur := fixture(t, "redis-7.0.txt", nil, nil)
	at := func(min int) time.Time { return probedAt.Add(time.Duration(min) * time.Minute) }
	window := []Point{{At: at(-30)}, {At: at(-20)}, {At: at(-25)}, {At: at(-20)}, {At: at(-10)}, {At: at(0)}, {At: at(5)}}
	got := series(Input{Cur: cur, Window: window})
	var times []int
	for _, p := range got {
		times = append(times, int(p.At.Sub(probedAt).Minutes()))
	}
	if fmt.Sprint(times) != "[-30 -20 -10 0]" {
		t.Errorf("series times = %v, want [-30 -20 -10 0]", times)
	}
	if last := got[len(got)-1]; last.UsedMemory != 60883424 || last.FragRatio != 2.08 || last.Keys != 250000 {
		t.Errorf("the last point is not the current snapshot: %+v", last)
	}
}

func TestSinceRestart(t *testing.T) {
	pts := []Point{{RSS: 900}, {RSS: 1000}, {RSS: 400}, {RSS: 420}, {RSS: 0}, {RSS: 430}, {RSS: 250}}
	if got := sinceRestart(pts); len(got) != 5 || got[0].RSS != 400 {
		t.Errorf("sinceRestart = %+v, want from the drop to 400 (a missing RSS and a 42%% dip are not restarts)", got)
	}
	if got := sinceRestart(pts[:2]); len(got) != 2 {
		t.Errorf("sinceRestart without a drop = %+v", got)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second:                    "0s",
		7 * time.Second:                 "7s",
		12*time.Minute + 30*time.Second: "12m",
		time.Hour:                       "1h",
		9*time.Hour + 58*time.Minute:    "9h 58m",
		47*time.Hour + 59*time.Minute + 50*time.Second: "48h",
		50 * time.Hour: "2d 2h",
		72 * time.Hour: "3d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
