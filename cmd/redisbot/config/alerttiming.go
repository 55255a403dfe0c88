package config

import (
	"maps"
	"slices"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/handlers"
)

// AllFindings is the key of an alert_timing entry that applies to every
// finding; a finding's own entry applies over it.
const AllFindings = "*"

// maxFor bounds how long a finding must last before it posts: a day
// longer than that is a finding nobody wants paged about, which a silence
// says better.
const maxFor = 24 * time.Hour

// AlertTiming overrides, globally and per instance, how long a finding must
// last before its alert posts and how often a firing alert is repeated
// (the alert_timing section). What it leaves unset keeps the runbooks'
// timing (alerts.DefaultTiming) and alerts.repeat_interval:
//
//	alert_timing:
//	  findings:
//	    maxmemory-near: {for: 5m, for_critical: 1m}
//	    "*": {repeat_interval: 2h}
//	  instances:
//	    orders-primary:
//	      maxmemory-near: {for: 0s, repeat_interval: 30m}
type AlertTiming struct {
	// Findings are by finding id, or AllFindings.
	Findings map[string]TimingOverride
	// Instances are by instance name (a cluster or Sentinel entry's name
	// covers its members), then as Findings.
	Instances map[string]map[string]TimingOverride
}

// TimingOverride is one alert_timing entry; nil fields are unset.
type TimingOverride struct {
	// For is how long the finding must last at any severity (for, 0s to
	// 24h).
	For *time.Duration
	// ForWarning and ForCritical apply to one severity, over For
	// (for_warning, for_critical).
	ForWarning, ForCritical *time.Duration
	// RepeatInterval is how often a firing alert is posted again
	// (repeat_interval, 5m to 168h).
	RepeatInterval *time.Duration
}

// timingFile is one entry as written: key to duration, as the decoder's
// hook reads durations; a key present is a value set.
type timingFile map[string]time.Duration

// alertTimingFile is the section as written.
type alertTimingFile struct {
	Findings  map[string]timingFile            `mapstructure:"findings"`
	Instances map[string]map[string]timingFile `mapstructure:"instances"`
}

// Timing is the alert timing of a finding on an instance: the runbooks'
// timing with repeatInterval (alerts.repeat_interval), then the global
// entries (every finding, then the finding's own), then the instance's
// (its config entry's, then its own), later ones winning field by field.
func (t AlertTiming) Timing(inst handlers.Instance, finding string, repeatInterval time.Duration) alerts.Timing {
	timing := alerts.DefaultTiming(finding)
	if repeatInterval > 0 {
		timing.RepeatInterval = repeatInterval
	}
	layers := []map[string]TimingOverride{t.Findings}
	if inst.Origin != "" {
		layers = append(layers, t.Instances[inst.Origin])
	}
	layers = append(layers, t.Instances[inst.Name])
	for _, layer := range layers {
		for _, key := range []string{AllFindings, finding} {
			if o, ok := layer[key]; ok {
				timing = o.apply(timing)
			}
		}
	}
	return timing
}

// apply sets what the override sets, on a copy of the For map.
func (o TimingOverride) apply(t alerts.Timing) alerts.Timing {
	t.For = maps.Clone(t.For)
	if o.For != nil {
		for _, sev := range []handlers.Severity{handlers.SeverityInfo, handlers.SeverityWarning, handlers.SeverityCritical} {
			t.For[sev] = *o.For
		}
	}
	if o.ForWarning != nil {
		t.For[handlers.SeverityWarning] = *o.ForWarning
	}
	if o.ForCritical != nil {
		t.For[handlers.SeverityCritical] = *o.ForCritical
	}
	if o.RepeatInterval != nil {
		t.RepeatInterval = *o.RepeatInterval
	}
	return t
}

// alertTiming checks the alert_timing section: finding ids from the
// catalogue (or "*"), instance names from the config, durations in bounds.
func (l *loader) alertTiming(f alertTimingFile, instances []handlers.Instance) AlertTiming {
	const key = "alert_timing"
	t := AlertTiming{Findings: l.timingEntries(key+".findings", f.Findings)}
	names := map[string]bool{}
	for _, in := range instances {
		names[in.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(f.Instances)) { // problems in a stable order
		k := key + ".instances[" + name + "]"
		if !names[name] && !l.p.isFailed("instances") {
			l.p.addf(k, "no instance is named %s", quote(name))
			continue
		}
		if t.Instances == nil {
			t.Instances = map[string]map[string]TimingOverride{}
		}
		t.Instances[name] = l.timingEntries(k, f.Instances[name])
	}
	return t
}

// timingEntries checks the entries of one level, each under prefix.
func (l *loader) timingEntries(prefix string, entries map[string]timingFile) map[string]TimingOverride {
	var out map[string]TimingOverride
	for _, id := range slices.Sorted(maps.Keys(entries)) {
		k := prefix + "[" + id + "]"
		if _, ok := handlers.SpecFor(id); !ok && id != AllFindings {
			l.p.addf(k, "unknown finding %s (a finding id, or \"*\" for every finding)", quote(id))
			continue
		}
		var o TimingOverride
		for _, name := range slices.Sorted(maps.Keys(entries[id])) {
			d := entries[id][name]
			var field **time.Duration
			bad, msg := d < 0 || d > maxFor, "must be between 0s and 24h"
			switch name {
			case "for":
				field = &o.For
			case "for_warning":
				field = &o.ForWarning
			case "for_critical":
				field = &o.ForCritical
			case "repeat_interval":
				field = &o.RepeatInterval
				bad, msg = d < minRepeatInterval || d > maxRepeatInterval, "must be between 5m and 168h"
			default:
				l.p.addf(k+"["+name+"]", "unknown key")
				continue
			}
			if bad {
				l.p.addf(k+"["+name+"]", "%s", msg)
				continue
			}
			*field = &d
		}
		if out == nil {
			out = map[string]TimingOverride{}
		}
		out[id] = o
	}
	return out
}
