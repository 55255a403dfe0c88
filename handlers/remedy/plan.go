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
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
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
	// Alternatives are offered when the action cannot help (for example a
	// build without active defrag: failover or restart instead).
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

// FactDefragSupported is "no" once the server refused to enable defrag.
const FactDefragSupported = "defrag_supported"

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
				return Request{}, bad(fmt.Sprintf("unknown policy %q; valid: %s", handlers.Truncate(rest[1], 32), strings.Join(Policies, ", ")))
			}
			r.Params["setting"], r.Params["value"] = "maxmemory-policy", p
		default:
			return Request{}, bad(fmt.Sprintf("cannot set %q: only maxmemory and policy", handlers.Truncate(rest[0], 32)))
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
		return 0, fmt.Errorf("invalid size %q (examples: 4gb, 512mb)", handlers.Truncate(s, 32))
	}
	return n * mult, nil
}

// MakePlan builds the plan for a request from a fresh snapshot. It never
// does I/O, so the approval-time re-check is the same code.
func MakePlan(r Request, inst handlers.Instance, s *handlers.Snapshot, facts Facts, pol Policy) Plan {
	p := Plan{Instance: inst.Name, Action: r.Action, Params: r.Params}
	check := func(name string, ok bool, blocking bool, detail string) {
		p.Checks = append(p.Checks, Check{Name: name, OK: ok, Blocking: blocking, Detail: detail})
	}
	rss, _ := s.Int("used_memory_rss")
	used, _ := s.Int("used_memory")
	ratio, _ := s.Float("mem_fragmentation_ratio")
	jemalloc, _ := s.Jemalloc()
	allocName, _ := s.Info.String("mem_allocator")
	loading, _ := s.Int("loading")
	check("not loading", loading == 0, true, "the server must not be loading its dataset")
	p.Evidence = []handlers.Fact{
		{Name: "used_memory", Value: used, Text: handlers.HumanBytes(used)},
		{Name: "used_memory_rss", Value: rss, Text: handlers.HumanBytes(rss)},
		{Name: "mem_fragmentation_ratio", Value: ratio, Text: handlers.Ratio(ratio)},
	}
	forking := func() bool {
		a, _ := s.Int("rdb_bgsave_in_progress")
		b, _ := s.Int("aof_rewrite_in_progress")
		return a == 1 || b == 1
	}

	switch r.Action {
	case handlers.ActionMemoryPurge:
		p.Commands = []string{"MEMORY PURGE"}
		p.Risks = []string{"Blocks the main thread while jemalloc returns free pages: usually milliseconds, longer on instances with many GB of dirty pages."}
		check("allocator is jemalloc", jemalloc, true, fmt.Sprintf("mem_allocator is %s; MEMORY PURGE is a no-op without jemalloc", allocName))
		allocRSS, _ := s.Int("allocator_rss_bytes")
		p.Evidence = append(p.Evidence, handlers.Fact{Name: "allocator_rss_bytes", Value: allocRSS, Text: handlers.HumanBytes(allocRSS)})
		check("there is memory to return", ratio >= inst.Thresholds.FragWarning || allocRSS >= 10<<20, true,
			fmt.Sprintf("fragmentation %s and %s of free allocator pages", handlers.Ratio(ratio), handlers.HumanBytes(allocRSS)))

	case handlers.ActionDefragOn:
		for _, kv := range pol.DefragParams {
			p.Commands = append(p.Commands, "CONFIG SET "+kv[0]+" "+kv[1])
		}
		p.Commands = append(p.Commands, "CONFIG SET activedefrag yes")
		p.Risks = []string{
			"Defrag runs on the main thread in small steps: up to active-defrag-cycle-max (25%) of a CPU, and added latency for every command while it runs.",
			"Never during high traffic, cluster slot migrations or memory pressure.",
			"The bot watches it and turns it off when the target is reached, after the maximum duration, or when latency rises.",
		}
		p.Alternatives = []handlers.Action{handlers.ActionFailover, handlers.ActionRestart}
		check("allocator is jemalloc", jemalloc, true, "active defrag needs jemalloc; mem_allocator is "+allocName)
		check("this build supports active defrag", facts[FactDefragSupported] != "no", true,
			"the server said it was built without defrag support (distribution packages link the system jemalloc); use failover or restart instead")
		ops, _ := s.Int("instantaneous_ops_per_sec")
		check("traffic below the defrag ceiling", ops <= pol.DefragMaxOps, true, fmt.Sprintf("%d ops/sec (ceiling %d)", ops, pol.DefragMaxOps))
		pressure := memoryPressure(s, inst)
		check("not at critical memory pressure", pressure < 0.95, true, fmt.Sprintf("%s of the nearest limit in use", handlers.Percent(pressure)))
		allocFrag, _ := s.Float("allocator_frag_ratio")
		allocBytes, _ := s.Int("allocator_frag_bytes")
		p.Evidence = append(p.Evidence, handlers.Fact{Name: "allocator_frag_ratio", Value: allocFrag, Text: handlers.Ratio(allocFrag)},
			handlers.Fact{Name: "allocator_frag_bytes", Value: allocBytes, Text: handlers.HumanBytes(allocBytes)})
		check("allocator fragmentation to act on", allocFrag >= inst.Thresholds.AllocFragWarning, true,
			fmt.Sprintf("allocator_frag_ratio %s (defrag acts above %s)", handlers.Ratio(allocFrag), handlers.Ratio(inst.Thresholds.AllocFragWarning)))
		defect := ""
		for _, d := range handlers.DefragDefects {
			if s.ServerName() == "redis" && s.VersionAtLeast(d.From[0], d.From[1], d.From[2]) && !s.VersionAtLeast(d.Before[0], d.Before[1], d.Before[2]) {
				defect = d.Note + " (" + d.Ref + ")"
			}
		}
		check("version without known defrag defects", defect == "", true, "redis "+s.Version()+": "+orNone(defect))
		cluster, _ := s.Int("cluster_enabled")
		check("not a cluster node", cluster == 0, false, "slot migrations cannot be seen from INFO; check CLUSTER NODES for migrating/importing slots before approving")

	case handlers.ActionDefragOff:
		p.Commands = []string{"CONFIG SET activedefrag no"}
		p.Risks = []string{"None: fragmentation stays where it is."}

	case handlers.ActionConfigSet:
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
			check("above used memory", n > used, true, fmt.Sprintf("%s requested, %s in use", handlers.HumanBytes(n), handlers.HumanBytes(used)))
			if limit := inst.MemoryLimit; limit > 0 {
				need := float64(n) * max(1, ratio)
				check("fits under memory_limit with fragmentation", need <= float64(limit), true,
					fmt.Sprintf("%s x fragmentation %s = %s against a %s limit", handlers.HumanBytes(n), handlers.Ratio(max(1, ratio)), handlers.HumanBytes(int64(need)), handlers.HumanBytes(limit)))
			}
		case "maxmemory-policy":
			p.Risks = []string{"Changes which keys are evicted at the limit, or that writes fail there (noeviction)."}
			if strings.HasPrefix(value, "volatile-") {
				keys, expires := s.Keys()
				share := 1.0
				if keys > 0 {
					share = float64(expires) / float64(keys)
				}
				check("enough keys have a TTL for "+value, share >= inst.Thresholds.VolatileMinTTLShare, false,
					fmt.Sprintf("%d of %d keys have a TTL: a volatile policy cannot evict the others", expires, keys))
			}
		}
		revert := "was " + old + "; a Revert button will offer it back"
		if !known {
			revert = "CONFIG GET did not answer; a revert will need the value by hand"
		}
		check("old value known (for revert)", known, false, revert)

	case handlers.ActionBGSave:
		p.Commands = []string{"BGSAVE"}
		p.Risks = []string{"Forks the process: copy-on-write can add up to the dataset's size in RSS under heavy writes; the fork itself blocks for latest_fork_usec."}
		check("no fork in progress", !forking(), true, "a BGSAVE or AOF rewrite is already running")
		if limit := inst.MemoryLimit; limit > 0 {
			check("fork headroom under memory_limit", float64(rss)+float64(used)*inst.Thresholds.CowMargin <= float64(limit), false,
				fmt.Sprintf("RSS %s + %s copy-on-write margin against %s", handlers.HumanBytes(rss), handlers.Percent(inst.Thresholds.CowMargin), handlers.HumanBytes(limit)))
		}

	case handlers.ActionRestart:
		method := inst.Remediation.RestartMethod
		switch method {
		case "command":
			p.Commands = []string{strings.Join(inst.Remediation.RestartCommand, " ")}
		case "shutdown":
			p.Commands = []string{"SHUTDOWN SAVE"}
		}
		p.Risks = []string{"The instance is down until it has reloaded its dataset.", "Writes since the last successful save are lost unless persistence covers them."}
		check("a restart method is configured", method != "", true, "set remediation.restart_method for this instance")
		persistent, pknown := s.Persistence()
		replicas, _ := s.Int("connected_slaves")
		check("replicas will not sync an empty dataset", !(pknown && !persistent && replicas > 0 && !s.IsReplica()), true,
			"a primary without persistence would restart empty and its replicas would copy the empty dataset")
		status, _ := s.Info.String("rdb_last_bgsave_status")
		changes, _ := s.Int("rdb_changes_since_last_save")
		check("recent successful save", !persistent || (status == "ok" && changes < 10000), false,
			fmt.Sprintf("rdb_last_bgsave_status %s, %d changes since: BGSAVE first to lose less", orUnknown(status, status != ""), changes))
		check("no fork in progress", !forking(), true, "wait for the running BGSAVE or AOF rewrite")

	case handlers.ActionFailover:
		if m := inst.Remediation.FailoverMethod; m == FailoverCluster || m == FailoverSentinel {
			planGroupFailover(&p, inst, s, facts, check)
			break
		}
		p.Commands = []string{"FAILOVER TIMEOUT 10000"}
		if inst.Remediation.RestartMethod != "" {
			p.Commands = append(p.Commands, "then restart the old primary ("+inst.Remediation.RestartMethod+") so it resyncs into fresh memory")
		}
		p.Risks = []string{"Writes pause for up to the timeout while the replica catches up; clients must follow the new primary (Sentinel, cluster or DNS).",
			"A partial resync would keep the old primary's fragmented memory: it is restarted to force a full one."}
		check("failover is configured", inst.Remediation.FailoverMethod == "failover", true, "set remediation.failover_method: failover for this instance")
		check("the instance is a primary", s.Role() == "master", true, "role is "+s.Role())
		check("Redis 6.2 or newer (FAILOVER command)", s.VersionAtLeast(6, 2, 0), true, "version "+s.Version())
		cluster, _ := s.Int("cluster_enabled")
		check("not cluster mode", cluster == 0, true, "use CLUSTER FAILOVER on the replica instead")
		check("a replica is online and in sync", replicaInSync(s), true, "no replica with state=online and lag <= 1s")
	}
	return p
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

// replicaInSync reads "slave0:ip=...,state=online,offset=...,lag=0".
func replicaInSync(s *handlers.Snapshot) bool {
	n, _ := s.Int("connected_slaves")
	for i := range n {
		sub := s.Info.Sub("slave" + strconv.FormatInt(i, 10))
		lag, err := strconv.Atoi(sub["lag"])
		if sub["state"] == "online" && err == nil && lag <= 1 {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "none known"
	}
	return s
}

func orUnknown(s string, ok bool) string {
	if !ok || s == "" {
		return "unknown"
	}
	return s
}
