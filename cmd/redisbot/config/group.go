package config

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/redisbot/redisbot/handlers"
)

// What a config entry stands for, besides one server.
const (
	groupCluster  = "cluster"  // a seed: topology.Expand asks it for the cluster's nodes
	groupSentinel = "sentinel" // a Sentinel master: the sentinels give it and its replicas
)

// group checks the cluster and sentinel keys of the instance at key, sets
// them on in, and returns what the entry stands for: groupCluster,
// groupSentinel or "" for one server. sentinel says whether the entry has a
// sentinel section, decoded or not.
func (l *loader) group(key string, ri instanceFile, sentinel bool, in *handlers.Instance) string {
	sk := key + ".sentinel"
	in.Cluster = ri.Cluster
	if ri.Cluster && sentinel {
		l.p.addf(key, "cluster and sentinel are exclusive")
	}
	l.p.check(key+".db", ri.Cluster && ri.DB != 0, "must be 0 with cluster: Redis Cluster has only database 0")
	l.seeds(key, ri, in)
	switch {
	case ri.Cluster:
		return groupCluster
	case !sentinel:
		return ""
	case ri.Sentinel == nil || l.p.isFailed(sk):
		return groupSentinel // reported while decoding
	}

	s := &handlers.Sentinel{Master: ri.Sentinel.Master, Addrs: ri.Sentinel.Addrs}
	in.Sentinel = s
	switch k := sk + ".master"; {
	case s.Master == "":
		l.p.addf(k, "is required")
	case strings.ContainsFunc(s.Master, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		l.p.addf(k, "%s must not contain spaces or control characters", quote(s.Master))
	}
	l.p.check(sk+".addrs", len(s.Addrs) == 0, "at least one sentinel address is required")
	l.addrList(sk+".addrs", s.Addrs)
	return groupSentinel
}

// seeds checks the seeds of a cluster entry: nodes of one cluster, asked
// in order for its members, so that one node down does not hide the
// cluster. The first becomes the entry's addr.
func (l *loader) seeds(key string, ri instanceFile, in *handlers.Instance) {
	k := key + ".seeds"
	if len(ri.Seeds) == 0 {
		return
	}
	if !ri.Cluster {
		l.p.addf(k, "only with cluster: true (the nodes asked for a cluster's members)")
		return
	}
	l.addrList(k, ri.Seeds)
	if ri.Addr == "" {
		in.Addr = ri.Seeds[0]
	}
	in.Seeds = ri.Seeds
}

// addrList checks a list of host:port addresses under key (sentinels,
// cluster seeds): each one well formed and none twice.
func (l *loader) addrList(key string, addrs []string) {
	seen := map[string]int{}
	for i, addr := range addrs {
		k := fmt.Sprintf("%s[%d]", key, i)
		if msg := checkAddr(addr); msg != "" {
			l.p.add(k, errors.New(msg))
			continue
		}
		if j, dup := seen[addr]; dup {
			l.p.addf(k, "duplicate of %s[%d]", key, j)
		} else {
			seen[addr] = i
		}
	}
}
