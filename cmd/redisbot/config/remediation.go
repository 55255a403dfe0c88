package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Restart and failover methods (handlers.Remediation).
const (
	restartCommand   = "command"
	restartShutdown  = "shutdown"
	failoverCommand  = "failover"
	failoverCluster  = "cluster-failover"
	failoverSentinel = "sentinel"
)

// remediation checks an instance's remediation section. key is the
// instance's key ("instances[0]"), name its name, for the password override,
// and group what the entry stands for (groupCluster, groupSentinel or "").
func (l *loader) remediation(key, name, group string, rr remediationFile) handlers.Remediation {
	key += ".remediation"
	r := handlers.Remediation{
		Username:       rr.Username,
		RestartMethod:  rr.RestartMethod,
		RestartCommand: rr.RestartCommand,
		RestartEnv:     rr.RestartEnv,
		FailoverMethod: rr.FailoverMethod,
		PersistConfig:  rr.PersistConfig,
		Failback:       rr.Failback,
	}
	if l.p.isFailed(key) {
		return r
	}
	override := ""
	if name != "" {
		override = remediationPasswordEnvName(name)
	}
	r.Password = l.password(key, override, passwordSources{rr.Password, rr.PasswordEnv, rr.PasswordFile})

	methodKey, cmdKey := key+".restart_method", key+".restart_command"
	methodOK := !l.p.isFailed(methodKey)
	if methodOK {
		switch r.RestartMethod {
		case restartCommand:
			if group != "" {
				// It would restart one server whichever node is relieved.
				l.p.addf(methodKey, "%s runs one fixed command, not one per node: use shutdown (a supervisor brings each node back)", quote(r.RestartMethod))
			}
		case restartShutdown, "":
		default:
			l.p.addf(methodKey, "%s is not command, shutdown or empty", quote(r.RestartMethod))
			methodOK = false
		}
	}
	if methodOK {
		switch {
		case r.RestartMethod == restartCommand && len(r.RestartCommand) == 0:
			l.p.addf(cmdKey, "required when restart_method is command")
		case r.RestartMethod != restartCommand && len(r.RestartCommand) > 0:
			l.p.addf(cmdKey, "only with restart_method command")
		}
	}
	for i, arg := range r.RestartCommand {
		l.p.check(fmt.Sprintf("%s[%d]", cmdKey, i), checkArg(i, arg) != "", checkArg(i, arg))
	}
	envKey := key + ".restart_env"
	l.p.check(envKey, methodOK && r.RestartMethod != restartCommand && len(r.RestartEnv) > 0, "only with restart_method command")
	for i, name := range r.RestartEnv {
		k := fmt.Sprintf("%s[%d]", envKey, i)
		if j := slices.Index(r.RestartEnv[:i], name); j >= 0 {
			l.p.addf(k, "duplicate of %s[%d]", envKey, j)
		} else if msg := checkRestartEnv(name, rr.PasswordEnv); msg != "" {
			l.p.addf(k, "%s", msg)
		}
	}

	switch k, m := key+".failover_method", r.FailoverMethod; {
	case m == "":
	case m == failoverCommand && group == groupCluster:
		l.p.addf(k, "%s does not work in cluster mode: use cluster-failover", quote(m))
	case m == failoverCommand && group == groupSentinel:
		l.p.addf(k, "%s would act behind Sentinel's back: use sentinel", quote(m))
	case m == failoverCommand:
	case m == failoverCluster && group != groupCluster:
		l.p.addf(k, "%s needs cluster: true", quote(m))
	case m == failoverSentinel && group != groupSentinel:
		l.p.addf(k, "%s needs a sentinel section", quote(m))
	case m == failoverCluster, m == failoverSentinel:
	default:
		l.p.addf(k, "%s is not failover, cluster-failover, sentinel or empty", quote(m))
	}
	l.p.check(key+".failback", r.Failback && (r.FailoverMethod != failoverCommand && r.FailoverMethod != failoverCluster || r.RestartMethod == ""),
		"needs failover_method failover or cluster-failover and a restart_method (fail-back follows the restart of the old primary)")
	return r
}

// checkRestartEnv returns what is wrong with a name in restart_env, or "".
// The restart command gets PATH and HOME anyway, and never a variable that
// holds one of redisbot's secrets: the Slack tokens, every REDISBOT_
// override (passwords among them) and the remediation password's
// variable. (A variable whose value turns out to hold a configured secret,
// whatever its name, is left out when the command runs.)
func checkRestartEnv(name, passwordEnv string) string {
	upper := strings.ToUpper(name)
	switch {
	case !envNamePattern.MatchString(name):
		return notEnvName
	case name == "PATH" || name == "HOME":
		return name + " is always passed: list only other variables"
	case upper == "SLACK_APP_TOKEN", upper == "SLACK_BOT_TOKEN", strings.HasPrefix(upper, "REDISBOT_"),
		passwordEnv != "" && name == passwordEnv:
		return name + " holds a secret redisbot reads: it is never passed to the restart command"
	}
	return ""
}

// checkArg returns what is wrong with element i of a restart command, or "".
// The command is run without a shell, so argv[0] must be found as is: an
// absolute path, or a name looked up in PATH. A relative path would depend
// on the working directory, and a space means the whole command line was
// written as one string.
func checkArg(i int, arg string) string {
	switch {
	case arg == "":
		return "must not be empty"
	case strings.ContainsRune(arg, 0):
		return "must not contain a NUL byte"
	case i > 0:
		return ""
	case strings.ContainsFunc(arg, unicode.IsSpace),
		!filepath.IsAbs(arg) && strings.ContainsRune(arg, '/'),
		arg == "." || arg == "..":
		return "must be an absolute path or a command name without spaces"
	}
	return ""
}

// Remediation says how approved remediations measure their effect: how
// long after MEMORY PURGE its result is read, and when the watch that
// follows defrag-on turns it off (the remediation section).
type Remediation struct {
	// PurgeSettle is how long after MEMORY PURGE RSS is read again
	// (remediation.purge_settle, default 2s, 0 to 1m).
	PurgeSettle time.Duration
	// DefragWatch bounds an active-defrag run (remediation.defrag_watch;
	// remedy.DefaultWatchConfig's values by default). Its IgnoreBytes is
	// not configured here: the watch takes it from the approved plan.
	DefragWatch remedy.WatchConfig
}

// DefaultPurgeSettle gives jemalloc and Redis's RSS sampling time to show
// what MEMORY PURGE returned.
const DefaultPurgeSettle = 2 * time.Second

// DefaultRemediation is the remediation section when the file has none.
func DefaultRemediation() Remediation {
	return Remediation{PurgeSettle: DefaultPurgeSettle, DefragWatch: remedy.DefaultWatchConfig()}
}

// remedy checks the remediation section; every value is checked, set or
// default.
func (l *loader) remedy(f remedyFile) Remediation {
	w := f.DefragWatch
	r := Remediation{PurgeSettle: f.PurgeSettle, DefragWatch: remedy.WatchConfig{
		Interval: w.Interval, MaxDuration: w.MaxDuration, TargetRatio: w.TargetRatio, MaxLatency: w.MaxLatency,
		StallIntervals: w.StallIntervals, StallShare: w.StallShare, MinHitRatio: w.MinHitRatio, IdleRunning: w.IdleRunning,
		RSSGrowth: w.RSSGrowth, Settle: w.Settle,
	}}
	between := func(key string, v, lo, hi time.Duration) {
		l.p.check(key, v < lo || v > hi, fmt.Sprintf("must be between %s and %s", shortDuration(lo), shortDuration(hi)))
	}
	between("remediation.purge_settle", r.PurgeSettle, 0, time.Minute)
	const k = "remediation.defrag_watch."
	between(k+"interval", w.Interval, time.Second, 10*time.Minute)
	if !l.p.isFailed(k + "interval") {
		l.p.check(k+"max_duration", w.MaxDuration < w.Interval || w.MaxDuration > 24*time.Hour, "must be between the interval and 24h")
	}
	l.p.check(k+"target_ratio", !(w.TargetRatio >= 1 && w.TargetRatio <= 2), "must be between 1.0 and 2.0")
	between(k+"max_latency", w.MaxLatency, time.Millisecond, 10*time.Second)
	l.p.check(k+"stall_intervals", w.StallIntervals < 0 || w.StallIntervals > 100, "must be between 0 (off) and 100")
	l.p.check(k+"stall_share", !(w.StallShare >= 0 && w.StallShare <= 0.5), "must be between 0 and 0.5")
	l.p.check(k+"min_hit_ratio", !(w.MinHitRatio >= 0 && w.MinHitRatio <= 1), "must be between 0 and 1")
	l.p.check(k+"idle_running", w.IdleRunning < 0 || w.IdleRunning > 100, "must be between 0 and 100 (percent of a CPU)")
	l.p.check(k+"rss_growth", !(w.RSSGrowth >= 0 && w.RSSGrowth <= 1), "must be between 0 (off) and 1")
	between(k+"settle", w.Settle, 0, 5*time.Minute)
	return r
}

// shortDuration writes 1m and 24h, not 1m0s and 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
