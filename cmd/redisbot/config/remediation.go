package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/redisbot/redisbot/handlers"
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
func (l *loader) remediation(key, name, group string, rr rawRemediation) handlers.Remediation {
	key += ".remediation"
	r := handlers.Remediation{
		Username:       rr.Username,
		RestartMethod:  rr.RestartMethod,
		RestartCommand: rr.RestartCommand,
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
	if methodOK && !l.p.isFailed(cmdKey) {
		switch {
		case r.RestartMethod == restartCommand && len(r.RestartCommand) == 0:
			l.p.addf(cmdKey, "required when restart_method is command")
		case r.RestartMethod != restartCommand && len(r.RestartCommand) > 0:
			l.p.addf(cmdKey, "only with restart_method command")
		}
	}
	for i, arg := range r.RestartCommand {
		k := fmt.Sprintf("%s[%d]", cmdKey, i)
		if l.p.isFailed(k) {
			continue
		}
		if msg := checkArg(i, arg); msg != "" {
			l.p.addf(k, "%s", msg)
		}
	}

	if k := key + ".failover_method"; !l.p.isFailed(k) {
		switch m := r.FailoverMethod; {
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
	}
	if k := key + ".failback"; r.Failback && !l.p.isFailed(k) && (r.FailoverMethod != failoverCommand || r.RestartMethod == "") {
		l.p.addf(k, "needs failover_method failover and a restart_method (fail-back follows the restart of the old primary)")
	}
	return r
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
