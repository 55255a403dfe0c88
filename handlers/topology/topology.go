// Package topology expands the config entries that stand for a group of
// servers into the concrete instances redisbot probes: a Redis Cluster seed
// into one instance per node, a Sentinel entry into the current master and
// its replicas.
//
// Trust: the addresses of the expanded instances come from the servers the
// config names, not from config itself. A cluster seed's cluster (CLUSTER
// SHARDS or CLUSTER NODES) and a Sentinel entry's sentinels are trusted to
// report their own members; nothing typed in chat ever becomes an address.
// The seed's credentials and TLS settings are sent to every node its
// cluster reports, so a seed must only name a cluster whose members may
// see them.
package topology

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
)

// ClusterCommands are what expanding a cluster seed sends to it, as the
// diagnosis user: CLUSTER SHARDS, and CLUSTER NODES where SHARDS is
// missing (before 7.0) or lists a node without an address.
var ClusterCommands = []handlers.RedisCommand{{ACL: "cluster|shards"}, {ACL: "cluster|nodes"}}

// SentinelCommands are what expanding a Sentinel entry sends to the
// sentinels, with the entry's sentinel credentials: SENTINEL
// GET-MASTER-ADDR-BY-NAME and SENTINEL REPLICAS (SLAVES before 5.0). A
// failover through Sentinel adds SENTINEL FAILOVER. Sentinels keep ACLs of
// their own, which check-config does not test.
var SentinelCommands = []handlers.RedisCommand{
	{ACL: "sentinel|get-master-addr-by-name", Args: 1},
	{ACL: "sentinel|replicas", Args: 1},
	{ACL: "sentinel|slaves", Args: 1},
}

// Tags added to expanded instances, besides ClusterTag and SentinelTag.
const (
	TagPrimary = "primary"
	TagReplica = "replica"
)

// ClusterTag is the tag of every node of the cluster behind seed:
// "cluster-<seed>".
func ClusterTag(seed string) string { return "cluster-" + seed }

// SentinelTag is the tag of the master and replicas behind the Sentinel
// entry called name: "sentinel-<name>".
func SentinelTag(name string) string { return "sentinel-" + name }

// GeneratedTags are the tags Expand may add to the instances of entry, so
// that config can accept them in channel and alert routes before any
// server is asked; nil for a plain instance.
func GeneratedTags(entry handlers.Instance) []string {
	switch {
	case isClusterSeed(entry):
		return []string{ClusterTag(entry.Name), TagPrimary, TagReplica}
	case isSentinelEntry(entry):
		return []string{SentinelTag(entry.Name), TagPrimary, TagReplica}
	}
	return nil
}

func isClusterSeed(in handlers.Instance) bool { return in.Cluster && in.Origin == "" }

func isSentinelEntry(in handlers.Instance) bool {
	return in.Sentinel != nil && in.Origin == "" && !in.Cluster
}

// Expand returns insts with every cluster seed and Sentinel entry replaced
// by the instances it stands for, in place: a cluster's nodes sorted by
// name, a Sentinel entry's master first and then its replicas by name.
// Plain instances, and instances Expand produced before (Origin set), pass
// through unchanged. Members their group reports as failed or down are
// kept, so that they are diagnosed as unreachable.
//
// An entry that cannot be expanded yields a *handlers.GroupError (which
// servers were asked, what they answered, classified as a probe error is)
// and stays in the list as it is, so that it is reported unreachable with
// that reason rather than silently dropped. A Sentinel entry kept this way
// has no Addr: callers must report it as unreachable without dialling it
// (go-redis would dial localhost:6379 for an empty address). An expanded
// name that another instance already has is an error too, and that member
// is skipped: names from config win, then the member expanded first.
//
// Each entry is expanded concurrently; timeout bounds connecting to and
// asking one server (each seed, or each sentinel, in turn).
func Expand(ctx context.Context, insts []handlers.Instance, timeout time.Duration) ([]handlers.Instance, []error) {
	type result struct {
		insts    []handlers.Instance
		expanded bool // insts came from the servers
		err      error
	}
	results := make([]result, len(insts))
	var wg sync.WaitGroup
	for i, in := range insts {
		var expand func(context.Context, handlers.Instance, time.Duration) ([]handlers.Instance, error)
		switch {
		case isClusterSeed(in):
			expand = expandCluster
		case isSentinelEntry(in):
			expand = expandSentinel
		default:
			results[i].insts = []handlers.Instance{in}
			continue
		}
		wg.Go(func() {
			got, err := expand(ctx, in, timeout)
			if err != nil {
				results[i] = result{insts: []handlers.Instance{in}, err: groupError(in.Name, err)}
				return
			}
			results[i] = result{insts: got, expanded: true}
		})
	}
	wg.Wait()

	var (
		out  []handlers.Instance
		errs []error
		seen = map[string]bool{}
	)
	for _, in := range insts {
		seen[in.Name] = true
	}
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
		}
		for _, in := range r.insts {
			if r.expanded {
				if seen[in.Name] {
					errs = append(errs, fmt.Errorf("expand %s: %s is already the name of another instance; skipped", insts[i].Name, in.Name))
					continue
				}
				seen[in.Name] = true
			}
			out = append(out, in)
		}
	}
	return out, errs
}

// groupError is the failure to expand entry, classified as a failed probe
// is: refused when every sentinel refused the connection, timeout, dns,
// auth... ("error" when nothing more precise applies).
func groupError(entry string, err error) *handlers.GroupError {
	class := probe.Classify(err)
	if class == "" {
		class = handlers.ClassError
	}
	return &handlers.GroupError{Entry: entry, Class: class, Err: err}
}

// askedAll is the failure of every server of a group, asked in turn: the
// seeds of a cluster or the sentinels of a master. It unwraps to each
// answer, so that the class says why (all refused: refused).
type askedAll struct {
	// what is the servers' role, "no <what> answered".
	what  string
	addrs []string
	errs  []error
}

func (e *askedAll) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = e.what + " " + e.addrs[i] + ": " + err.Error()
	}
	return "no " + e.what + " answered: " + strings.Join(parts, "; ")
}

func (e *askedAll) Unwrap() []error { return e.errs }

// derive is an instance of group entry: entry's settings with name, addr
// and the extra tags.
//
// A restart_method "command" is dropped: it runs one fixed command, which
// restarts one particular server, not whichever node is being relieved.
func derive(entry handlers.Instance, name, addr string, extra ...string) handlers.Instance {
	in := entry
	in.Name, in.Addr, in.Origin = name, addr, entry.Name
	in.Tags = slices.Clone(entry.Tags)
	in.Seeds = nil // a member is one server
	for _, t := range extra {
		if !slices.Contains(in.Tags, t) {
			in.Tags = append(in.Tags, t)
		}
	}
	if entry.TLS != nil {
		t := *entry.TLS
		in.TLS = &t
	}
	if entry.Sentinel != nil {
		in.Sentinel = &handlers.Sentinel{Master: entry.Sentinel.Master, Addrs: slices.Clone(entry.Sentinel.Addrs)}
	}
	in.Remediation.RestartCommand = slices.Clone(entry.Remediation.RestartCommand)
	if in.Remediation.RestartMethod == "command" {
		in.Remediation.RestartMethod, in.Remediation.RestartCommand = "", nil
	}
	return in
}

// NodeName is the name of the member at host:port of the group entry:
// "<entry>.<host>-<port>", with every character outside [a-z0-9._-]
// turned into '-' so that it stays a valid, stable instance name.
func NodeName(entry, host string, port int) string {
	return entry + "." + sanitize(host+"-"+strconv.Itoa(port))
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, s)
}

// member is one server of a group, as the group reports it.
type member struct {
	host    string
	port    int
	primary bool
}

func (m member) addr() string { return net.JoinHostPort(m.host, strconv.Itoa(m.port)) }

// byName sorts expanded instances so that a group always lists the same way.
func byName(a, b handlers.Instance) int { return strings.Compare(a.Name, b.Name) }
