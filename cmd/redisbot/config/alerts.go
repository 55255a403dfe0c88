package config

import (
	"fmt"
	"time"
)

// Bounds of alerts.repeat_interval: more often than 5m a reminder is noise,
// less often than weekly a firing alert is forgotten.
const (
	minRepeatInterval = 5 * time.Minute
	maxRepeatInterval = 7 * 24 * time.Hour
)

// alerts checks the alerts section. instanceTags are the tags of all
// instances, or nil when some could not be decoded, in which case route
// tags are not checked against them.
func (l *loader) alerts(a Alerts, instanceTags map[string]bool) Alerts {
	if len(a.Routes) == 0 {
		a.Routes = nil // "routes: []" is no routes
	}
	if a.Channel != "" {
		l.badChannelID("alerts.channel", a.Channel)
	}
	l.routes(a.Routes, instanceTags)
	// A storm summary replaces the unreachable alerts of every instance,
	// routed or not, and goes to alerts.channel: without one, routed teams
	// would hear nothing in a storm.
	l.p.check("alerts.channel", len(a.Routes) > 0 && a.Channel == "" && !l.p.isFailed("alerts.routes"),
		"is required when routes are set (storm summaries go there)")
	if a.OnCallGroup != "" && !groupIDPattern.MatchString(a.OnCallGroup) {
		l.p.addf("alerts.oncall_group", "%s is not a user-group id (S…)", quote(a.OnCallGroup))
	}
	l.p.check("alerts.repeat_interval", a.RepeatInterval < minRepeatInterval || a.RepeatInterval > maxRepeatInterval,
		"must be between 5m and 168h")
	// Written so that NaN fails too.
	l.p.check("alerts.storm_threshold", !(a.StormThreshold > 0 && a.StormThreshold <= 1), "must be greater than 0 and at most 1")
	l.p.check("alerts.group_threshold", a.GroupThreshold < 0 || a.GroupThreshold > maxGroupThreshold, "must be between 0 and 1000 (0 or 1: never group)")
	return a
}

// routes checks alerts.routes. A tag already in an earlier route is an
// error: the first match wins, so the later one could never match.
func (l *loader) routes(routes []Route, instanceTags map[string]bool) {
	routed := map[string]string{} // tag -> key of the route or tag that takes it
	for i, r := range routes {
		key := fmt.Sprintf("alerts.routes[%d]", i)
		l.p.check(key+".tags", len(r.Tags) == 0, "at least one tag is required")
		for j, tag := range r.Tags {
			k := fmt.Sprintf("%s.tags[%d]", key, j)
			first, dup := routed[tag]
			switch {
			case l.p.isFailed(k):
			case l.badTag(k, tag, instanceTags): // a typo would send the team's alerts elsewhere
			case dup && parentKey(first) == key+".tags":
				l.p.addf(k, "duplicate of %s", first)
			case dup:
				l.p.addf(k, "%s is already routed by %s (the first match wins)", quote(tag), parentKey(parentKey(first)))
			default:
				routed[tag] = k
			}
		}
		if r.Channel == "" {
			l.p.addf(key+".channel", "is required")
		} else {
			l.badChannelID(key+".channel", r.Channel)
		}
	}
}

// digestChannel checks that a digest has somewhere to go: digests are
// posted to alerts.channel only.
func (l *loader) digestChannel(cfg *Config) {
	const key = "schedule.digest"
	if cfg.Schedule.Digest != "" && cfg.Alerts.Channel == "" && !l.p.isFailed("alerts.channel") {
		l.p.addf(key, "needs alerts.channel, where digests are posted")
	}
}

// badChannelID reports, at key k, an id that is not a Slack channel id.
func (l *loader) badChannelID(k, id string) bool {
	if channelIDPattern.MatchString(id) {
		return false
	}
	l.p.addf(k, "%s is not a channel id (C…, G… or D…)", quote(id))
	return true
}

// badTag reports, at key k, a tag that is not a valid name or that no
// instance has (instanceTags nil: not checked). A typo in a tag would
// silently match nothing.
func (l *loader) badTag(k, tag string, instanceTags map[string]bool) bool {
	switch {
	case !namePattern.MatchString(tag):
		l.p.addf(k, "%s must match [a-z0-9._-]+", quote(tag))
	case instanceTags != nil && !instanceTags[tag]:
		l.p.addf(k, "no instance has tag %s", quote(tag))
	default:
		return false
	}
	return true
}
