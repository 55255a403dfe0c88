package topology

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
)

// expandCluster asks the entry's seeds, in order, for the cluster's nodes;
// the first that tells wins. With one seed its error is returned as it
// is; with several, every seed's.
func expandCluster(ctx context.Context, seed handlers.Instance, timeout time.Duration) ([]handlers.Instance, error) {
	addrs := seed.Seeds
	if len(addrs) == 0 {
		addrs = []string{seed.Addr}
	}
	failed := &askedAll{what: "seed"}
	for _, addr := range addrs {
		members, err := askSeed(ctx, seed, addr, timeout)
		if err == nil {
			return clusterInstances(seed, members), nil
		}
		failed.addrs, failed.errs = append(failed.addrs, addr), append(failed.errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	if len(addrs) == 1 {
		return nil, failed.errs[0]
	}
	return nil, failed
}

// askSeed asks the node at addr for its cluster's members: CLUSTER SHARDS
// (Redis >= 7.0), or CLUSTER NODES when the server does not know SHARDS or
// the ACL denies it.
func askSeed(ctx context.Context, seed handlers.Instance, addr string, timeout time.Duration) ([]member, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dial(seed, addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	seedHost, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("seed address: %w", err)
	}

	members, err := clusterShards(ctx, c, seed.TLS != nil)
	if err != nil && (isServerError(err) || errors.Is(err, errNoHost)) {
		var text string
		text, err = c.ClusterNodes(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("CLUSTER NODES: %w", err)
		}
		members, err = nodeMembers(text, seedHost)
	}
	if err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, errors.New("the cluster reported no nodes")
	}
	return members, nil
}

// clusterInstances are the instances of the cluster's members, sorted by
// name, each with the seed entry's settings.
func clusterInstances(seed handlers.Instance, members []member) []handlers.Instance {
	out := make([]handlers.Instance, 0, len(members))
	seen := map[string]bool{}
	for _, m := range members {
		if seen[m.addr()] {
			continue
		}
		seen[m.addr()] = true
		role := TagReplica
		if m.primary {
			role = TagPrimary
		}
		in := derive(seed, NodeName(seed.Name, m.host, m.port), m.addr(), ClusterTag(seed.Name), role)
		in.Cluster = true
		out = append(out, in)
	}
	slices.SortFunc(out, byName)
	return out
}

// errNoHost means CLUSTER SHARDS listed a node without an address. A node
// that never met another does not know its own IP; CLUSTER NODES says
// which node is "myself", whose address is the seed's.
var errNoHost = errors.New("CLUSTER SHARDS lists a node without an address")

// clusterShards reads CLUSTER SHARDS. A node's address is its preferred
// endpoint (cluster-preferred-endpoint-type), or its IP when the endpoint is
// unknown ("?"); its port is the TLS port when the seed is reached over TLS
// and the node has one.
func clusterShards(ctx context.Context, c *redis.Client, useTLS bool) ([]member, error) {
	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}
	var out []member
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			host := n.Endpoint
			if host == "" || host == "?" {
				host = n.IP
			}
			port := n.Port
			if (useTLS && n.TLSPort > 0) || port == 0 {
				port = n.TLSPort
			}
			if host == "" {
				return nil, errNoHost
			}
			if port <= 0 || port > 65535 {
				continue // no port clients could use
			}
			out = append(out, member{host: host, port: int(port), primary: n.Role == "master"})
		}
	}
	return out, nil
}

// nodeMembers turns CLUSTER NODES into members, skipping nodes without an
// address (noaddr) and nodes still in the handshake. The node asked may
// show an empty host for itself when it has never talked to another node:
// seedHost, the address it was reached at, stands in.
func nodeMembers(text, seedHost string) ([]member, error) {
	nodes, err := ParseClusterNodes(text)
	if err != nil {
		return nil, err
	}
	var out []member
	for _, n := range nodes {
		if n.Has("noaddr") || n.Has("handshake") || n.Port <= 0 {
			continue
		}
		host := n.Host
		if host == "" {
			if !n.Has("myself") {
				continue
			}
			host = seedHost
		}
		out = append(out, member{host: host, port: n.Port, primary: n.Primary()})
	}
	return out, nil
}

// ClusterNode is one line of CLUSTER NODES.
type ClusterNode struct {
	ID string
	// Host and Port are where clients reach the node. Host is empty when
	// the node does not know its own address yet (only on the myself line
	// of a node that never met another).
	Host string
	Port int
	// Hostname is the announced hostname (Redis >= 7.0), if any.
	Hostname string
	// Flags: myself, master, slave, fail?, fail, handshake, noaddr,
	// nofailover, noflags.
	Flags []string
	// PrimaryID is the primary a replica follows; "" for a primary.
	PrimaryID string
	// LinkState is connected or disconnected.
	LinkState string
	// Migrating is set when the line lists slots being migrated to or
	// imported from another node ("[slot->-id]", "[slot-<-id]"). A node
	// shows this only for itself, on its myself line.
	Migrating bool
}

// Has reports whether the node carries flag.
func (n ClusterNode) Has(flag string) bool { return slices.Contains(n.Flags, flag) }

// Primary reports whether the node is a primary.
func (n ClusterNode) Primary() bool { return n.Has("master") }

// Addr is host:port, or "" when the host is unknown.
func (n ClusterNode) Addr() string {
	if n.Host == "" || n.Port <= 0 {
		return ""
	}
	return net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
}

// ParseClusterNodes parses the reply of CLUSTER NODES:
//
//	<id> <ip:port@cport[,hostname]> <flags> <primary|-> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot> ...
//
// Servers before 4.0 write the address without "@cport". IPv6 hosts are
// not bracketed: the port follows the last colon.
func ParseClusterNodes(text string) ([]ClusterNode, error) {
	var out []ClusterNode
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES line %d: %d fields, want at least 8", i+1, len(f))
		}
		n := ClusterNode{ID: f[0], Flags: strings.Split(f[2], ","), LinkState: f[7]}
		if f[3] != "-" {
			n.PrimaryID = f[3]
		}
		addr := f[1]
		if j := strings.IndexByte(addr, ','); j >= 0 {
			addr, n.Hostname = addr[:j], addr[j+1:]
		}
		if j := strings.IndexByte(addr, '@'); j >= 0 {
			addr = addr[:j]
		}
		j := strings.LastIndexByte(addr, ':')
		if j < 0 {
			return nil, fmt.Errorf("CLUSTER NODES line %d: address %q has no port", i+1, f[1])
		}
		port, err := strconv.Atoi(addr[j+1:])
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("CLUSTER NODES line %d: invalid port in %q", i+1, f[1])
		}
		n.Host, n.Port = strings.Trim(addr[:j], "[]"), port
		for _, slot := range f[8:] {
			if strings.HasPrefix(slot, "[") && (strings.Contains(slot, "->-") || strings.Contains(slot, "-<-")) {
				n.Migrating = true
			}
		}
		out = append(out, n)
	}
	return out, nil
}
