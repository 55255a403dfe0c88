package remedy

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
	"github.com/redisbot/redisbot/handlers/topology"
)

// Failover methods for groups of servers (handlers.Remediation.FailoverMethod),
// besides "failover" for a standalone primary and its replicas.
const (
	// FailoverCluster sends CLUSTER FAILOVER, without FORCE, to a replica
	// of the cluster node to relieve: the primary pauses its clients until
	// the replica has caught up, so no acknowledged write is lost.
	FailoverCluster = "cluster-failover"
	// FailoverSentinel asks Sentinel to promote a replica (SENTINEL
	// FAILOVER), so that Sentinel's clients follow.
	FailoverSentinel = "sentinel"
)

// FactSlotsMigrating is "yes" while a primary of an instance's cluster has
// slots migrating or importing and "no" when none has. It is not learned
// once and stored: ClusterFacts reads it fresh for each MakePlan.
const FactSlotsMigrating = "cluster_slots_migrating"

// ClusterFacts asks the cluster of inst, through every primary's CLUSTER
// NODES, whether slots are migrating, for MakePlan's cluster-failover
// check. Callers merge the result into the stored facts before MakePlan,
// at request and at approval time. Each command takes at most timeout.
func ClusterFacts(ctx context.Context, inst handlers.Instance, timeout time.Duration) (Facts, error) {
	e := &Executor{timeout: timeout}
	c := e.client(inst)
	defer c.Close()
	nodes, err := clusterNodes(ctx, c)
	if err != nil {
		return nil, err
	}
	migrating, err := e.clusterMigrating(ctx, inst, nodes)
	if err != nil {
		return nil, err
	}
	return Facts{FactSlotsMigrating: yesNo(migrating)}, nil
}

// SlotsMigrating reports whether CLUSTER NODES, as the node c is connected
// to sees it, shows slots migrating to or importing from another node
// ("[slot->-id]", "[slot-<-id]"). A node shows this only for itself: ask
// every primary to know about the whole cluster.
func SlotsMigrating(ctx context.Context, c *redis.Client) (bool, error) {
	nodes, err := clusterNodes(ctx, c)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(nodes, func(n topology.ClusterNode) bool { return n.Migrating }), nil
}

func clusterNodes(ctx context.Context, c *redis.Client) ([]topology.ClusterNode, error) {
	text, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES: %w", err)
	}
	return topology.ParseClusterNodes(text)
}

// clusterMigrating asks every live primary in nodes (CLUSTER NODES as the
// node of inst sees it) whether it has slots migrating or importing. The
// node of inst answers from nodes itself. A primary that does not answer
// is an error: the migration state is then unknown.
func (e *Executor) clusterMigrating(ctx context.Context, inst handlers.Instance, nodes []topology.ClusterNode) (bool, error) {
	for _, n := range nodes {
		if !n.Primary() || n.Has("fail") || n.Has("noaddr") || n.Has("handshake") {
			continue
		}
		if n.Has("myself") {
			if n.Migrating {
				return true, nil
			}
			continue
		}
		addr := nodeAddr(n, inst.Addr)
		c := e.client(at(inst, addr))
		migrating, err := SlotsMigrating(ctx, c)
		c.Close()
		if err != nil {
			return false, fmt.Errorf("primary %s: %w", addr, err)
		}
		if migrating {
			return true, nil
		}
	}
	return false, nil
}

// planGroupFailover fills the failover plan of the cluster-failover and
// sentinel methods.
func planGroupFailover(p *Plan, inst handlers.Instance, s *handlers.Snapshot, facts Facts, check checkFunc) {
	method := inst.Remediation.FailoverMethod
	cluster, _ := s.Int("cluster_enabled")
	switch method {
	case FailoverCluster:
		p.Commands = []string{"CLUSTER FAILOVER on an in-sync replica of this node (from CLUSTER NODES), then wait until it reports role master"}
		p.Risks = []string{"Writes to this node's slots pause while the replica catches up (Redis allows a manual failover 5s); cluster clients follow the MOVED redirections to the new primary."}
	case FailoverSentinel:
		master := ""
		if inst.Sentinel != nil {
			master = inst.Sentinel.Master
		}
		p.Commands = []string{"SENTINEL FAILOVER " + master + " on the first sentinel that answers, then wait until it reports a new master address"}
		p.Risks = []string{"Sentinel does not pause the old primary: writes it accepts until Sentinel turns it into a replica (seconds) are lost. Clients must ask Sentinel for the master."}
	}
	if inst.Remediation.RestartMethod != "" {
		p.Commands = append(p.Commands, "then restart the old primary ("+inst.Remediation.RestartMethod+") once it is a replica, so it resyncs into fresh memory")
	}
	p.Risks = append(p.Risks, "A partial resync would keep the old primary's fragmented memory: it is restarted to force a full one.")

	check("failover is configured", true, true, "remediation.failover_method: "+method, "", "")
	role := s.Role()
	check("the instance is a primary", role == "master", true, "role master", "role is "+role, "fail over from its primary")
	switch method {
	case FailoverCluster:
		check("cluster mode", cluster == 1, true, "cluster_enabled:1", "cluster_enabled is not 1: CLUSTER FAILOVER needs a cluster node",
			"use remediation.failover_method: failover")
		switch facts[FactSlotsMigrating] {
		case "no":
			check("no slot migration in progress", true, true, "no primary shows migrating or importing slots in CLUSTER NODES", "", "")
		case "yes":
			check("no slot migration in progress", false, true, "", "a primary shows migrating or importing slots in CLUSTER NODES",
				"wait until the resharding is done")
		default:
			check("slot migrations checked", false, false, "", "not checked when planning",
				"the executor asks every primary's CLUSTER NODES right before CLUSTER FAILOVER and refuses during a migration")
		}
	case FailoverSentinel:
		ok := inst.Sentinel != nil && inst.Sentinel.Master != "" && len(inst.Sentinel.Addrs) > 0
		check("monitored by Sentinel", ok, true, "sentinel master "+sentinelMaster(inst), "the instance has no sentinel section",
			"it must come from a sentinel entry through topology.Expand")
		check("not cluster mode", cluster == 0, true, "cluster_enabled:0", "cluster mode: Sentinel does not fail over cluster nodes",
			"use remediation.failover_method: cluster-failover")
	}
	checkReplicaInSync(s, check)
}

func sentinelMaster(inst handlers.Instance) string {
	if inst.Sentinel == nil {
		return ""
	}
	return inst.Sentinel.Master
}

// clusterFailover relieves a cluster primary: CLUSTER FAILOVER on one of
// its replicas, after checking that no slot is migrating anywhere in the
// cluster (a primary that hands over its slots mid-migration would leave
// the migration half done).
func (e *Executor) clusterFailover(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) error {
	start := e.now()
	nodes, err := clusterNodes(ctx, c)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(nodes, func(n topology.ClusterNode) bool { return n.Has("myself") })
	if i < 0 {
		return errors.New("CLUSTER NODES has no line for the node itself")
	}
	self := nodes[i]
	if !self.Primary() {
		return errors.New("this node is not a primary any more (CLUSTER NODES flags " + strings.Join(self.Flags, ",") + ")")
	}
	migrating, err := e.clusterMigrating(ctx, inst, nodes)
	if err != nil {
		return fmt.Errorf("checking for slot migrations: %w", err)
	}
	if migrating {
		o.Message = "refused: slots are migrating or importing in the cluster; fail over once the resharding is done"
		return errors.New(o.Message)
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication: %w", err)
	}
	replica, err := pickReplica(nodes, self, handlers.ParseInfo(info), inst.Addr)
	if err != nil {
		return err
	}

	rc := e.client(at(inst, replica))
	defer rc.Close()
	if err := rc.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		return fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica, err)
	}
	if err := e.waitRole(ctx, rc, "master"); err != nil {
		return fmt.Errorf("replica %s after CLUSTER FAILOVER: %w", replica, err)
	}
	o.Details["new_primary"] = replica
	return e.afterFailover(ctx, c, inst, before, o, start)
}

// pickReplica chooses the replica of self to promote: among the healthy
// replicas CLUSTER NODES lists for self, the one INFO replication shows
// online with the highest offset. When none can be matched by address
// (announced addresses differ from what the primary sees), the first
// healthy one: without FORCE, CLUSTER FAILOVER only completes once that
// replica has caught up.
func pickReplica(nodes []topology.ClusterNode, self topology.ClusterNode, info handlers.Info, selfAddr string) (string, error) {
	var candidates []string
	for _, n := range nodes {
		if n.PrimaryID != self.ID || n.Has("fail") || n.Has("fail?") || n.Has("noaddr") || n.Has("handshake") || n.LinkState != "connected" {
			continue
		}
		candidates = append(candidates, nodeAddr(n, selfAddr))
	}
	if len(candidates) == 0 {
		return "", errors.New("no healthy replica of this node in CLUSTER NODES")
	}
	best, bestOffset := "", int64(-1)
	n, _ := info.Int("connected_slaves")
	for i := range n {
		sub := info.Sub("slave" + strconv.FormatInt(i, 10))
		addr := net.JoinHostPort(sub["ip"], sub["port"])
		offset, err := strconv.ParseInt(sub["offset"], 10, 64)
		if sub["state"] == "online" && err == nil && offset > bestOffset && slices.Contains(candidates, addr) {
			best, bestOffset = addr, offset
		}
	}
	if best == "" {
		best = candidates[0]
	}
	return best, nil
}

// sentinelFailover asks the first sentinel that answers to fail over the
// master, after checking that the master Sentinel knows is this instance.
func (e *Executor) sentinelFailover(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) error {
	s := inst.Sentinel
	if s == nil || s.Master == "" || len(s.Addrs) == 0 {
		return errors.New("no sentinel section: failover_method sentinel needs the sentinels and the master name")
	}
	start := e.now()
	var (
		sc                *redis.SentinelClient
		sentinel, current string
		msgs              []string
	)
	for _, addr := range s.Addrs {
		cl, err := topology.DialSentinel(inst, addr, e.timeout)
		if err != nil {
			return err
		}
		cur, err := topology.MasterAddr(ctx, cl, s.Master)
		if err == nil {
			sc, sentinel, current = cl, addr, cur
			break
		}
		cl.Close()
		msgs = append(msgs, "sentinel "+addr+": "+err.Error())
	}
	if sc == nil {
		return fmt.Errorf("no sentinel answered: %s", strings.Join(msgs, "; "))
	}
	defer sc.Close()
	if current != inst.Addr {
		o.Message = fmt.Sprintf("refused: Sentinel's master %s is %s, not this instance (%s); the topology changed since it was read", s.Master, current, inst.Addr)
		return errors.New(o.Message)
	}
	if err := sc.Failover(ctx, s.Master).Err(); err != nil {
		return fmt.Errorf("SENTINEL FAILOVER %s on %s: %w", s.Master, sentinel, err)
	}
	deadline := e.now().Add(e.WaitBack)
	for {
		addr, err := topology.MasterAddr(ctx, sc, s.Master)
		if err == nil && addr != current {
			o.Details["new_primary"] = addr
			break
		}
		if e.now().After(deadline) {
			return fmt.Errorf("the sentinel still reports %s as master after %s", current, e.WaitBack)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
	o.Details["sentinel"] = sentinel
	return e.afterFailover(ctx, c, inst, before, o, start)
}

// afterFailover reports the failover and, when a restart method is
// configured, restarts the old primary once it follows the new one, as
// Executor.failover does: a partial resync would keep its fragmented pages.
func (e *Executor) afterFailover(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome, start time.Time) error {
	o.Details["failover_time"] = e.now().Sub(start).Round(time.Millisecond).String()
	o.Message = "failed over to " + o.Details["new_primary"] + " in " + o.Details["failover_time"]
	if inst.Remediation.RestartMethod == "" {
		o.Message += "; the old primary was not restarted (no restart method), so it keeps its fragmented memory"
		return nil
	}
	// Restarted while it still believes it is the primary, it would come
	// back as a second one.
	if err := e.waitRole(ctx, c, "slave"); err != nil {
		return fmt.Errorf("failover done, but the old primary did not become a replica, so it was not restarted: %w", err)
	}
	if err := e.restart(ctx, c, inst, before, o); err != nil {
		return fmt.Errorf("failover done, restart of the old primary failed: %w", err)
	}
	o.Message = "failed over to " + o.Details["new_primary"] + " in " + o.Details["failover_time"] + "; old primary restarted and resynced (" + o.Details["time_to_back"] + ")"
	return nil
}

// waitRole waits until ROLE on c answers want (master or slave), for at
// most WaitBack.
func (e *Executor) waitRole(ctx context.Context, c *redis.Client, want string) error {
	deadline := e.now().Add(e.WaitBack)
	last := "unknown"
	for {
		v, err := c.Do(ctx, "ROLE").Slice()
		if err == nil && len(v) > 0 {
			if role, _ := v[0].(string); role == want {
				return nil
			} else if role != "" {
				last = role
			}
		}
		if e.now().After(deadline) {
			return fmt.Errorf("role is still %s after %s, want %s", last, e.WaitBack, want)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
}

// at is inst's settings for the server at addr, another member of its
// group.
func at(inst handlers.Instance, addr string) handlers.Instance {
	inst.Addr = addr
	return inst
}

// nodeAddr is a node's address; a node that does not know its own host
// (a lone node) is at the host of fallback.
func nodeAddr(n topology.ClusterNode, fallback string) string {
	if a := n.Addr(); a != "" {
		return a
	}
	host, _, _ := net.SplitHostPort(fallback)
	return net.JoinHostPort(host, strconv.Itoa(n.Port))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
