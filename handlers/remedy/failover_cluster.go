package remedy

import (
	"cmp"
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

// Facts about an instance's cluster that ClusterFacts reads fresh for
// each MakePlan; none is learned once and stored.
const (
	// FactSlotsMigrating is "yes" while a primary of the cluster has slots
	// migrating or importing and "no" when none has.
	FactSlotsMigrating = "cluster_slots_migrating"
	// FactReplica is the address of the replica a cluster failover would
	// promote, FactReplicaMemory its fragmentation in words, and
	// FactReplicaFragmented "yes" when it is as fragmented as the rules
	// call fragmented (promoting it would reclaim nothing) and "no" when
	// it is not.
	FactReplica           = "cluster_replica"
	FactReplicaMemory     = "cluster_replica_memory"
	FactReplicaFragmented = "cluster_replica_fragmented"
)

// ClusterFacts asks the cluster of inst, through every primary's CLUSTER
// NODES, whether slots are migrating, and the replica a failover would
// promote for its memory, for MakePlan's cluster-failover checks. Callers
// merge the result into the stored facts before MakePlan, at request and
// at approval time. Each command takes at most timeout. A replica that
// cannot be read leaves its facts out: the executor judges it again.
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
	facts := Facts{FactSlotsMigrating: yesNo(migrating)}
	i := slices.IndexFunc(nodes, func(n topology.ClusterNode) bool { return n.Has("myself") })
	if i < 0 || !nodes[i].Primary() {
		return facts, nil
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return facts, nil
	}
	candidates, err := replicaCandidates(nodes, nodes[i], handlers.ParseInfo(info), inst.Addr)
	if err != nil {
		return facts, nil
	}
	// The first compact candidate, as the executor chooses.
	for _, addr := range candidates {
		rc := e.client(at(inst, addr))
		mem, err := rc.Info(ctx, "memory").Result()
		rc.Close()
		if err != nil {
			continue
		}
		fragmented, words := judgeReplica(&handlers.Snapshot{Info: handlers.ParseInfo(mem)}, thresholdsOf(inst))
		if facts[FactReplica] == "" || !fragmented {
			facts[FactReplica], facts[FactReplicaMemory], facts[FactReplicaFragmented] = addr, words, yesNo(fragmented)
		}
		if !fragmented {
			break
		}
	}
	return facts, nil
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
		p.Commands = []string{clusterReplicaStep(inst, facts), "CLUSTER FAILOVER on it, then wait until it reports role master"}
		p.Risks = []string{"Writes to this node's slots pause while the replica catches up (Redis allows a manual failover 5 s); cluster clients follow the MOVED redirections to the new primary."}
		if inst.Remediation.RestartMethod != "" {
			p.Commands = append(p.Commands, "then restart the old primary ("+inst.Remediation.RestartMethod+"): it rejoins from its nodes.conf as a replica and resyncs into fresh memory")
			p.Risks = append(p.Risks, "The old primary is restarted, not just resynced: a partial resync would keep its fragmented memory.")
		} else {
			p.Risks = append(p.Risks, "No restart method: the old primary is not restarted and keeps its fragmented memory.")
		}
		if clusterFailback(inst) {
			p.Commands = append(p.Commands, "then, once it is in sync, CLUSTER FAILOVER on the old primary: it serves again from its fresh memory")
		}
	case FailoverSentinel:
		master := sentinelMaster(inst)
		p.Commands = []string{
			fmt.Sprintf("CLIENT PAUSE %d WRITE on this master, until every replica has acknowledged its offset", sentinelPause.Milliseconds()),
			"SENTINEL FAILOVER " + master + " on the first sentinel that answers, then wait until it names a new master",
			"REPLICAOF <new master> on this server, then CLIENT UNPAUSE: paused writes get READONLY",
		}
		p.Risks = []string{fmt.Sprintf("Client writes to this master pause until Sentinel has promoted a replica (at most %s; then writes resume here and the bot stops waiting for Sentinel). "+
			"Clients that ask Sentinel for the master move to the new one; clients pinned to this address get READONLY from then on.", sentinelPause)}
		planRestartAsReplica(p, inst, s, "the new master", check)
	}

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
		checkClusterReplica(inst, facts, check)
	case FailoverSentinel:
		ok := inst.Sentinel != nil && inst.Sentinel.Master != "" && len(inst.Sentinel.Addrs) > 0
		check("monitored by Sentinel", ok, true, "sentinel master "+sentinelMaster(inst), "the instance has no sentinel section",
			"it must come from a sentinel entry through topology.Expand")
		check("not cluster mode", cluster == 0, true, "cluster_enabled:0", "cluster mode: Sentinel does not fail over cluster nodes",
			"use remediation.failover_method: cluster-failover")
	}
	checkReplicaInSync(s, check)
}

// clusterReplicaStep is the plan's first step of a cluster failover: the
// replica it promotes, as ClusterFacts judged it, or that it judges them
// when they were not read.
func clusterReplicaStep(inst handlers.Instance, facts Facts) string {
	replica, words := facts[FactReplica], facts[FactReplicaMemory]
	rebuild := inst.Remediation.RestartMethod == "shutdown" && !clusterFailback(inst)
	switch {
	case facts[FactReplicaFragmented] == "no":
		return "promote the compact replica " + replica + " (" + words + ")"
	case facts[FactReplicaFragmented] == "yes" && clusterFailback(inst):
		return "promote the replica " + replica + " as it is (" + words + "): the old primary takes the role back once rebuilt"
	case facts[FactReplicaFragmented] == "yes" && rebuild:
		return "restart the fragmented replica " + replica + " first (" + words + "; SHUTDOWN SAVE, its supervisor brings it back and it reloads compact), then promote it once it is in sync and compact"
	case facts[FactReplicaFragmented] == "yes":
		return "promote the replica " + replica + ", as fragmented as this primary (" + words + "): refused, it would reclaim nothing"
	case rebuild:
		return "probe the replicas and promote the first compact one; a fragmented one is restarted first (SHUTDOWN SAVE; its supervisor brings it back and it reloads compact)"
	}
	return "probe the replicas and promote the first compact one; refuse if every one is fragmented"
}

// checkClusterReplica checks that the failover leaves the shard a compact
// primary. The replica applied the same writes and deletes as this
// primary, so it is usually as fragmented: promoting it as it is would
// move the problem, not end it. It is fine when the replica is compact,
// when it can be rebuilt first (restart_method shutdown: a supervisor
// brings it back and it reloads into fresh memory), or when fail-back
// hands the role back to this node once it has restarted.
func checkClusterReplica(inst handlers.Instance, facts Facts, check checkFunc) {
	const name = "the primary after the failover is compact"
	replica, words := facts[FactReplica], facts[FactReplicaMemory]
	switch {
	case facts[FactReplicaFragmented] == "no":
		check(name, true, true, "replica "+replica+" to promote: "+words, "", "")
	case facts[FactReplicaFragmented] != "yes":
		check("replica memory checked", false, false, "", "not checked when planning",
			"the executor probes the replicas right before CLUSTER FAILOVER and refuses a fragmented one it cannot rebuild")
	case clusterFailback(inst):
		check(name, true, true, "replica "+replica+" is fragmented ("+words+"), but fail-back hands the role back to this node once it has restarted and resynced", "", "")
	case inst.Remediation.RestartMethod == "shutdown":
		check(name, true, true, "replica "+replica+" is fragmented ("+words+"): it is restarted first and promoted once it has reloaded compact", "", "")
	default:
		check(name, false, true, "", "replica "+replica+" is as fragmented ("+words+"): promoting it would reclaim nothing",
			"set remediation.restart_method: shutdown (a supervisor brings each node back) so that the replica is restarted first, or restart it and ask again")
	}
}

// clusterFailback reports whether a cluster failover hands the primary
// role back to the node it relieved: fail-back asked for, and a restart
// method to rebuild that node with first.
func clusterFailback(inst handlers.Instance) bool {
	return inst.Remediation.Failback && inst.Remediation.RestartMethod != ""
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
//
// A failover reclaims memory only if the primary it leaves is compact. The
// replica applied the same writes and deletes, so it is usually as
// fragmented as this node: each replica is probed first, and a fragmented
// one is rebuilt before it is promoted (restart_method shutdown: its
// supervisor brings it back and it reloads into fresh memory) or the
// failover is refused with the numbers. With fail-back the role returns to
// this node once it has restarted and resynced, whatever the replica held.
// The outcome measures the server that serves the slots at the end
// (Details["serving_primary"]), not this node's address.
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
	candidates, err := replicaCandidates(nodes, self, handlers.ParseInfo(info), inst.Addr)
	if err != nil {
		return err
	}
	t := thresholdsOf(inst)
	replica, snap, err := e.chooseReplica(ctx, inst, candidates, t)
	if err != nil {
		return err
	}
	fragmented, words := judgeReplica(snap, t)
	o.Details["replica_memory"] = words
	var notes []string
	if fragmented && !clusterFailback(inst) {
		if inst.Remediation.RestartMethod != "shutdown" {
			o.Message = fmt.Sprintf("refused: the replica %s is as fragmented as this primary (%s): promoting it would reclaim nothing. "+
				"Set remediation.restart_method: shutdown so that redisbot restarts it first, or restart it and ask again", replica, words)
			return errors.New(o.Message)
		}
		rebuilt, err := e.rebuildReplica(ctx, inst, replica, snap, o)
		if err != nil {
			return fmt.Errorf("restarting the fragmented replica %s before promoting it: %w", replica, err)
		}
		fragmented, after := judgeReplica(rebuilt, t)
		o.Details["replica_memory"] = words + " → " + after
		if fragmented {
			o.Message = fmt.Sprintf("refused: the replica %s is still fragmented after its restart (%s), so it was not promoted", replica, after)
			return errors.New(o.Message)
		}
		notes = append(notes, fmt.Sprintf("replica %s restarted first (%s → %s)", replica, words, after))
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
	o.Details["serving_primary"] = replica
	if err := e.afterFailover(ctx, c, inst, before, o, start); err != nil {
		return err
	}
	if clusterFailback(inst) {
		if err := e.clusterFailBack(ctx, inst); err != nil {
			return fmt.Errorf("failover done, fail-back failed: %w", err)
		}
		o.Details["failed_back_to"] = inst.Addr
		o.Details["serving_primary"] = inst.Addr
		o.Message += "; failed back to " + inst.Addr
	}
	o.Message = strings.Join(append(notes, o.Message), "; ")
	e.measureServing(ctx, inst, before, o)
	return nil
}

// replicaCandidates are the replicas of self that may be promoted, best
// first: the healthy replicas CLUSTER NODES lists for self, those INFO
// replication shows online by highest offset, then the others (announced
// addresses may differ from what the primary sees; without FORCE, CLUSTER
// FAILOVER only completes once the replica has caught up).
func replicaCandidates(nodes []topology.ClusterNode, self topology.ClusterNode, info handlers.Info, selfAddr string) ([]string, error) {
	var healthy []string
	for _, n := range nodes {
		if n.PrimaryID != self.ID || n.Has("fail") || n.Has("fail?") || n.Has("noaddr") || n.Has("handshake") || n.LinkState != "connected" {
			continue
		}
		healthy = append(healthy, nodeAddr(n, selfAddr))
	}
	if len(healthy) == 0 {
		return nil, errors.New("no healthy replica of this node in CLUSTER NODES")
	}
	type online struct {
		addr   string
		offset int64
	}
	var synced []online
	n, _ := info.Int("connected_slaves")
	for i := range n {
		sub := info.Sub("slave" + strconv.FormatInt(i, 10))
		addr := net.JoinHostPort(sub["ip"], sub["port"])
		offset, err := strconv.ParseInt(sub["offset"], 10, 64)
		if sub["state"] == "online" && err == nil && slices.Contains(healthy, addr) {
			synced = append(synced, online{addr, offset})
		}
	}
	slices.SortStableFunc(synced, func(a, b online) int { return cmp.Compare(b.offset, a.offset) })
	out := make([]string, 0, len(healthy))
	for _, s := range synced {
		out = append(out, s.addr)
	}
	for _, addr := range healthy {
		if !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	return out, nil
}

// chooseReplica probes the candidates and returns the first compact one,
// or the first that answered when all are fragmented. A replica that does
// not answer is skipped; none answering is an error, since a replica that
// cannot be read cannot be judged.
func (e *Executor) chooseReplica(ctx context.Context, inst handlers.Instance, candidates []string, t handlers.Thresholds) (string, *handlers.Snapshot, error) {
	var (
		first     string
		firstSnap *handlers.Snapshot
		failures  []string
	)
	for _, addr := range candidates {
		snap, err := e.prober.Probe(ctx, at(inst, addr))
		if err != nil {
			failures = append(failures, addr+": "+err.Error())
			continue
		}
		if fragmented, _ := judgeReplica(snap, t); !fragmented {
			return addr, snap, nil
		}
		if first == "" {
			first, firstSnap = addr, snap
		}
	}
	if first == "" {
		return "", nil, fmt.Errorf("no replica could be probed to judge its memory: %s", strings.Join(failures, "; "))
	}
	return first, firstSnap, nil
}

// judgeReplica says whether the server s describes is fragmented as the
// fragmentation rules judge it (mem_fragmentation_ratio at frag_warning
// or above, with more than frag_noise_bytes beyond the data), and its
// numbers in words. An unknown ratio is not called fragmented.
func judgeReplica(s *handlers.Snapshot, t handlers.Thresholds) (bool, string) {
	ratio, ok := handlers.EffectiveFragRatio(s, t)
	rss, rssOK := s.Int("used_memory_rss")
	used, usedOK := s.Int("used_memory")
	words := "mem_fragmentation_ratio "
	switch raw, rawOK := s.Float("mem_fragmentation_ratio"); {
	case rawOK:
		words += handlers.Ratio(raw)
	default:
		words += "unknown"
	}
	if rssOK && usedOK {
		words += fmt.Sprintf(", RSS %s for %s of data", handlers.HumanBytes(rss), handlers.HumanBytes(used))
	}
	return ok && ratio >= t.FragWarning, words
}

// thresholdsOf are the instance's thresholds, or the defaults for an
// instance built without any.
func thresholdsOf(inst handlers.Instance) handlers.Thresholds {
	if inst.Thresholds == (handlers.Thresholds{}) {
		return handlers.DefaultThresholds()
	}
	return inst.Thresholds
}

// rebuildReplica restarts the replica at addr with SHUTDOWN SAVE (its
// supervisor brings it back: restart_method shutdown), waits until it is
// back with a new run_id, loaded and in sync with this node, and returns
// its fresh snapshot. Loading its RDB or a full sync allocates every key
// anew, so it comes back compact.
func (e *Executor) rebuildReplica(ctx context.Context, inst handlers.Instance, addr string, before *handlers.Snapshot, o *Outcome) (*handlers.Snapshot, error) {
	start := e.now()
	r := at(inst, addr)
	rc := e.client(r)
	defer rc.Close()
	// The connection closes as the server exits: that error is success.
	if err := rc.Do(ctx, "SHUTDOWN", "SAVE").Err(); err != nil && isServerError(err) {
		return nil, fmt.Errorf("SHUTDOWN SAVE: %w", err)
	}
	if err := e.waitBack(ctx, r, before); err != nil {
		return nil, err
	}
	if err := e.waitSynced(ctx, rc); err != nil {
		return nil, err
	}
	snap, err := e.prober.Probe(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("probe after its restart: %w", err)
	}
	o.Details["replica_restarted_in"] = e.now().Sub(start).Round(time.Millisecond).String()
	return snap, nil
}

// waitSynced waits until the server on c is a replica whose link to its
// primary is up and that is not in a sync, for at most WaitBack.
func (e *Executor) waitSynced(ctx context.Context, c *redis.Client) error {
	deadline := e.now().Add(e.WaitBack)
	state := "unknown"
	for {
		text, err := c.Info(ctx, "replication").Result()
		if err == nil {
			in := handlers.ParseInfo(text)
			role, _ := in.String("role")
			link, _ := in.String("master_link_status")
			syncing, _ := in.Int("master_sync_in_progress")
			if role == "slave" && link == "up" && syncing == 0 {
				return nil
			}
			state = fmt.Sprintf("role %s, master_link_status %s, master_sync_in_progress %d", orUnknown(role, role != ""), orUnknown(link, link != ""), syncing)
		}
		if e.now().After(deadline) {
			return fmt.Errorf("not in sync after %s (%s)", e.WaitBack, state)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
}

// clusterFailBack hands the primary role back to inst's node, restarted
// and now a compact replica: CLUSTER FAILOVER on it once it is in sync.
func (e *Executor) clusterFailBack(ctx context.Context, inst handlers.Instance) error {
	c := e.client(inst)
	defer c.Close()
	if err := e.waitSynced(ctx, c); err != nil {
		return fmt.Errorf("%s: %w", inst.Addr, err)
	}
	if err := c.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
		return fmt.Errorf("CLUSTER FAILOVER on %s: %w", inst.Addr, err)
	}
	if err := e.waitRole(ctx, c, "master"); err != nil {
		return fmt.Errorf("%s after CLUSTER FAILOVER: %w", inst.Addr, err)
	}
	return nil
}

// measureServing probes the server that serves the slots now and says in
// the outcome what the shard's primary holds before and after; a failover
// that left the serving primary as big as before had no effect.
func (e *Executor) measureServing(ctx context.Context, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) {
	serving := o.Details["serving_primary"]
	after, err := e.prober.Probe(ctx, servingAfter(inst, *o))
	if err != nil {
		o.Message += "; the serving primary " + serving + " could not be probed: " + err.Error()
		return
	}
	b, bOK := before.Int("used_memory_rss")
	a, aOK := after.Int("used_memory_rss")
	if !bOK || !aOK {
		return
	}
	text := fmt.Sprintf("RSS %s → %s", handlers.HumanBytes(b), handlers.HumanBytes(a))
	if rb, ok := before.Float("mem_fragmentation_ratio"); ok {
		if ra, ok := after.Float("mem_fragmentation_ratio"); ok {
			text += fmt.Sprintf(", mem_fragmentation_ratio %s → %s", handlers.Ratio(rb), handlers.Ratio(ra))
		}
	}
	o.Details["serving_primary_memory"] = text
	o.Message += "; serving primary " + serving + ": " + text
	if b-a < noEffectBytes {
		o.NoEffect = true
		o.Message += " (nothing reclaimed)"
	}
}

// servingAfter is the server whose numbers an outcome's After shows: the
// one that serves the data once the action is done. A cluster failover
// names it in Details["serving_primary"]; every other action leaves it on
// inst.
func servingAfter(inst handlers.Instance, o Outcome) handlers.Instance {
	if addr := o.Details["serving_primary"]; addr != "" && addr != inst.Addr {
		return at(inst, addr)
	}
	return inst
}

// sentinelFailover asks the first sentinel that answers to fail over the
// master, after checking that the master Sentinel knows is this instance,
// and restarts the old master as a replica of the new one.
//
// No write a client saw acknowledged may be lost, and Sentinel does not
// pause the old master: it promotes a replica at once and turns the old
// master into a replica only about 8 s after it has seen it still report
// the master role, while clients that kept its address write to it. Those
// writes never reach the new master. So writes are paused on the old
// master first (CLIENT PAUSE WRITE) until every replica has its offset,
// and once Sentinel names the new master the bot makes the old one its
// replica itself (REPLICAOF, as Sentinel would later) before writes
// resume: paused writes then answer READONLY. The restart is the
// standalone failover's (rejoinAsReplica): REDISBOT_REPLICAOF for the
// restart command, CONFIG REWRITE of a config file, the server watched.
func (e *Executor) sentinelFailover(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) error {
	s := inst.Sentinel
	if s == nil || s.Master == "" || len(s.Addrs) == 0 {
		return errors.New("no sentinel section: failover_method sentinel needs the sentinels and the master name")
	}
	method := inst.Remediation.RestartMethod
	if err := restartable(ctx, c, method, before); err != nil {
		return err
	}
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
		return fmt.Errorf("refused: Sentinel's master %s is %s, not this instance (%s); the topology changed since it was read", s.Master, current, inst.Addr)
	}

	start := e.now()
	newPrimary, err := e.sentinelSwitch(ctx, c, sc, s.Master, current, start)
	if err != nil {
		return err
	}
	o.addPhase("SENTINEL FAILOVER", e.now().Sub(start), "client writes paused")
	o.Details["sentinel"] = sentinel
	o.Details["new_primary"] = newPrimary
	o.Details["serving_primary"] = newPrimary
	o.Details["failover_time"] = e.now().Sub(start).Round(time.Millisecond).String()
	o.Message = "failed over to " + newPrimary + " in " + o.Details["failover_time"]
	lost := false
	if method == "" {
		o.Message += "; the old primary was not restarted (no restart method), so it keeps its fragmented memory"
	} else {
		// A partial resync would keep the fragmented pages: restart the
		// old primary so it loads a fresh copy.
		if _, lost, err = e.rejoinAsReplica(ctx, c, inst, before, newPrimary, o); err != nil {
			return err
		}
	}
	e.measureServing(ctx, inst, before, o)
	if lost {
		return errors.New(o.Message)
	}
	return nil
}

// sentinelPause bounds the write pause on the old master during a
// Sentinel failover: should the bot die before it lifts the pause, the
// server takes writes again after this.
const sentinelPause = 30 * time.Second

// sentinelSwitch pauses writes on the old master (c), waits until its
// replicas have every write, has the sentinel sc fail master over, and
// once the sentinel names the new master makes the old one its replica
// before writes resume. It returns the new master's address. Until
// SENTINEL FAILOVER is sent, a failure lifts the pause and changes
// nothing.
func (e *Executor) sentinelSwitch(ctx context.Context, c *redis.Client, sc *redis.SentinelClient, master, current string, start time.Time) (string, error) {
	if err := c.Do(ctx, "CLIENT", "PAUSE", sentinelPause.Milliseconds(), "WRITE").Err(); err != nil {
		return "", fmt.Errorf("CLIENT PAUSE WRITE, to keep the old master from taking writes the new one would not have: %w; nothing was changed", err)
	}
	// Lifted on every path: once the old master follows the new one a
	// paused write gets READONLY; on a failure it is applied as before.
	defer func() { _ = c.Do(context.WithoutCancel(ctx), "CLIENT", "UNPAUSE").Err() }()
	// Sentinel promotes the replica with the best offset without waiting
	// for it to catch up: wait here, while no write comes in.
	deadline := start.Add(sentinelPause / 2)
	err := e.waitFor(ctx, start, "caught up by every replica", e.pollAfter, func() (bool, string, error) {
		text, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error(), nil
		}
		state := replicasBehind(handlers.ParseInfo(text))
		if state != "" && e.now().After(deadline) {
			return false, "", fmt.Errorf("the replicas did not catch up within %s (%s): SENTINEL FAILOVER was not sent, nothing was changed", sentinelPause/2, state)
		}
		return state == "", state, nil
	})
	if err != nil {
		return "", err
	}
	if err := sc.Failover(ctx, master).Err(); err != nil {
		return "", fmt.Errorf("SENTINEL FAILOVER %s: %w; nothing was changed", master, err)
	}
	// Writes resume when the pause ends: the new master must be known
	// and the old one following it before then.
	deadline = start.Add(sentinelPause - time.Second)
	var newPrimary string
	err = e.waitFor(ctx, start, "failed over by Sentinel", e.pollAfter, func() (bool, string, error) {
		addr, err := topology.MasterAddr(ctx, sc, master)
		switch {
		case err == nil && addr != current:
			newPrimary = addr
			return true, "", nil
		case e.now().After(deadline):
			return false, "", fmt.Errorf("SENTINEL FAILOVER %s sent, but the sentinel still reports %s as master after %s: writes on it resume; ask Sentinel (SENTINEL MASTER %s) whether it is still failing over", master, current, sentinelPause-time.Second, master)
		case err != nil:
			return false, err.Error(), nil
		}
		return false, "master still " + current, nil
	})
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(newPrimary)
	if err != nil {
		return "", fmt.Errorf("new master %q: %w", newPrimary, err)
	}
	if err := c.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		return "", fmt.Errorf("Sentinel failed over to %s, but REPLICAOF on the old master failed (%w): it takes writes again until Sentinel makes it a replica, and they are lost", newPrimary, err)
	}
	return newPrimary, nil
}

// replicasBehind says which online replicas in INFO replication of a
// primary have not acknowledged its offset, or that none is online; ""
// when every online replica has.
func replicasBehind(in handlers.Info) string {
	offset, _ := in.Int("master_repl_offset")
	n, _ := in.Int("connected_slaves")
	var behind []string
	online := 0
	for i := range n {
		sub := in.Sub("slave" + strconv.FormatInt(i, 10))
		if sub["state"] != "online" {
			continue
		}
		online++
		if got, err := strconv.ParseInt(sub["offset"], 10, 64); err != nil || got < offset {
			behind = append(behind, fmt.Sprintf("%s at %s of %d", net.JoinHostPort(sub["ip"], sub["port"]), sub["offset"], offset))
		}
	}
	if online == 0 {
		return "no replica online"
	}
	return strings.Join(behind, ", ")
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
// group, named as topology.Expand names it: a probe of it must share no
// pooled connection or in-flight probe with inst's, which the prober keys
// by name.
func at(inst handlers.Instance, addr string) handlers.Instance {
	if addr == inst.Addr {
		return inst
	}
	group := inst.Origin
	if group == "" {
		group = inst.Name
	}
	host, port, err := net.SplitHostPort(addr)
	if n, perr := strconv.Atoi(port); err == nil && perr == nil {
		inst.Name = topology.NodeName(group, host, n)
	} else {
		inst.Name = group + "." + addr
	}
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
