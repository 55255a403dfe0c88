package handlers

import (
	"slices"
	"strings"
)

// RedisCommand is a Redis command that redisbot sends, as one package declares
// it beside the code that sends it (the probe, the key scan, each
// remediation). check-config reads these declarations to test what each
// Redis user may send, so a command added to a sender enters the
// permission check with its declaration, and each sender's tests hold it
// to sending nothing else.
type RedisCommand struct {
	// ACL is the name ACL rules give the command: "info", "config|get",
	// "memory|usage".
	ACL string
	// Args is how many arguments check-config sends after the name when it
	// tests the permission, each one a word no such command accepts
	// ("redisbot-check-config"): enough for Redis' arity check, which
	// comes before the ACL check, and none where the command takes none.
	Args int
	// Writes marks a command that changes the server when it runs:
	// check-config only ever queues it inside MULTI and discards it.
	Writes bool
}

// Words is the command's name as it is sent: "CONFIG", "GET".
func (c RedisCommand) Words() []string {
	return strings.Split(strings.ToUpper(c.ACL), "|")
}

// CommandNames are the ACL names of cmds, sorted, each once.
func CommandNames(cmds ...[]RedisCommand) []string {
	var names []string
	for _, list := range cmds {
		for _, c := range list {
			names = append(names, c.ACL)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// MergeCommands is every command of lists, each ACL name once (the first
// declaration of it), in order of first appearance.
func MergeCommands(lists ...[]RedisCommand) []RedisCommand {
	var out []RedisCommand
	for _, list := range lists {
		for _, c := range list {
			if !slices.ContainsFunc(out, func(o RedisCommand) bool { return o.ACL == c.ACL }) {
				out = append(out, c)
			}
		}
	}
	return out
}
