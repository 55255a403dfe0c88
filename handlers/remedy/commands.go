package remedy

import "github.com/redisbot/redisbot/handlers"

// The commands the executor sends, as ACL rules name them. Writes carry
// Writes; Args is what check-config needs to pass Redis' arity check with
// arguments no such command accepts (see handlers.RedisCommand).
var (
	cmdInfo          = handlers.RedisCommand{ACL: "info", Args: 1}
	cmdPing          = handlers.RedisCommand{ACL: "ping"}
	cmdTime          = handlers.RedisCommand{ACL: "time"}
	cmdLatencyLatest = handlers.RedisCommand{ACL: "latency|latest"}
	cmdRole          = handlers.RedisCommand{ACL: "role"}
	cmdClusterNodes  = handlers.RedisCommand{ACL: "cluster|nodes"}
	cmdMemoryPurge   = handlers.RedisCommand{ACL: "memory|purge", Writes: true}
	cmdConfigSet     = handlers.RedisCommand{ACL: "config|set", Args: 2, Writes: true}
	cmdConfigRewrite = handlers.RedisCommand{ACL: "config|rewrite", Writes: true}
	cmdBGSave        = handlers.RedisCommand{ACL: "bgsave", Args: 1, Writes: true}
	cmdShutdown      = handlers.RedisCommand{ACL: "shutdown", Args: 1, Writes: true}
	cmdFailover      = handlers.RedisCommand{ACL: "failover", Args: 1, Writes: true}
	cmdReplicaOf     = handlers.RedisCommand{ACL: "replicaof", Args: 2, Writes: true}
	cmdClusterFail   = handlers.RedisCommand{ACL: "cluster|failover", Args: 1, Writes: true}
	cmdClientPause   = handlers.RedisCommand{ACL: "client|pause", Args: 2, Writes: true}
	cmdClientUnpause = handlers.RedisCommand{ACL: "client|unpause", Writes: true}
)

// Commands are what the executor sends with the remediation credential
// (the diagnosis user when the instance has none) to carry out action a
// on an instance with settings r: the action itself, what it polls while
// it waits, the defrag watch of defrag-on, and ClusterFacts' reads for a
// cluster failover. The snapshots before and after are the prober's
// (probe.Commands), and Sentinel's own commands go to the sentinels. An
// action the settings leave no way to run (restart or failover without a
// method) sends nothing. check-config tests every action's commands; the
// package's tests hold the executor to them.
func Commands(a handlers.Action, r handlers.Remediation) []handlers.RedisCommand {
	switch a {
	case handlers.ActionMemoryPurge:
		return []handlers.RedisCommand{cmdMemoryPurge}
	case handlers.ActionDefragOn:
		// The watch reads progress and latency and turns defrag off.
		return []handlers.RedisCommand{cmdConfigSet, cmdInfo, cmdPing, cmdTime, cmdLatencyLatest}
	case handlers.ActionDefragOff:
		return []handlers.RedisCommand{cmdConfigSet}
	case handlers.ActionConfigSet:
		if r.PersistConfig {
			return []handlers.RedisCommand{cmdConfigSet, cmdConfigRewrite}
		}
		return []handlers.RedisCommand{cmdConfigSet}
	case handlers.ActionBGSave:
		return []handlers.RedisCommand{cmdBGSave, cmdInfo}
	case handlers.ActionRestart:
		return restartCommands(r.RestartMethod)
	case handlers.ActionFailover:
		return failoverCommands(r)
	}
	return nil
}

// restartCommands: restart_method command runs a program and watches the
// server come back with the prober; shutdown sends SHUTDOWN SAVE.
func restartCommands(method string) []handlers.RedisCommand {
	if method == "shutdown" {
		return []handlers.RedisCommand{cmdShutdown}
	}
	return []handlers.RedisCommand{}
}

// failoverCommands are those of the failover method, and of the restart of
// the old primary as a replica when there is a restart method (REPLICAOF,
// CONFIG REWRITE of its config file, the restart itself; FAILOVER again
// for a fail-back).
func failoverCommands(r handlers.Remediation) []handlers.RedisCommand {
	var cmds []handlers.RedisCommand
	switch r.FailoverMethod {
	case "failover":
		cmds = []handlers.RedisCommand{cmdFailover, cmdInfo}
	case FailoverCluster:
		// The replica it promotes is rebuilt first (SHUTDOWN SAVE) when
		// it is as fragmented as its primary.
		return []handlers.RedisCommand{cmdClusterNodes, cmdInfo, cmdRole, cmdClusterFail, cmdShutdown}
	case FailoverSentinel:
		cmds = []handlers.RedisCommand{cmdInfo, cmdRole, cmdClientPause, cmdClientUnpause, cmdReplicaOf}
	default:
		return nil
	}
	if r.RestartMethod != "" {
		cmds = handlers.MergeCommands(cmds, []handlers.RedisCommand{cmdReplicaOf, cmdConfigRewrite}, restartCommands(r.RestartMethod))
	}
	return cmds
}
