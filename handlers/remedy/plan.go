// Package remedy plans and carries out the approval-gated remediations:
// MEMORY PURGE, active defrag on and off, CONFIG SET of maxmemory and its
// policy, BGSAVE, restart and failover. A plan is a pure function of a
// request and a fresh snapshot: it lists the exact commands, the evidence
// that motivates them, the risks, and the preconditions it checked. The
// same function runs again at approval time, so a plan whose preconditions
// no longer hold (fragmentation already back to normal, a BGSAVE running)
// is refused instead of executed.
package remedy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redact"
)

// Request is what an operator asked for.
type Request struct {
	Instance string
	Action   handlers.Action
	// Params: "setting" and "value" for config-set.
	Params map[string]string
}

// Check is one precondition and whether it holds.
type Check struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail is what the check found: its pass text when it holds, its fail
	// text when it does not, so a passing check never reads like a failure.
	Detail string `json:"detail"`
	// Hint says what to do about a failed check; empty when it holds.
	Hint string `json:"hint,omitempty"`
	// Blocking checks stop the action; the others are warnings shown to
	// the approver.
	Blocking bool `json:"blocking"`
}

// Plan is what will run, and why.
type Plan struct {
	Instance string            `json:"instance"`
	Action   handlers.Action   `json:"action"`
	Params   map[string]string `json:"params,omitempty"`
	Commands []string          `json:"commands"`
	// Evidence is a list (not handlers.Evidence's object form) so a plan
	// stored with its approval reads back with its display text.
	Evidence []handlers.Fact `json:"evidence"`
	Risks    []string        `json:"risks"`
	Checks   []Check         `json:"checks"`
	// Alternatives are offered when the action is refused, and only those
	// whose own plan would run on this instance now (a configured method,
	// its preconditions holding): for example failover when the build
	// cannot defrag and a replica is in sync.
	Alternatives []handlers.Action `json:"alternatives,omitempty"`
}

// Blocked returns the failed blocking checks.
func (p Plan) Blocked() []Check {
	var out []Check
	for _, c := range p.Checks {
		if c.Blocking && !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Facts are what the bot learned about an instance earlier.
type Facts map[string]string

// Policy holds the limits from config.
type Policy struct {
	// DefragMaxOps: defrag-on is refused above this instantaneous_ops_per_sec.
	DefragMaxOps int64
	// DefragParams are set before activedefrag yes.
	DefragParams [][2]string
}

// DefaultPolicy is the conservative defrag profile of the runbooks.
func DefaultPolicy() Policy {
	return Policy{
		DefragMaxOps: 50000,
		DefragParams: [][2]string{
			{"active-defrag-ignore-bytes", "100mb"},
			{"active-defrag-threshold-lower", "10"},
			{"active-defrag-threshold-upper", "100"},
			{"active-defrag-cycle-min", "1"},
			{"active-defrag-cycle-max", "25"},
		},
	}
}

// Policies lists valid maxmemory-policy values.
var Policies = []string{"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}

// ParseRequest validates the words after a remediation verb, as typed in
// chat: "purge cache-1", "defrag cache-1 on", "set cache-1 maxmemory 4gb",
// "set cache-1 policy allkeys-lru", "bgsave cache-1", "restart cache-1",
// "failover cache-1". The instance name is resolved by the caller.
func ParseRequest(verb string, args []string) (Request, error) {
	usage := map[string]string{
		"purge": "purge <instance>", "defrag": "defrag <instance> on|off", "bgsave": "bgsave <instance>",
		"restart": "restart <instance>", "failover": "failover <instance>",
		"set": "set <instance> maxmemory <size> | set <instance> policy <policy>",
	}[verb]
	bad := func(msg string) error {
		return &handlers.UsageError{Verb: verb, Msg: fmt.Sprintf("%s (usage: %s)", msg, usage)}
	}
	if len(args) == 0 {
		return Request{}, bad(verb + " needs an instance name")
	}
	r := Request{Instance: args[0], Params: map[string]string{}}
	rest := args[1:]
	switch verb {
	case "purge", "bgsave", "restart", "failover":
		if len(rest) != 0 {
			return Request{}, bad(verb + " takes only an instance name")
		}
		r.Action = map[string]handlers.Action{"purge": handlers.ActionMemoryPurge, "bgsave": handlers.ActionBGSave,
			"restart": handlers.ActionRestart, "failover": handlers.ActionFailover}[verb]
	case "defrag":
		if len(rest) != 1 || (rest[0] != "on" && rest[0] != "off") {
			return Request{}, bad("defrag takes on or off")
		}
		r.Action = handlers.ActionDefragOn
		if rest[0] == "off" {
			r.Action = handlers.ActionDefragOff
		}
	case "set":
		if len(rest) != 2 {
			return Request{}, bad("set takes a setting and a value")
		}
		r.Action = handlers.ActionConfigSet
		switch strings.ToLower(rest[0]) {
		case "maxmemory":
			n, err := ParseSize(rest[1])
			if err != nil {
				return Request{}, bad(err.Error())
			}
			r.Params["setting"], r.Params["value"] = "maxmemory", strconv.FormatInt(n, 10)
		case "policy", "maxmemory-policy":
			p := strings.ToLower(rest[1])
			if !slices.Contains(Policies, p) {
				return Request{}, bad(fmt.Sprintf("unknown policy %q; valid: %s", redact.Truncate(rest[1], 32), strings.Join(Policies, ", ")))
			}
			r.Params["setting"], r.Params["value"] = "maxmemory-policy", p
		default:
			return Request{}, bad(fmt.Sprintf("cannot set %q: only maxmemory and policy", redact.Truncate(rest[0], 32)))
		}
	default:
		return Request{}, bad("unknown remediation " + verb)
	}
	return r, nil
}

// ParseSize reads a size the way redis.conf does: 4gb, 512mb, 100000;
// k/m/g are powers of 1000, kb/mb/gb powers of 1024.
func ParseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}, {"g", 1e9}, {"m", 1e6}, {"k", 1e3}, {"b", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("invalid size %q (examples: 4gb, 512mb)", redact.Truncate(s, 32))
	}
	return n * mult, nil
}

// checkFunc records one precondition: pass is what the plan says when ok
// holds, fail (and hint, what to do about it) when it does not.
type checkFunc func(name string, ok, blocking bool, pass, fail, hint string)

// MakePlan builds the plan for a request from a fresh snapshot. It never
// does I/O, so the approval-time re-check is the same code.
func MakePlan(r Request, inst handlers.Instance, s *handlers.Snapshot, facts Facts, pol Policy) Plan {
	p := Plan{Instance: inst.Name, Action: r.Action, Params: r.Params}
	check := func(name string, ok, blocking bool, pass, fail, hint string) {
		c := Check{Name: name, OK: ok, Blocking: blocking, Detail: pass}
		if !ok {
			c.Detail, c.Hint = fail, hint
		}
		p.Checks = append(p.Checks, c)
	}
	rss, _ := s.Int("used_memory_rss")
	used, _ := s.Int("used_memory")
	ratio, _ := s.Float("mem_fragmentation_ratio")
	jemalloc, _ := s.Jemalloc()
	allocName, _ := s.Info.String("mem_allocator")
	loading, _ := s.Int("loading")
	check("not loading", loading == 0, true, "the dataset is loaded", "the server is loading its dataset (loading:1)", "wait until it has loaded")
	p.Evidence = []handlers.Fact{
		{Name: "used_memory", Value: used, Text: handlers.HumanBytes(used)},
		{Name: "used_memory_rss", Value: rss, Text: handlers.HumanBytes(rss)},
		{Name: "mem_fragmentation_ratio", Value: ratio, Text: handlers.Ratio(ratio)},
	}
	checkJemalloc := func(hint string) {
		check("allocator is jemalloc", jemalloc, true, "mem_allocator is "+orUnknown(allocName, allocName != ""),
			"mem_allocator is "+orUnknown(allocName, allocName != ""), hint)
	}

	switch r.Action {
	case handlers.ActionMemoryPurge:
		p.Commands = []string{"MEMORY PURGE"}
		p.Risks = []string{"Blocks the main thread while jemalloc returns free pages: usually milliseconds, longer on instances with many GB of dirty pages."}
		checkJemalloc("MEMORY PURGE does nothing without jemalloc")
		allocRSS, _ := s.Int("allocator_rss_bytes")
		p.Evidence = append(p.Evidence, handlers.Fact{Name: "allocator_rss_bytes", Value: allocRSS, Text: handlers.HumanBytes(allocRSS)})
		found := fmt.Sprintf("fragmentation %s and %s of free allocator pages", handlers.Ratio(ratio), handlers.HumanBytes(allocRSS))
		check("there is memory to return", ratio >= inst.Thresholds.FragWarning || allocRSS >= 10<<20, true, found, found,
			fmt.Sprintf("nothing to give back: the ratio is under %s and under 10 MiB of pages are free", handlers.Ratio(inst.Thresholds.FragWarning)))

	case handlers.ActionDefragOn:
		planDefragOn(&p, inst, s, facts, pol, check, checkJemalloc)

	case handlers.ActionDefragOff:
		p.Commands = []string{"CONFIG SET activedefrag no"}
		p.Risks = []string{"None: fragmentation stays where it is."}

	case handlers.ActionConfigSet:
		planConfigSet(&p, r, inst, s, used, ratio, check)

	case handlers.ActionBGSave:
		p.Commands = []string{"BGSAVE"}
		p.Risks = []string{"Forks the process: copy-on-write can add up to the dataset's size in RSS under heavy writes; the fork itself blocks for latest_fork_usec."}
		checkNoFork(s, check, "wait for it to finish")
		if limit := inst.MemoryLimit; limit > 0 {
			found := fmt.Sprintf("RSS %s + %s copy-on-write margin against %s", handlers.HumanBytes(rss), handlers.Percent(inst.Thresholds.CowMargin), handlers.HumanBytes(limit))
			check("fork headroom under memory_limit", float64(rss)+float64(used)*inst.Thresholds.CowMargin <= float64(limit), false, found, found,
				"under heavy writes copy-on-write may push RSS over the limit; save at a quieter time")
		}

	case handlers.ActionRestart:
		planRestart(&p, inst, s, check)

	case handlers.ActionFailover:
		if m := inst.Remediation.FailoverMethod; m == FailoverCluster || m == FailoverSentinel {
			planGroupFailover(&p, inst, s, facts, check)
			break
		}
		planFailover(&p, inst, s, check)
	}
	if len(p.Blocked()) > 0 {
		p.Alternatives = alternatives(r.Action, inst, s, facts, pol)
	}
	return p
}

// alternatives are the actions that would reclaim the same memory and whose
// own plans would run on this instance now.
func alternatives(a handlers.Action, inst handlers.Instance, s *handlers.Snapshot, facts Facts, pol Policy) []handlers.Action {
	if a != handlers.ActionDefragOn {
		return nil
	}
	var out []handlers.Action
	for _, alt := range []handlers.Action{handlers.ActionFailover, handlers.ActionRestart} {
		if len(MakePlan(Request{Instance: inst.Name, Action: alt}, inst, s, facts, pol).Blocked()) == 0 {
			out = append(out, alt)
		}
	}
	return out
}

func planDefragOn(p *Plan, inst handlers.Instance, s *handlers.Snapshot, facts Facts, pol Policy, check checkFunc, checkJemalloc func(string)) {
	for _, kv := range pol.DefragParams {
		p.Commands = append(p.Commands, "CONFIG SET "+kv[0]+" "+kv[1])
	}
	p.Commands = append(p.Commands, "CONFIG SET activedefrag yes")
	p.Risks = []string{
		"Defrag runs on the main thread in small steps: up to active-defrag-cycle-max of a CPU, and added latency for every command while it runs.",
		"Never during high traffic, cluster slot migrations or memory pressure.",
		"The bot watches it and turns it off when the target is reached, when it stops making progress, when RSS grows while it runs, after the maximum duration, or when latency rises.",
	}
	checkJemalloc("active defrag needs jemalloc; failover or restart rebuild the memory instead")
	switch facts[handlers.FactDefragSupported] {
	case "no":
		check("this build supports active defrag", false, true, "",
			"the server refused CONFIG SET activedefrag yes before: it was built without defrag support (distribution packages link the system jemalloc)",
			"rebuild the memory with failover or restart instead")
	case "yes":
		check("this build supports active defrag", true, true, "the server accepted activedefrag yes before", "", "")
	default:
		check("this build supports active defrag", true, true,
			"not refused so far; a build without support refuses the first CONFIG SET activedefrag yes and nothing else changes", "", "")
	}
	ops, _ := s.Int("instantaneous_ops_per_sec")
	found := fmt.Sprintf("%d ops/sec (ceiling %d)", ops, pol.DefragMaxOps)
	check("traffic below the defrag ceiling", ops <= pol.DefragMaxOps, true, found, found, "request it again at a quieter time")
	pressure := memoryPressure(s, inst)
	found = fmt.Sprintf("%s of the nearest limit in use", handlers.Percent(pressure))
	check("not at critical memory pressure", pressure < 0.95, true, found, found,
		"defrag needs headroom to move allocations: purge or raise the limit first")
	allocFrag, _ := s.Float("allocator_frag_ratio")
	allocBytes, _ := s.Int("allocator_frag_bytes")
	p.Evidence = append(p.Evidence, handlers.Fact{Name: "allocator_frag_ratio", Value: allocFrag, Text: handlers.Ratio(allocFrag)},
		handlers.Fact{Name: "allocator_frag_bytes", Value: allocBytes, Text: handlers.HumanBytes(allocBytes)})
	found = fmt.Sprintf("allocator_frag_ratio %s (defrag acts above %s)", handlers.Ratio(allocFrag), handlers.Ratio(inst.Thresholds.AllocFragWarning))
	check("allocator fragmentation to act on", allocFrag >= inst.Thresholds.AllocFragWarning, true, found, found,
		"the excess is not in partly used pages, which is all defrag moves: see the frag report (purge, or RSS outside the allocator)")
	if ignore, ok := pol.DefragIgnoreBytes(); ok {
		found = fmt.Sprintf("%s fragmented, active-defrag-ignore-bytes %s", handlers.HumanBytes(allocBytes), handlers.HumanBytes(ignore))
		check("more fragmented than active-defrag-ignore-bytes", allocBytes >= ignore, false, found, found,
			"Redis does not defrag below that amount, so the watch will stop at once; lower approvals.defrag.active-defrag-ignore-bytes to let it act")
	}
	checkDefects(s, check)
	cluster, _ := s.Int("cluster_enabled")
	check("not a cluster node", cluster == 0, false, "cluster_enabled:0",
		"cluster mode: slot migrations cannot be seen from INFO", "check CLUSTER NODES for migrating or importing slots before approving")
}

// checkDefects turns the defect table's matches into two checks: crashes
// block, the rest warn (the watch guards against them).
func checkDefects(s *handlers.Snapshot, check checkFunc) {
	server := s.ServerName() + " " + orUnknown(s.Version(), s.Version() != "")
	var blocks, warns []string
	for _, m := range handlers.MatchDefragDefects(s) {
		text := m.Defect.Note + " (" + m.Defect.Ref + ")"
		if m.Seen != "" && m.Effect != m.Defect.Effect {
			text += "; it would block, but INFO shows " + m.Seen
		}
		if m.Effect == handlers.DefectBlocks {
			blocks = append(blocks, text)
		} else {
			warns = append(warns, text)
		}
	}
	check("no known active-defrag crash in this version", len(blocks) == 0, true, server+": none known",
		server+": "+strings.Join(blocks, "; "), "upgrade to a fixed release first, or rebuild the memory with failover or restart")
	check("no other known active-defrag defect", len(warns) == 0, false, server+": none known",
		server+": "+strings.Join(warns, "; "),
		"defrag may still help: the watch turns it off when it stops making progress or RSS grows while it runs; if RSS grows, plan a restart or failover")
}

func planConfigSet(p *Plan, r Request, inst handlers.Instance, s *handlers.Snapshot, used int64, ratio float64, check checkFunc) {
	setting, value := r.Params["setting"], r.Params["value"]
	old, known := s.ConfigValue(setting)
	p.Params = map[string]string{"setting": setting, "value": value, "old": orUnknown(old, known)}
	p.Commands = []string{"CONFIG SET " + setting + " " + value}
	if inst.Remediation.PersistConfig {
		p.Commands = append(p.Commands, "CONFIG REWRITE")
	}
	change := orUnknown(old, known) + " → " + value
	p.Evidence = append(p.Evidence, handlers.Fact{Name: setting, Value: change, Text: change})
	switch setting {
	case "maxmemory":
		n, _ := strconv.ParseInt(value, 10, 64)
		p.Risks = []string{"Below used memory, the server evicts (or, with noeviction, rejects writes) at once."}
		found := fmt.Sprintf("%s requested, %s in use", handlers.HumanBytes(n), handlers.HumanBytes(used))
		check("above used memory", n > used, true, found, found, "below used memory the server evicts, or rejects writes, at once: ask for more")
		if limit := inst.MemoryLimit; limit > 0 {
			need := float64(n) * max(1, ratio)
			found := fmt.Sprintf("%s x fragmentation %s = %s against a %s limit", handlers.HumanBytes(n), handlers.Ratio(max(1, ratio)), handlers.HumanBytes(int64(need)), handlers.HumanBytes(limit))
			check("fits under memory_limit with fragmentation", need <= float64(limit), true, found, found,
				"RSS would pass the memory limit at that size: ask for less, or reclaim fragmentation first")
		}
	case "maxmemory-policy":
		p.Risks = []string{"Changes which keys are evicted at the limit, or that writes fail there (noeviction)."}
		if strings.HasPrefix(value, "volatile-") {
			keys, expires := s.Keys()
			share := 1.0
			if keys > 0 {
				share = float64(expires) / float64(keys)
			}
			found := fmt.Sprintf("%d of %d keys have a TTL", expires, keys)
			check("enough keys have a TTL for "+value, share >= inst.Thresholds.VolatileMinTTLShare, false, found, found,
				"a volatile policy cannot evict the keys without a TTL: consider an allkeys policy")
		}
	}
	check("old value known (for revert)", known, false, "was "+old+"; a Revert button will offer it back",
		"CONFIG GET did not answer", "a revert will need the old value by hand")
}

func planRestart(p *Plan, inst handlers.Instance, s *handlers.Snapshot, check checkFunc) {
	method := inst.Remediation.RestartMethod
	switch method {
	case "command":
		p.Commands = []string{strings.Join(inst.Remediation.RestartCommand, " ")}
	case "shutdown":
		p.Commands = []string{"SHUTDOWN SAVE"}
	}
	p.Risks = []string{"The instance is down until it has reloaded its dataset.", "Writes since the last successful save are lost unless persistence covers them."}
	check("a restart method is configured", method != "", true, "remediation.restart_method: "+method,
		"no restart method for this instance", "set remediation.restart_method (command or shutdown)")
	persistent, pknown := s.Persistence()
	replicas, _ := s.Int("connected_slaves")
	emptySync := pknown && !persistent && replicas > 0 && !s.IsReplica()
	pass := "persistence is on, or no replica syncs from it"
	switch {
	case s.IsReplica():
		pass = "a replica: it resyncs from its primary"
	case replicas == 0:
		pass = "no replica syncs from it"
	}
	check("replicas will not sync an empty dataset", !emptySync, true, pass,
		fmt.Sprintf("a primary without persistence with %d replica(s)", replicas),
		"it would restart empty and its replicas would copy the empty dataset: enable persistence or fail over first")
	status, _ := s.Info.String("rdb_last_bgsave_status")
	changes, _ := s.Int("rdb_changes_since_last_save")
	switch {
	case !pknown:
		check("recent successful save", false, false, "", "persistence unknown (CONFIG GET save was not answered)",
			"check that the data can be reloaded before approving")
	case !persistent:
		check("recent successful save", false, false, "", "persistence is off: the instance comes back empty",
			"only restart a cache whose data can be lost, or fail over instead")
	default:
		found := fmt.Sprintf("rdb_last_bgsave_status %s, %d changes since", orUnknown(status, status != ""), changes)
		check("recent successful save", status == "ok" && changes < 10000, false, found, found, "run BGSAVE first to lose less")
	}
	checkNoFork(s, check, "wait for the running BGSAVE or AOF rewrite")
}

func planFailover(p *Plan, inst handlers.Instance, s *handlers.Snapshot, check checkFunc) {
	p.Commands = []string{"FAILOVER TIMEOUT 10000: this primary pauses client writes until the replica has every write, then hands it the role"}
	p.Risks = []string{"Client writes pause until the replica has caught up (FAILOVER gives up after 10 s, and writes resume here); clients that follow the primary (Sentinel, cluster or ROLE after READONLY) move to the new one, clients pinned to this address get READONLY" + pinnedUntil(inst) + "."}
	planRestartAsReplica(p, inst, s, "the new primary", check)
	if inst.Remediation.Failback && inst.Remediation.RestartMethod != "" {
		p.Commands = append(p.Commands, "then, once it has caught up, FAILOVER TO this server on the new primary: it serves again from its fresh memory (writes pause again until it has every write)")
		if file, _ := s.Info.String("config_file"); file != "" {
			p.Commands = append(p.Commands, "then CONFIG REWRITE again, so that its config file names no primary")
		}
	}
	method := inst.Remediation.FailoverMethod
	check("failover is configured", method == "failover", true, "remediation.failover_method: failover",
		"no failover method for this instance", "set remediation.failover_method: failover")
	role := orUnknown(s.Role(), s.Role() != "")
	check("the instance is a primary", s.Role() == "master", true, "role master", "role is "+role, "fail over from its primary")
	check("Redis 6.2 or newer (FAILOVER command)", s.VersionAtLeast(6, 2, 0), true, "version "+s.Version(), "version "+s.Version(),
		"FAILOVER needs Redis 6.2: use Sentinel or promote a replica by hand")
	cluster, _ := s.Int("cluster_enabled")
	check("not cluster mode", cluster == 0, true, "cluster_enabled:0", "cluster mode", "use remediation.failover_method: cluster-failover")
	checkReplicaInSync(s, check)
}

// pinnedUntil says how long clients pinned to the old primary's address
// get READONLY: until the fail-back, or for good.
func pinnedUntil(inst handlers.Instance) string {
	if inst.Remediation.Failback && inst.Remediation.RestartMethod != "" {
		return " until the fail-back"
	}
	return " from then on"
}

// planRestartAsReplica adds what the executor's restart-as-replica step
// (Executor.rejoinAsReplica) does to the old primary after a standalone or
// Sentinel failover, and checks that it can come back as a replica of
// newPrimary: restart_method shutdown needs a config file for CONFIG
// REWRITE to put the replicaof line in, or its supervisor starts an empty
// primary whose resync discards the writes it took.
func planRestartAsReplica(p *Plan, inst handlers.Instance, s *handlers.Snapshot, newPrimary string, check checkFunc) {
	method := inst.Remediation.RestartMethod
	file, _ := s.Info.String("config_file")
	const name = "the old primary comes back as a replica"
	switch method {
	case "":
		p.Risks = append(p.Risks, "No restart method: the old primary is not restarted and keeps its fragmented memory.")
		return
	case "command":
		line := "then run restart_command with " + ReplicaOfEnv + "=\"<host> <port>\" of " + newPrimary + ", for redis-server --replicaof, so the old primary comes back as its replica"
		if file != "" {
			line = "then CONFIG REWRITE (its config file " + file + " then names " + newPrimary + " as its primary) and run restart_command with " + ReplicaOfEnv + "=\"<host> <port>\" of " + newPrimary + ", for redis-server --replicaof"
		}
		p.Commands = append(p.Commands, line)
		check(name, true, false, "restart_command gets "+ReplicaOfEnv+"; should the server come back a primary anyway, it is sent REPLICAOF at once and the outcome fails with the changes it applied", "", "")
	case "shutdown":
		p.Commands = append(p.Commands, "then CONFIG REWRITE (its config file then names "+newPrimary+" as its primary) and SHUTDOWN SAVE: its supervisor starts it from that file as a replica")
		check(name, file != "", true, "config file "+file+": CONFIG REWRITE writes its replicaof line before SHUTDOWN SAVE",
			"no config file (config_file is empty): its supervisor would start it as an empty primary, whose resync discards the writes it took",
			"start the server from a config file, or use restart_method: command with a command that passes "+ReplicaOfEnv+" to redis-server")
	}
	p.Commands = append(p.Commands, "wait until it is back, synced and caught up with "+newPrimary+" (every phase timed in the outcome)")
	p.Risks = append(p.Risks, "The old primary is restarted, not just resynced: a partial resync would keep its fragmented memory. Clients pinned to it get errors while it restarts.")
}

// checkReplicaInSync is the precondition every failover method shares.
func checkReplicaInSync(s *handlers.Snapshot, check checkFunc) {
	replica, ok := replicaInSync(s)
	check("a replica is online and in sync", ok, true, replica, "no replica with state=online and lag <= 1s",
		"wait until a replica has caught up")
}

func checkNoFork(s *handlers.Snapshot, check checkFunc, hint string) {
	a, _ := s.Int("rdb_bgsave_in_progress")
	b, _ := s.Int("aof_rewrite_in_progress")
	what := "a BGSAVE is running"
	if b == 1 {
		what = "an AOF rewrite is running"
	}
	check("no fork in progress", a != 1 && b != 1, true, "no BGSAVE or AOF rewrite running", what, hint)
}

// DefragIgnoreBytes is the active-defrag-ignore-bytes defrag-on sets, when
// the policy sets it.
func (pol Policy) DefragIgnoreBytes() (int64, bool) {
	for _, kv := range pol.DefragParams {
		if kv[0] == "active-defrag-ignore-bytes" {
			n, err := ParseSize(kv[1])
			return n, err == nil
		}
	}
	return 0, false
}

// DefragIgnoreBytes is the active-defrag-ignore-bytes a defrag-on plan
// sets, read back from its commands: what the server was told, even for a
// plan stored before the policy changed.
func (p Plan) DefragIgnoreBytes() (int64, bool) {
	for _, c := range p.Commands {
		f := strings.Fields(c)
		if len(f) == 4 && strings.EqualFold(f[0], "CONFIG") && f[2] == "active-defrag-ignore-bytes" {
			n, err := ParseSize(f[3])
			return n, err == nil
		}
	}
	return 0, false
}

// memoryPressure is the highest of usage against maxmemory and RSS against
// the memory limit.
func memoryPressure(s *handlers.Snapshot, inst handlers.Instance) float64 {
	p := 0.0
	if u, ok := handlers.MaxmemoryUsage(s); ok {
		p = u.Share
	}
	if rss, ok := s.Int("used_memory_rss"); ok && inst.MemoryLimit > 0 {
		p = max(p, float64(rss)/float64(inst.MemoryLimit))
	}
	return p
}

// replicaInSync reads "slave0:ip=...,state=online,offset=...,lag=0" and
// names the first replica in sync.
func replicaInSync(s *handlers.Snapshot) (string, bool) {
	n, _ := s.Int("connected_slaves")
	for i := range n {
		sub := s.Info.Sub("slave" + strconv.FormatInt(i, 10))
		lag, err := strconv.Atoi(sub["lag"])
		if sub["state"] == "online" && err == nil && lag <= 1 {
			return fmt.Sprintf("%s:%s online, lag %ds", sub["ip"], sub["port"], lag), true
		}
	}
	return "", false
}

func orUnknown(s string, ok bool) string {
	if !ok || s == "" {
		return "unknown"
	}
	return s
}
