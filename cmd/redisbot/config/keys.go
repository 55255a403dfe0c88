package config

import "time"

// Defaults for the keys section (/redis keys).
const (
	// DefaultKeysBudget is the throttle of a key scan in commands per
	// second on each server; docs/benchmarks.md ("Key scan") shows the
	// server's p99 latency staying within 1 ms of idle at this pace.
	DefaultKeysBudget = 20000
	// DefaultKeysMaxDuration ends a scan that runs longer, with a sample.
	DefaultKeysMaxDuration = 30 * time.Minute
	// DefaultKeysMaxConcurrent bounds the scans the Slack bot runs at once.
	DefaultKeysMaxConcurrent = 2
)

// Keys paces key scans.
type Keys struct {
	// Budget is the commands per second a throttled scan sends to each
	// server (keys.budget).
	Budget int `mapstructure:"budget"`
	// MaxDuration ends a scan with a sample after this long
	// (keys.max_duration).
	MaxDuration time.Duration `mapstructure:"max_duration"`
	// MaxConcurrent bounds scans running at once in Slack
	// (keys.max_concurrent); one instance is never scanned twice at once.
	MaxConcurrent int `mapstructure:"max_concurrent"`
}

// keys checks the keys section.
func (l *loader) keys(k Keys) Keys {
	// Below 100 commands/s a scan of a million keys takes days; the cap
	// keeps a typo from turning the throttle off (that is --fast's job).
	l.p.check("keys.budget", k.Budget < 100 || k.Budget > 1_000_000, "must be between 100 and 1000000 commands per second")
	l.p.check("keys.max_duration", k.MaxDuration < time.Minute || k.MaxDuration > 24*time.Hour, "must be between 1m and 24h")
	l.p.check("keys.max_concurrent", k.MaxConcurrent < 1 || k.MaxConcurrent > 64, "must be between 1 and 64")
	return k
}
