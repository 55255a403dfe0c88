package config

import (
	"strings"
	"time"

	// The zone database is embedded so that a timezone accepted here is
	// also found at run time in a minimal image without /usr/share/zoneinfo
	// (distroless, scratch).
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Bounds of schedule.lease: below 3s the renewal every lease/3 would be a
// second or less, within the jitter of a store round trip; above 10m a
// replica that dies leaves sweeps undone for too long.
const (
	minLease = 3 * time.Second
	maxLease = 10 * time.Minute
)

// cronCheckFrom is where checkCron looks for a spec's first run. Any fixed
// time does, as robfig/cron looks five years ahead, which finds every day
// that exists (29 February included); a fixed one keeps loading independent
// of the clock.
var cronCheckFrom = time.Date(2001, time.January, 1, 0, 0, 0, 0, time.UTC)

func (l *loader) schedule(f scheduleFile) Schedule {
	s := Schedule{Sweep: f.Sweep, Digest: f.Digest, Location: time.UTC, Lease: f.Lease}
	for _, spec := range []struct{ key, spec string }{
		{"schedule.sweep", s.Sweep},
		{"schedule.digest", s.Digest},
	} {
		if spec.spec != "" { // "" disables it
			l.p.check(spec.key, checkCron(spec.spec) != "", checkCron(spec.spec))
		}
	}
	if loc, msg := location(f.Timezone); msg != "" {
		l.p.addf("schedule.timezone", "%s", msg)
	} else {
		s.Location = loc
	}
	l.p.check("schedule.lease", s.Lease < minLease || s.Lease > maxLease, "must be between 3s and 10m")
	return s
}

// checkCron returns what is wrong with a cron spec, or "". It accepts what
// cron.ParseStandard accepts, except what the scheduler would silently
// change or never run.
func checkCron(spec string) string {
	if hidden := cronSecret(spec); hidden != "" {
		// The parser's message would repeat the spec.
		return "invalid cron spec " + hidden
	}
	bad := "invalid cron spec " + quote(spec) + ": "
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		// Besides overriding schedule.timezone, robfig/cron v3.0.1 panics
		// on "TZ=x" without a space.
		return bad + "set the time zone with schedule.timezone"
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return bad + err.Error()
	}
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		// cron.Every turns anything under 1s, 0 and negative included, into
		// 1s, and drops fractions of a second.
		if every, err := time.ParseDuration(d); err == nil && (every < time.Second || every%time.Second != 0) {
			return bad + "the interval must be a whole number of seconds, at least 1s"
		}
	}
	if sched.Next(cronCheckFrom).IsZero() {
		// A day that none of the months has: "0 9 30 2 *".
		return bad + "it never fires"
	}
	return ""
}

// cronSecret says what a cron spec holds, "(a Slack token, not shown)",
// when it holds something that looks like a secret, or returns "". No month
// or weekday name contains "xox" or "xapp-", so unlike hideSecret it looks
// anywhere in the spec, not only at its start: the parser's messages quote
// single fields.
func cronSecret(spec string) string {
	s := strings.ToLower(spec)
	switch {
	case strings.Contains(s, "xox") || strings.Contains(s, "xapp-"):
		return "(a Slack token, not shown)"
	case looksLikeCredentialURL(s):
		return "(a URL with credentials, not shown)"
	}
	return ""
}

// location loads an IANA time zone, or says what is wrong with name.
func location(name string) (*time.Location, string) {
	switch name {
	case "":
		return nil, "is required"
	case "Local":
		// time.LoadLocation accepts it: the host's zone, which differs
		// between a laptop and a container.
		return nil, `"Local" depends on the host: use an IANA name such as Europe/Paris`
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		// The error repeats the name unquoted.
		return nil, "unknown time zone " + quote(name)
	}
	return loc, ""
}
