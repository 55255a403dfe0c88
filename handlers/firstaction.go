package handlers

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FirstAction is the one thing to do first for an instance: the most useful
// action that is safe now, chosen from a report's findings, or nothing. It
// is the line a reader under pressure reads before any finding.
type FirstAction struct {
	// ID names the action: "raise-maxmemory", "memory-purge", "nothing", ...
	ID string `json:"id"`
	// Text is one imperative sentence with the numbers it rests on.
	Text string `json:"text"`
	// Finding is the finding the action answers; empty for "nothing".
	Finding string `json:"finding,omitempty"`
	// Remedy is the approval-gated remediation that carries the action
	// out, if there is one, and Command what to type in Slack for it.
	Remedy  Action `json:"remedy,omitempty"`
	Command string `json:"command,omitempty"`
	// Set is a config-set's setting and value, as a button requests it.
	Set Setting `json:"set,omitzero"`
	// GainBytes is the memory the action frees or adds, when the numbers
	// tell; 0 when unknown or none.
	GainBytes int64 `json:"gain_bytes,omitempty"`
}

// Nothing reports whether there is nothing to do.
func (a FirstAction) Nothing() bool { return a.ID == nothingID }

const nothingID = "nothing"

// urgency orders findings of one severity by what hurts first: a dead or
// unreadable instance, then failing writes, then the OOM killer, then
// limits about to fail writes, then what wastes memory. Ids not listed
// come after, in catalogue order.
var urgency = []string{
	"unreachable",
	"oom-rejecting",
	"rss-near-limit",
	"frag-swap",
	"slow-server",
	"maxmemory-near",
	"volatile-no-ttl",
	"noeviction-trap",
	"oom-forecast",
	"restarted",
	"client-buffers",
	"replica-buffers",
	"maxmemory-headroom",
	"maxmemory-unset",
	"cow-headroom",
	"replica-over-maxmemory",
	"lazyfree-backlog",
	"frag-post-peak",
	"frag-rss-overhead",
	"frag-allocator",
	"defrag-disabled",
	"frag-high",
	"defrag-ineffective",
	"defrag-version-risk",
	"frag-rising",
}

func urgencyOf(id string) int {
	if i := slices.Index(urgency, id); i >= 0 {
		return i
	}
	for i, s := range Catalogue {
		if s.ID == id {
			return len(urgency) + i
		}
	}
	return len(urgency) + len(Catalogue)
}

// ChooseFirstAction picks the first action for a report: the most severe
// finding of warning or worse (the most urgent among equals) decides what
// to do; info findings never call for action.
func ChooseFirstAction(r *Report) FirstAction {
	if r == nil {
		return FirstAction{ID: nothingID, Text: "Nothing to do now."}
	}
	var first *Finding
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Severity < SeverityWarning {
			continue
		}
		if first == nil || f.Severity > first.Severity || (f.Severity == first.Severity && urgencyOf(f.ID) < urgencyOf(first.ID)) {
			first = f
		}
	}
	if first == nil {
		text := "Nothing to do now: no finding needs action."
		if n := len(r.Findings); n > 0 {
			text = fmt.Sprintf("Nothing to do now: %d %s for information only.", n, plural(n, "finding is", "findings are"))
		}
		return FirstAction{ID: nothingID, Text: text}
	}
	a := actionFor(r, *first)
	a.Finding = first.ID
	if a.Remedy != "" && !offered(r, *first, a) {
		// The advice stands, but the bot cannot carry it out here (no
		// method configured, a build that cannot, nothing to gain): no
		// command that would only be refused.
		a.Remedy, a.Command, a.Set = "", "", Setting{}
	}
	return a
}

// offered reports whether the options of f include the first action's
// remediation (for a config-set, the same setting).
func offered(r *Report, f Finding, a FirstAction) bool {
	for _, o := range ActionOptions(r, f) {
		if o.Action == a.Remedy && (a.Remedy != ActionConfigSet || o.Set.Name == a.Set.Name) {
			return true
		}
	}
	return false
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// actionFor is the action for one finding, from the report's numbers.
func actionFor(r *Report, f Finding) FirstAction {
	n := numbers{r}
	if f.ID == "unreachable" {
		return probeAction(r)
	}
	if r.Snapshot == nil {
		return readRunbook(f)
	}
	switch f.ID {
	case "oom-rejecting", "maxmemory-near", "noeviction-trap", "oom-forecast":
		return makeRoom(r, f)
	case "volatile-no-ttl":
		if f.Severity == SeverityCritical {
			if a, ok := raiseMaxmemory(r, f); ok {
				return a
			}
		}
		keys, expires := n.keys()
		return FirstAction{ID: "find-keys-without-ttl",
			Text: fmt.Sprintf("Find the keys without a TTL (`redisbot keys %s`) and give the cache keys one: the volatile policy can evict only %d of %d keys.", r.Instance, expires, keys)}
	case "rss-near-limit":
		return relieveRSS(r, f)
	case "frag-swap":
		return FirstAction{ID: "check-swap", Text: "Check the host for swapping (VmSwap in /proc/<pid>/status, vmstat si/so): RSS below used memory means pages are on disk."}
	case "slow-server":
		return FirstAction{ID: "find-slow-cause",
			Text: "Find what holds the server up, from a shell near it: LATENCY LATEST and SLOWLOG GET 10 for a slow command, INFO persistence for a fork, the host's swap (vmstat si/so); if redis-cli --latency is fast there, the network between the bot and the server is slow."}
	case "restarted":
		return FirstAction{ID: "check-oom-kill", Text: "Look for an OOM kill in the host's kernel log (dmesg -T | grep -i -E 'killed process|out of memory') and in the container's events."}
	case "client-buffers":
		b, _ := n.int("mem_clients_normal")
		return FirstAction{ID: "find-buffer-clients", GainBytes: max(b, 0),
			Text: fmt.Sprintf("Find the clients holding %s of buffers (CLIENT LIST: omem, qbuf) and fix or disconnect the slow or greedy one.", HumanBytes(b))}
	case "replica-buffers":
		b, _ := n.int("mem_clients_slaves")
		return FirstAction{ID: "check-replica-link", GainBytes: max(b, 0),
			Text: fmt.Sprintf("Check the replica that is not keeping up (INFO replication: lag, offset): its output buffer holds %s.", HumanBytes(b))}
	case "maxmemory-headroom", "cow-headroom":
		if a, ok := lowerMaxmemory(r, f); ok {
			return a
		}
	case "maxmemory-unset":
		return setMaxmemory(r, f)
	case "replica-over-maxmemory":
		u, _ := MaxmemoryUsage(r.Snapshot)
		return FirstAction{ID: "match-replica-maxmemory", Remedy: ActionConfigSet,
			Text: fmt.Sprintf("Before any failover, give this replica its primary's maxmemory (it holds %s, above its %s) or an evicting policy.", HumanBytes(u.Counted), HumanBytes(u.Maxmemory))}
	case "frag-post-peak", "frag-rss-overhead":
		return purge(r)
	case "frag-allocator", "defrag-disabled":
		return defragOn(r, f)
	case "frag-high":
		held, _ := n.int("allocator_rss_bytes")
		frag, _ := n.int("allocator_frag_bytes")
		if frag > held {
			return defragOn(r, f)
		}
		return purge(r)
	case "big-keys":
		key, _ := f.Evidence.Get("biggest_key")
		size, _ := f.Evidence.Get("biggest_key_bytes")
		return FirstAction{ID: "review-big-keys",
			Text: fmt.Sprintf("Ask the owners of %s (%s) whether it must be that big: split it or give it a TTL, and remove big keys with UNLINK, not DEL.", key.Text, size.Text)}
	case "keys-no-ttl":
		a := FirstAction{ID: "set-ttls", Text: "Give the cache keys a TTL (SET ... EX, EXPIRE): the volatile policy cannot evict keys without one."}
		if p, ok := f.Evidence.Get("top_no_ttl_prefix"); ok {
			b, _ := f.Evidence.Get("top_no_ttl_prefix_bytes")
			a.Text = fmt.Sprintf("Give the cache keys a TTL (SET ... EX, EXPIRE), starting with %s (%s without one): the volatile policy cannot evict keys without one.", p.Text, b.Text)
		}
		return a
	case "defrag-ineffective", "defrag-version-risk":
		if v, ok := n.config("activedefrag"); ok && v == "yes" {
			return FirstAction{ID: "defrag-off", Remedy: ActionDefragOff, Command: "/redis defrag " + r.Instance + " off",
				Text: "Turn active defrag off: it costs CPU here without a safe gain."}
		}
	}
	// A finding without its own play: the first of its remediations that
	// is safe to run at once, else its runbook.
	for _, act := range f.Actions {
		switch act {
		case ActionMemoryPurge:
			return purge(r)
		case ActionDefragOn:
			return defragOn(r, f)
		}
	}
	return readRunbook(f)
}

func readRunbook(f Finding) FirstAction {
	title := f.Title
	if title != "" {
		title = strings.ToLower(title[:1]) + title[1:]
	}
	return FirstAction{ID: "read-runbook", Text: fmt.Sprintf("Follow the %s runbook (%s).", f.ID, title)}
}

// numbers reads a report's snapshot; every read says whether it was there.
type numbers struct{ r *Report }

// hintInfo and hintConfig are the INFO fields (besides the keyspace lines)
// and the settings the first action and the action options read: through
// numbers, MaxmemoryUsage (maxmemory, used_memory,
// mem_not_counted_for_evict), Policy, Jemalloc and IsReplica. They are all
// a compact report keeps of its snapshot (Report.Compact), so a hint that
// reads a field missing here reads it as unknown in the fleet view; the
// tests compare every hint over a compact report with the same over the
// whole one.
var (
	hintInfo = []string{
		"maxmemory", "maxmemory_policy", "used_memory", "mem_not_counted_for_evict",
		"used_memory_rss", "used_memory_overhead", "mem_clients_normal", "mem_clients_slaves",
		"allocator_rss_bytes", "allocator_frag_bytes", "connected_slaves", "mem_allocator", "role",
	}
	hintConfig = []string{"maxmemory", "maxmemory-policy", "activedefrag", "active-defrag-ignore-bytes"}
)

func (n numbers) int(name string) (int64, bool) {
	if n.r.Snapshot == nil {
		return 0, false
	}
	return n.r.Snapshot.Int(name)
}

func (n numbers) config(name string) (string, bool) {
	if n.r.Snapshot == nil {
		return "", false
	}
	return n.r.Snapshot.ConfigValue(name)
}

func (n numbers) keys() (int64, int64) {
	if n.r.Snapshot == nil {
		return 0, 0
	}
	return n.r.Snapshot.Keys()
}

// probeAction: nothing is known about memory until the probe works.
func probeAction(r *Report) FirstAction {
	class := ""
	if r.Error != nil {
		class = string(r.Error.Class)
	}
	switch ErrorClass(class) {
	case ClassLoading:
		return FirstAction{ID: "wait-loading", Text: "Wait for the dataset to finish loading, then diagnose again."}
	case ClassAuth:
		return FirstAction{ID: "fix-credentials", Text: "Fix this instance's username and password in the bot's config."}
	case ClassNoPerm:
		return FirstAction{ID: "grant-acl", Text: "Grant the bot's ACL user the rules in docs/redis-acl.md."}
	case ClassBusy:
		return FirstAction{ID: "check-busy-script", Text: "Find the script or function blocking the server; SCRIPT KILL or FUNCTION KILL stops one that has not written."}
	case ClassRefused:
		return FirstAction{ID: "check-process", Text: "Check whether redis-server is running (connection refused), and look for an OOM kill in the kernel log (dmesg -T | grep -i oom)."}
	case ClassTLS:
		return FirstAction{ID: "check-tls", Text: "Check TLS on that port before the server: redis-cli --tls PING (with the CA the bot uses) tells a plain port from a certificate the bot rejects; compare the instance's tls settings (ca_file, server_name) with the server's tls-port and certificate."}
	case ClassTimeout:
		return FirstAction{ID: "check-blocked", Text: "Check whether the server is blocked or overloaded (no answer within the probe timeout): SLOWLOG GET and LATENCY LATEST from a shell near it."}
	case "internal":
		return FirstAction{ID: "report-bug", Text: "Diagnose again; the bot failed reading this instance, and its log has the stack for a bug report."}
	}
	return FirstAction{ID: "check-reachability", Text: "Check that the server is up and reachable from the bot."}
}

// makeRoom answers a limit that fails writes or is about to: client
// buffers eviction cannot free first, then a higher maxmemory if the
// memory limit holds one, then the data itself.
func makeRoom(r *Report, f Finding) FirstAction {
	n := numbers{r}
	u, limited := MaxmemoryUsage(r.Snapshot)
	if !limited {
		return FirstAction{ID: "read-runbook", Text: fmt.Sprintf("Follow the %s runbook: maxmemory is not known.", f.ID)}
	}
	if b, ok := n.int("mem_clients_normal"); ok && b >= u.Maxmemory/4 {
		return FirstAction{ID: "find-buffer-clients", GainBytes: b,
			Text: fmt.Sprintf("Find the clients holding %s of buffers (CLIENT LIST: omem, qbuf), %s of maxmemory, and fix or disconnect them: eviction cannot free client memory.", HumanBytes(b), Percent(float64(b)/float64(u.Maxmemory)))}
	}
	if a, ok := raiseMaxmemory(r, f); ok {
		return a
	}
	policy, _ := r.Snapshot.Policy()
	if keys, _ := n.keys(); f.ID == "oom-rejecting" && strings.HasPrefix(policy, "allkeys-") && keys > 0 {
		overhead, _ := n.int("used_memory_overhead")
		return FirstAction{ID: "find-overhead",
			Text: fmt.Sprintf("Find the memory eviction cannot free (MEMORY STATS): overhead is %s of the %s in use; client buffers, scripts and the replication backlog are not keys.", HumanBytes(overhead), HumanBytes(u.Counted))}
	}
	if over := u.Counted - u.Maxmemory; over > 0 {
		return FirstAction{ID: "free-memory", GainBytes: 0,
			Text: fmt.Sprintf("Free at least %s: delete or expire keys you can lose (`redisbot keys %s` shows where the memory is); writes fail until usage is under maxmemory %s.", HumanBytes(over), r.Instance, HumanBytes(u.Maxmemory))}
	}
	return FirstAction{ID: "free-memory",
		Text: fmt.Sprintf("Free memory or plan more: %s left under maxmemory %s; `redisbot keys %s` shows where the memory is.", HumanBytes(u.Maxmemory-u.Counted), HumanBytes(u.Maxmemory), r.Instance)}
}

// raiseMaxmemory proposes the largest maxmemory the memory limit holds
// (the safe_maxmemory the rules computed), when that is a real step up
// and above what the instance uses.
func raiseMaxmemory(r *Report, f Finding) (FirstAction, bool) {
	u, limited := MaxmemoryUsage(r.Snapshot)
	room, ok := evidenceBytes(f, "safe_maxmemory")
	if !ok {
		room, ok = reportBytes(r, "safe_maxmemory")
	}
	if !limited || !ok || room <= u.Counted || room < u.Maxmemory+u.Maxmemory/20 {
		return FirstAction{}, false
	}
	return FirstAction{ID: "raise-maxmemory", Remedy: ActionConfigSet, GainBytes: room - u.Maxmemory,
		Command: fmt.Sprintf("/redis set %s maxmemory %dmb", r.Instance, room>>20), Set: maxmemorySetting(room),
		Text: fmt.Sprintf("Raise maxmemory from %s to %s (+%s): the %s memory_limit holds it with fragmentation and fork headroom.",
			HumanBytes(u.Maxmemory), HumanBytes(room), HumanBytes(room-u.Maxmemory), HumanBytes(r.MemoryLimit))}, true
}

// lowerMaxmemory proposes the largest maxmemory the memory limit holds,
// when that is below the current one and still above what is in use (below
// it, lowering would evict or fail writes at once).
func lowerMaxmemory(r *Report, f Finding) (FirstAction, bool) {
	u, limited := MaxmemoryUsage(r.Snapshot)
	room, ok := evidenceBytes(f, "safe_maxmemory")
	used, _ := numbers{r}.int("used_memory")
	if !limited || !ok || room >= u.Maxmemory || room <= used {
		return FirstAction{}, false
	}
	return FirstAction{ID: "lower-maxmemory", Remedy: ActionConfigSet,
		Command: fmt.Sprintf("/redis set %s maxmemory %dmb", r.Instance, room>>20), Set: maxmemorySetting(room),
		Text: fmt.Sprintf("Lower maxmemory from %s to %s so that RSS at full use fits under the %s memory_limit (%s in use now).",
			HumanBytes(u.Maxmemory), HumanBytes(room), HumanBytes(r.MemoryLimit), HumanBytes(used))}, true
}

// setMaxmemory gives an unlimited primary a limit: the largest the memory
// limit holds when it is configured and above what is in use.
func setMaxmemory(r *Report, f Finding) FirstAction {
	used, _ := numbers{r}.int("used_memory")
	room, ok := evidenceBytes(f, "safe_maxmemory")
	if ok && room > used {
		return FirstAction{ID: "set-maxmemory", Remedy: ActionConfigSet,
			Command: fmt.Sprintf("/redis set %s maxmemory %dmb", r.Instance, room>>20), Set: maxmemorySetting(room),
			Text: fmt.Sprintf("Set maxmemory to %s (%s in use) so Redis evicts or refuses writes before the kernel's OOM killer ends it at the %s memory_limit.",
				HumanBytes(room), HumanBytes(used), HumanBytes(r.MemoryLimit))}
	}
	return FirstAction{ID: "set-maxmemory", Remedy: ActionConfigSet,
		Text: fmt.Sprintf("Set maxmemory below the memory the host or container gives Redis (%s in use now; configure memory_limit for a figure).", HumanBytes(used))}
}

// relieveRSS answers RSS near the memory limit: give back pages the
// allocator holds, else put a limit under the process, else move load off
// it.
func relieveRSS(r *Report, f Finding) FirstAction {
	n := numbers{r}
	// Worth a purge when it gives back a real share of the limit.
	if je, _ := r.Snapshot.Jemalloc(); je {
		if held, ok := n.int("allocator_rss_bytes"); ok && held >= max(16<<20, r.MemoryLimit/20) {
			return purge(r)
		}
	}
	for _, other := range r.Findings {
		switch other.ID {
		case "maxmemory-unset":
			return setMaxmemory(r, other)
		case "maxmemory-headroom":
			if a, ok := lowerMaxmemory(r, other); ok {
				return a
			}
		}
	}
	rss, _ := n.int("used_memory_rss")
	return FirstAction{ID: "failover", Remedy: ActionFailover, Command: "/redis failover " + r.Instance,
		Text: fmt.Sprintf("Plan a failover to a replica, then a restart of this one: RSS %s is close to the %s memory_limit and nothing in place gives memory back.", HumanBytes(rss), HumanBytes(r.MemoryLimit))}
}

// purge runs MEMORY PURGE: jemalloc returns the dirty pages it holds
// beyond its active ones (allocator_rss_bytes), which is the gain.
func purge(r *Report) FirstAction {
	held, ok := numbers{r}.int("allocator_rss_bytes")
	a := FirstAction{ID: "memory-purge", Remedy: ActionMemoryPurge, Command: "/redis purge " + r.Instance,
		Text: "Run MEMORY PURGE to return free pages the allocator holds to the OS."}
	if ok && held > 0 {
		a.GainBytes = held
		a.Text = fmt.Sprintf("Run MEMORY PURGE to return up to %s of free pages the allocator holds (allocator_rss_bytes) to the OS.", HumanBytes(held))
	}
	return a
}

// defragOn turns active defrag on: it moves data out of partly used pages,
// which frees about allocator_frag_bytes. Below active-defrag-ignore-bytes
// defrag never starts; then only rebuilding the memory returns the holes.
func defragOn(r *Report, f Finding) FirstAction {
	n := numbers{r}
	frag, ok := n.int("allocator_frag_bytes")
	ignore := int64(100 << 20) // Redis' default
	if v, ok := n.config("active-defrag-ignore-bytes"); ok {
		if b, err := strconv.ParseInt(v, 10, 64); err == nil && b >= 0 {
			ignore = b
		}
	}
	if ok && frag > 0 && frag < ignore {
		a := rebuild(r, fmt.Sprintf("the %s in holes is below active-defrag-ignore-bytes (%s), so active defrag would not start", HumanBytes(frag), HumanBytes(ignore)), frag)
		if slices.Contains(f.Actions, a.Remedy) {
			return a
		}
		return readRunbook(f)
	}
	a := FirstAction{ID: "defrag-on", Remedy: ActionDefragOn, Command: "/redis defrag " + r.Instance + " on",
		Text: "Turn on active defrag (conservative limits, watched) to compact partly used pages in place."}
	if ok && frag > 0 {
		a.GainBytes = frag
		a.Text = fmt.Sprintf("Turn on active defrag (conservative limits, watched) to reclaim up to %s in partly used pages (allocator_frag_bytes).", HumanBytes(frag))
	}
	return a
}

// rebuild proposes rebuilding the memory: a failover when the instance has
// a replica to take over, else a restart at a quiet time.
func rebuild(r *Report, why string, gain int64) FirstAction {
	if replicas, _ := (numbers{r}).int("connected_slaves"); replicas > 0 {
		return FirstAction{ID: "failover", Remedy: ActionFailover, Command: "/redis failover " + r.Instance, GainBytes: gain,
			Text: fmt.Sprintf("Plan a failover to a replica, whose memory is compact, then restart this one: %s.", why)}
	}
	return FirstAction{ID: "restart", Remedy: ActionRestart, Command: "/redis restart " + r.Instance, GainBytes: gain,
		Text: fmt.Sprintf("Plan a restart at a quiet time (it reloads compactly; without persistence the data is lost): %s.", why)}
}

// reportBytes reads a byte count from the first finding that has it.
func reportBytes(r *Report, name string) (int64, bool) {
	for _, f := range r.Findings {
		if n, ok := evidenceBytes(f, name); ok {
			return n, true
		}
	}
	return 0, false
}

// evidenceBytes reads a byte count a rule put in a finding's evidence.
func evidenceBytes(f Finding, name string) (int64, bool) {
	fact, ok := f.Evidence.Get(name)
	if !ok {
		return 0, false
	}
	n, ok := fact.Value.(int64)
	return n, ok
}

// Setting is a config-set's parameter: which setting, to what value (bytes
// for maxmemory).
type Setting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// maxmemorySetting is maxmemory at size, rounded down to whole MiB as the
// typed command is.
func maxmemorySetting(size int64) Setting {
	return Setting{Name: "maxmemory", Value: strconv.FormatInt(size>>20<<20, 10)}
}

// FactDefragSupported is what a defrag-on taught the bot about a server's
// build: "no" once it refused CONFIG SET activedefrag yes (a distribution
// build linked against the system jemalloc), "yes" once it accepted it.
const FactDefragSupported = "defrag_supported"

// Capabilities are what the bot may do to an instance beyond reading it:
// the methods its config gives it and what earlier remediations learned.
// They never hold a credential, so a report can carry them.
type Capabilities struct {
	RestartMethod  string
	FailoverMethod string
	// Learned are facts remembered from earlier remediations
	// (FactDefragSupported).
	Learned map[string]string
}

// CapabilitiesOf reads an instance's capabilities from its config and what
// the bot learned about it.
func CapabilitiesOf(inst Instance, learned map[string]string) Capabilities {
	return Capabilities{RestartMethod: inst.Remediation.RestartMethod, FailoverMethod: inst.Remediation.FailoverMethod, Learned: learned}
}

// ActionOption is a remediation a button may request for a finding: one
// this instance can carry out and that is not known to be futile, with the
// memory it is expected to give and, for a config-set, the value the
// finding implies.
type ActionOption struct {
	Action Action
	// Set is a config-set's setting and value; zero for the others.
	Set Setting
	// Label names the action with its expected gain or value: "Purge:
	// about 120.0 MiB back", "Set maxmemory 163.0 MiB".
	Label string
	// GainBytes is the memory it is expected to free or add; 0 unknown.
	GainBytes int64
}

// minPurgeGain is the least MEMORY PURGE must be expected to return to be
// offered: below it a purge measured after its settle reads "no effect"
// (the allocator's own metadata and pages it reuses at once account for a
// few MiB of allocator_rss_bytes).
const minPurgeGain = 10 << 20

// ActionOptions lists, in the finding's catalogue order, the remediations
// worth a button for f on this report's instance. The finding proposes
// them; the instance disposes: failover and restart need their configured
// method, defrag needs jemalloc, a build that has not refused it and holes
// above active-defrag-ignore-bytes, purge needs pages to give back, and a
// config-set needs a value the numbers imply. A failed probe offers
// nothing: nothing is known to act on.
func ActionOptions(r *Report, f Finding) []ActionOption {
	if r == nil || r.Snapshot == nil || r.Failed() {
		return nil
	}
	var out []ActionOption
	for _, a := range f.Actions {
		switch a {
		case ActionConfigSet:
			out = append(out, configSetOptions(r, f)...)
		default:
			if o, ok := option(r, a); ok {
				out = append(out, o)
			}
		}
	}
	return out
}

// option is the button of a parameterless remediation, when it can work.
func option(r *Report, a Action) (ActionOption, bool) {
	n := numbers{r}
	jemalloc, _ := r.Snapshot.Jemalloc()
	defragOn, _ := n.config("activedefrag")
	switch a {
	case ActionMemoryPurge:
		gain := purgeGain(r)
		if !jemalloc || gain < minPurgeGain {
			return ActionOption{}, false
		}
		return ActionOption{Action: a, GainBytes: gain, Label: "Purge: about " + HumanBytes(gain) + " back"}, true
	case ActionDefragOn:
		frag, ok := n.int("allocator_frag_bytes")
		if !jemalloc || !ok || defragOn == "yes" || r.Can.Learned[FactDefragSupported] == "no" || frag < defragIgnoreBytes(r) {
			return ActionOption{}, false
		}
		return ActionOption{Action: a, GainBytes: frag, Label: "Defrag: up to " + HumanBytes(frag) + " back"}, true
	case ActionDefragOff:
		if defragOn != "yes" {
			return ActionOption{}, false
		}
		return ActionOption{Action: a, Label: "Turn defrag off"}, true
	case ActionBGSave:
		return ActionOption{Action: a, Label: "BGSAVE now"}, true
	case ActionFailover:
		replicas, _ := n.int("connected_slaves")
		if r.Can.FailoverMethod == "" || r.Snapshot.IsReplica() || replicas == 0 {
			return ActionOption{}, false
		}
		return rebuildOption(r, a, "Failover"), true
	case ActionRestart:
		if r.Can.RestartMethod == "" {
			return ActionOption{}, false
		}
		return rebuildOption(r, a, "Restart"), true
	}
	return ActionOption{}, false
}

// rebuildOption labels a failover or restart with what rebuilding the
// memory gives back: the RSS held beyond the data.
func rebuildOption(r *Report, a Action, verb string) ActionOption {
	rss, _ := numbers{r}.int("used_memory_rss")
	used, _ := numbers{r}.int("used_memory")
	if excess := rss - used; excess >= minPurgeGain {
		return ActionOption{Action: a, GainBytes: excess, Label: verb + ": about " + HumanBytes(excess) + " back"}
	}
	return ActionOption{Action: a, Label: verb}
}

// purgeGain is what MEMORY PURGE can return: the purgeable_bytes the
// fragmentation rules computed (retained and muzzy pages), else the free
// pages jemalloc holds (allocator_rss_bytes), an upper bound.
func purgeGain(r *Report) int64 {
	if n, ok := reportBytes(r, "purgeable_bytes"); ok {
		return n
	}
	held, _ := numbers{r}.int("allocator_rss_bytes")
	return max(held, 0)
}

// defragIgnoreBytes is the server's active-defrag-ignore-bytes, below which
// active defrag never starts; Redis' default when CONFIG GET did not say.
func defragIgnoreBytes(r *Report) int64 {
	ignore := int64(100 << 20)
	if v, ok := (numbers{r}).config("active-defrag-ignore-bytes"); ok {
		if b, err := strconv.ParseInt(v, 10, 64); err == nil && b >= 0 {
			ignore = b
		}
	}
	return ignore
}

// configSetOptions are the settings the finding's numbers imply: a
// maxmemory the memory limit holds, and an evicting policy where the
// finding says the current one cannot evict.
func configSetOptions(r *Report, f Finding) []ActionOption {
	var out []ActionOption
	if a, ok := maxmemoryChange(r, f); ok {
		size, _ := strconv.ParseInt(a.Set.Value, 10, 64)
		out = append(out, ActionOption{Action: ActionConfigSet, Set: a.Set, GainBytes: a.GainBytes,
			Label: "Set maxmemory " + HumanBytes(size)})
	}
	if p, ok := policyChange(r, f); ok {
		out = append(out, ActionOption{Action: ActionConfigSet, Set: Setting{Name: "maxmemory-policy", Value: p},
			Label: "Set policy " + p})
	}
	return out
}

// maxmemoryChange is the maxmemory a finding implies, as its first action
// computes it.
func maxmemoryChange(r *Report, f Finding) (FirstAction, bool) {
	switch f.ID {
	case "oom-rejecting", "maxmemory-near", "noeviction-trap", "oom-forecast", "volatile-no-ttl":
		return raiseMaxmemory(r, f)
	case "maxmemory-headroom", "cow-headroom":
		return lowerMaxmemory(r, f)
	case "maxmemory-unset":
		a := setMaxmemory(r, f)
		return a, a.Set.Name != ""
	}
	return FirstAction{}, false
}

// policyChange is the evicting policy a finding implies: noeviction near
// the limit fails writes where allkeys-lru would evict, and a volatile
// policy without TTLs evicts nothing where its allkeys twin would.
func policyChange(r *Report, f Finding) (string, bool) {
	policy, ok := r.Snapshot.Policy()
	if !ok {
		return "", false
	}
	switch {
	case f.ID == "noeviction-trap" && policy == "noeviction":
		return "allkeys-lru", true
	case f.ID == "volatile-no-ttl" && strings.HasPrefix(policy, "volatile-"):
		if policy == "volatile-lfu" {
			return "allkeys-lfu", true
		}
		return "allkeys-lru", true
	}
	return "", false
}
