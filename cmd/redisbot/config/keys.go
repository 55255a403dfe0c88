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
	Budget int
	// MaxDuration ends a scan with a sample after this long
	// (keys.max_duration).
	MaxDuration time.Duration
	// MaxConcurrent bounds scans running at once in Slack
	// (keys.max_concurrent); one instance is never scanned twice at once.
	MaxConcurrent int
}

type rawKeys struct {
	Budget        int           `mapstructure:"budget"`
	MaxDuration   time.Duration `mapstructure:"max_duration"`
	MaxConcurrent int           `mapstructure:"max_concurrent"`
}

func defaultRawKeys() rawKeys {
	return rawKeys{Budget: DefaultKeysBudget, MaxDuration: DefaultKeysMaxDuration, MaxConcurrent: DefaultKeysMaxConcurrent}
}

// keys checks the keys section.
func (l *loader) keys(rk rawKeys) Keys {
	k := Keys(rk)
	// Below 100 commands/s a scan of a million keys takes days; the cap
	// keeps a typo from turning the throttle off (that is --fast's job).
	if key := "keys.budget"; !l.p.isFailed(key) && (k.Budget < 100 || k.Budget > 1_000_000) {
		l.p.addf(key, "must be between 100 and 1000000 commands per second")
	}
	if key := "keys.max_duration"; !l.p.isFailed(key) && (k.MaxDuration < time.Minute || k.MaxDuration > 24*time.Hour) {
		l.p.addf(key, "must be between 1m and 24h")
	}
	if key := "keys.max_concurrent"; !l.p.isFailed(key) && (k.MaxConcurrent < 1 || k.MaxConcurrent > 64) {
		l.p.addf(key, "must be between 1 and 64")
	}
	return k
}
