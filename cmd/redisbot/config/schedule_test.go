package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaultSchedule and defaultAlerts are the sections with every default.
func defaultSchedule() Schedule {
	return Schedule{Sweep: DefaultSweep, Location: time.UTC, Lease: DefaultLease}
}

func defaultAlerts() Alerts {
	return Alerts{RepeatInterval: DefaultRepeatInterval, StormThreshold: DefaultStormThreshold, GroupThreshold: DefaultGroupThreshold}
}

// TestScheduleAndAlertsDefaults: absent or empty sections give the defaults.
func TestScheduleAndAlertsDefaults(t *testing.T) {
	for _, doc := range []string{"", "schedule:\nalerts:\n", "schedule: {}\nalerts: {routes: []}\n"} {
		cfg, err := Load(t.Context(), writeConfig(t, doc+oneInstance), env(nil))
		if err != nil {
			t.Fatalf("%q: %v", doc, err)
		}
		if !reflect.DeepEqual(cfg.Schedule, defaultSchedule()) {
			t.Errorf("%q: Schedule = %+v, want %+v", doc, cfg.Schedule, defaultSchedule())
		}
		if !reflect.DeepEqual(cfg.Alerts, defaultAlerts()) {
			t.Errorf("%q: Alerts = %+v, want %+v", doc, cfg.Alerts, defaultAlerts())
		}
	}
}

// TestScheduleOff: "" disables sweeps, and no digest needs no channel.
func TestScheduleOff(t *testing.T) {
	cfg, err := Load(t.Context(), writeConfig(t, "schedule: {sweep: '', digest: ''}\n"+oneInstance), env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Schedule.Sweep != "" || cfg.Schedule.Digest != "" {
		t.Errorf("Schedule = %+v, want no sweep and no digest", cfg.Schedule)
	}
}

func TestScheduleEnvOverrides(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":               "env-pw",
		"REDISBOT_SCHEDULE_SWEEP":         "@every 30s",
		"REDISBOT_SCHEDULE_DIGEST":        "@daily",
		"REDISBOT_SCHEDULE_TIMEZONE":      "America/New_York",
		"REDISBOT_SCHEDULE_LEASE":         "10m",
		"REDISBOT_ALERTS_CHANNEL":         "G0ENV",
		"REDISBOT_ALERTS_ONCALL_GROUP":    "S0ENV",
		"REDISBOT_ALERTS_REPEAT_INTERVAL": "168h",
		"REDISBOT_ALERTS_STORM_THRESHOLD": "1",
		"REDISBOT_ALERTS_GROUP_THRESHOLD": "0",
		"REDISBOT_ALERTS_ROUTES":          "ignored: routes come from the file only",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	wantSchedule := Schedule{Sweep: "@every 30s", Digest: "@daily", Location: ny, Lease: 10 * time.Minute}
	if !reflect.DeepEqual(cfg.Schedule, wantSchedule) {
		t.Errorf("Schedule:\n got %+v\nwant %+v", cfg.Schedule, wantSchedule)
	}
	wantAlerts := Alerts{
		Channel: "G0ENV",
		Routes: []Route{ // from the file
			{Tags: []string{"team-a"}, Channel: "C0TEAMA"},
			{Tags: []string{"cache"}, Channel: "G0CACHE"},
		},
		OnCallGroup:    "S0ENV",
		RepeatInterval: 7 * 24 * time.Hour,
		StormThreshold: 1,
	}
	if !reflect.DeepEqual(cfg.Alerts, wantAlerts) {
		t.Errorf("Alerts:\n got %+v\nwant %+v", cfg.Alerts, wantAlerts)
	}
}

func TestScheduleEnvErrors(t *testing.T) {
	_, err := Load(t.Context(), "testdata/good.yml", env(map[string]string{
		"SESSIONS_PASSWORD":               "env-pw",
		"REDISBOT_SCHEDULE_SWEEP":         "* * * *",
		"REDISBOT_SCHEDULE_DIGEST":        "@weekdays",
		"REDISBOT_SCHEDULE_TIMEZONE":      "Europe/Pariss",
		"REDISBOT_SCHEDULE_LEASE":         "10m1s",
		"REDISBOT_ALERTS_CHANNEL":         "alerts",
		"REDISBOT_ALERTS_ONCALL_GROUP":    "U0ONCALL",
		"REDISBOT_ALERTS_REPEAT_INTERVAL": "169h",
		"REDISBOT_ALERTS_STORM_THRESHOLD": "NaN",
	}))
	want := "schedule.sweep: invalid cron spec \"* * * *\": expected exactly 5 fields, found 4: [* * * *] (from REDISBOT_SCHEDULE_SWEEP)\n" +
		"schedule.digest: invalid cron spec \"@weekdays\": unrecognized descriptor: @weekdays (from REDISBOT_SCHEDULE_DIGEST)\n" +
		"schedule.timezone: unknown time zone \"Europe/Pariss\" (from REDISBOT_SCHEDULE_TIMEZONE)\n" +
		"schedule.lease: must be between 3s and 10m (from REDISBOT_SCHEDULE_LEASE)\n" +
		"alerts.channel: \"alerts\" is not a channel id (C…, G… or D…) (from REDISBOT_ALERTS_CHANNEL)\n" +
		"alerts.oncall_group: \"U0ONCALL\" is not a user-group id (S…) (from REDISBOT_ALERTS_ONCALL_GROUP)\n" +
		"alerts.repeat_interval: must be between 5m and 168h (from REDISBOT_ALERTS_REPEAT_INTERVAL)\n" +
		"alerts.storm_threshold: must be greater than 0 and at most 1 (from REDISBOT_ALERTS_STORM_THRESHOLD)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}

	// A digest from the environment still needs a channel.
	_, err = Load(t.Context(), writeConfig(t, oneInstance), env(map[string]string{"REDISBOT_SCHEDULE_DIGEST": "0 9 * * 1-5"}))
	want = "schedule.digest: needs alerts.channel, where digests are posted (from REDISBOT_SCHEDULE_DIGEST)"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
	// ... which the environment can give.
	if _, err := Load(t.Context(), writeConfig(t, oneInstance), env(map[string]string{
		"REDISBOT_SCHEDULE_DIGEST": "0 9 * * 1-5",
		"REDISBOT_ALERTS_CHANNEL":  "C0ALERTS",
	})); err != nil {
		t.Errorf("Load: %v", err)
	}
}

// TestAlertsBounds checks the edges of the ranges, which one bad file per
// error cannot.
func TestAlertsBounds(t *testing.T) {
	for _, tc := range []struct {
		doc, want string
	}{
		{"schedule: {lease: 3s}", ""},
		{"schedule: {lease: 10m}", ""},
		{"schedule: {lease: 2.999s}", "schedule.lease: must be between 3s and 10m"},
		{"schedule: {lease: -30s}", "schedule.lease: must be between 3s and 10m"},
		{"alerts: {repeat_interval: 5m}", ""},
		{"alerts: {repeat_interval: 168h}", ""},
		{"alerts: {repeat_interval: 4m59s}", "alerts.repeat_interval: must be between 5m and 168h"},
		{"alerts: {repeat_interval: 168h1s}", "alerts.repeat_interval: must be between 5m and 168h"},
		{"alerts: {storm_threshold: 1}", ""},
		{"alerts: {storm_threshold: 0.01}", ""},
		{"alerts: {storm_threshold: 1.01}", "alerts.storm_threshold: must be greater than 0 and at most 1"},
		{"alerts: {storm_threshold: -0.5}", "alerts.storm_threshold: must be greater than 0 and at most 1"},
		{"alerts: {storm_threshold: .nan}", "alerts.storm_threshold: must be greater than 0 and at most 1"},
		{"alerts: {storm_threshold: .inf}", "alerts.storm_threshold: must be greater than 0 and at most 1"},
		{"alerts: {channel: D0DIRECT, oncall_group: S0ONCALL}", ""},
		{"alerts: {channel: C0ALERTS, oncall_group: S1}", `alerts.oncall_group: "S1" is not a user-group id (S…)`},
		{"alerts: {channel: c0alerts}", `alerts.channel: "c0alerts" is not a channel id (C…, G… or D…)`},
	} {
		_, err := Load(t.Context(), writeConfig(t, tc.doc+"\n"+oneInstance), env(nil))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.doc, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s: error %v, want %s", tc.doc, err, tc.want)
		}
	}
}

func TestChannelFor(t *testing.T) {
	a := Alerts{
		Channel: "C0ALL",
		Routes: []Route{
			{Tags: []string{"payments", "billing"}, Channel: "C0PAY"},
			{Tags: []string{"cache"}, Channel: "G0CACHE"},
		},
	}
	for _, tc := range []struct {
		name string
		tags []string
		want string
	}{
		{"no tags", nil, "C0ALL"},
		{"no route", []string{"sessions", "team-a"}, "C0ALL"},
		{"first tag of a route", []string{"payments"}, "C0PAY"},
		{"second tag of a route", []string{"billing"}, "C0PAY"},
		{"second route", []string{"team-a", "cache"}, "G0CACHE"},
		{"first route wins, whatever the order of the instance's tags", []string{"cache", "billing"}, "C0PAY"},
		{"tags are exact", []string{"Cache", "caches"}, "C0ALL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.ChannelFor(tc.tags); got != tc.want {
				t.Errorf("ChannelFor(%q) = %q, want %q", tc.tags, got, tc.want)
			}
		})
	}
	if got := (Alerts{}).ChannelFor([]string{"cache"}); got != "" {
		t.Errorf("ChannelFor without channel or routes = %q, want none", got)
	}
	routesOnly := Alerts{Routes: a.Routes}
	if got := routesOnly.ChannelFor([]string{"sessions"}); got != "" {
		t.Errorf("ChannelFor of an unrouted instance without alerts.channel = %q, want none", got)
	}
}

func TestCheckCron(t *testing.T) {
	for spec, want := range map[string]string{
		"* * * * *":             "",
		"*/5 * * * *":           "",
		"0 9 * * 1-5":           "",
		"0 9 * * MON-FRI":       "",
		"30 8 1,15 * *":         "",
		"0 0 29 2 *":            "", // every leap year
		"0 0 31 * *":            "", // months that have a 31st
		"0 0 30 2 mon":          "", // day of month or day of week: every Monday
		"0 9 ? * *":             "",
		"@hourly":               "",
		"@daily":                "",
		"@midnight":             "",
		"@weekly":               "",
		"@monthly":              "",
		"@yearly":               "",
		"@annually":             "",
		"@every 1m":             "",
		"@every 1s":             "",
		"@every 1h30m":          "",
		"@every 8760h":          "",
		"0 0 31 4,6,9,11 *":     `invalid cron spec "0 0 31 4,6,9,11 *": it never fires`,
		"0 0 30 2 *":            `invalid cron spec "0 0 30 2 *": it never fires`,
		"* * * * * *":           `invalid cron spec "* * * * * *": expected exactly 5 fields, found 6: [* * * * * *]`,
		"60 * * * *":            `invalid cron spec "60 * * * *": end of range (60) above maximum (59): 60`,
		"* * 0 * *":             `invalid cron spec "* * 0 * *": beginning of range (0) below minimum (1): 0`,
		"*/0 * * * *":           `invalid cron spec "*/0 * * * *": step of range should be a positive number: */0`,
		"@every":                `invalid cron spec "@every": unrecognized descriptor: @every`,
		"@every 1 minute":       `invalid cron spec "@every 1 minute": failed to parse duration @every 1 minute: time: unknown unit " minute" in duration "1 minute"`,
		"@every -1m":            `invalid cron spec "@every -1m": the interval must be a whole number of seconds, at least 1s`,
		"@every 999ms":          `invalid cron spec "@every 999ms": the interval must be a whole number of seconds, at least 1s`,
		" @hourly":              `invalid cron spec " @hourly": expected exactly 5 fields, found 1: [@hourly]`,
		"TZ=":                   `invalid cron spec "TZ=": set the time zone with schedule.timezone`,
		"CRON_TZ=UTC":           `invalid cron spec "CRON_TZ=UTC": set the time zone with schedule.timezone`,
		"TZ=UTC @hourly":        `invalid cron spec "TZ=UTC @hourly": set the time zone with schedule.timezone`,
		"xoxb-SECRET-1":         "invalid cron spec (a Slack token, not shown)",
		"0 9 * * XOXP-SECRET-1": "invalid cron spec (a Slack token, not shown)",
		"@every xapp-SECRET":    "invalid cron spec (a Slack token, not shown)",
		"redis://:SECRET@host":  "invalid cron spec (a URL with credentials, not shown)",
	} {
		if got := checkCron(spec); got != want {
			t.Errorf("checkCron(%q) = %q, want %q", spec, got, want)
		}
	}
}

// FuzzCheckCron: no spec makes the parser panic, and an accepted spec fires.
func FuzzCheckCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "0 9 * * 1-5", "@every 1m", "@hourly", "TZ=UTC 0 9 * * *", "0 0 30 2 *", "1-5/2,*/3 0 L * ?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if checkCron(spec) != "" {
			return
		}
		if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
			t.Errorf("checkCron accepted %q, which sets its own time zone", spec)
		}
	})
}

func TestLocation(t *testing.T) {
	for name, want := range map[string]string{
		"UTC":              "UTC",
		"Europe/Paris":     "Europe/Paris",
		"Etc/GMT+5":        "Etc/GMT+5",
		"":                 "is required",
		"Local":            `"Local" depends on the host: use an IANA name such as Europe/Paris`,
		"Mars/Olympus":     `unknown time zone "Mars/Olympus"`,
		"../../etc/passwd": `unknown time zone "../../etc/passwd"`,
		"Europe":           `unknown time zone "Europe"`,
		"europe/paris":     `unknown time zone "europe/paris"`,
		"xoxb-SECRET-1":    "unknown time zone (a Slack token, not shown)",
	} {
		loc, msg := location(name)
		switch {
		case msg == "" && loc.String() != want:
			t.Errorf("location(%q) = %v, want %s", name, loc, want)
		case msg != "" && msg != want:
			t.Errorf("location(%q) error %q, want %q", name, msg, want)
		}
	}
}
