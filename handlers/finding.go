package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Finding is one conclusion a rule drew from a snapshot. ID is a public
// contract: tests, runbooks, Slack messages and JSON output all use it.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	// Summary is one sentence with the key numbers, for a one-line view.
	Summary  string   `json:"summary"`
	Evidence Evidence `json:"evidence"`
	// Runbook names the runbook to show; it equals ID.
	Runbook string `json:"runbook"`
	// Actions are the approval-gated remediations that apply.
	Actions []Action `json:"actions"`
}

// Fact is one number or setting that supports a finding, with its display
// form ("1.91", "55.9 MiB").
type Fact struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	Text  string `json:"text"`
}

// Evidence is an ordered list of facts; it marshals to a JSON object in
// that order so the most telling number comes first.
type Evidence []Fact

// MarshalJSON writes {"name": value, ...} in order.
func (e Evidence) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range e {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("evidence %s: %w", f.Name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Get returns the fact with the given name.
func (e Evidence) Get(name string) (Fact, bool) {
	for _, f := range e {
		if f.Name == name {
			return f, true
		}
	}
	return Fact{}, false
}

// Action names an approval-gated remediation.
type Action string

// The remediations that findings may offer.
const (
	ActionMemoryPurge Action = "memory-purge"
	ActionDefragOn    Action = "defrag-on"
	ActionDefragOff   Action = "defrag-off"
	ActionConfigSet   Action = "config-set"
	ActionBGSave      Action = "bgsave"
	ActionRestart     Action = "restart"
	ActionFailover    Action = "failover"
)

// Actions are every remediation, for what must consider each (the
// permission check of check-config).
var Actions = []Action{ActionMemoryPurge, ActionDefragOn, ActionDefragOff, ActionConfigSet, ActionBGSave, ActionRestart, ActionFailover}

// Area groups findings by the verb that shows them.
type Area string

// Areas: frag shows the fragmentation tree, oom the memory-limit rules.
const (
	AreaFrag   Area = "frag"
	AreaOOM    Area = "oom"
	AreaDoctor Area = "doctor"
	AreaProbe  Area = "probe"
	// AreaKeys findings come from a key scan (/redis keys), never from a
	// snapshot: sweeps do not produce them.
	AreaKeys Area = "keys"
)

// Spec describes a finding id: its title, area and remedies. The catalogue is
// the single list of ids; the runbook test checks both ways against it.
type Spec struct {
	ID      string
	Title   string
	Area    Area
	Actions []Action
}

// Catalogue lists every finding id the rules can produce, in the order the
// fragmentation decision tree and the OOM runbook walk them.
var Catalogue = []Spec{
	{"frag-noise", "Fragmentation ratio is noise on a small instance", AreaFrag, nil},
	{"frag-fork-transient", "Fork in progress: fragmentation ratio is transient", AreaFrag, nil},
	{"frag-swap", "Swapping suspected: RSS below used memory", AreaFrag, []Action{ActionConfigSet, ActionRestart}},
	{"frag-high", "High memory fragmentation", AreaFrag, []Action{ActionMemoryPurge, ActionDefragOn, ActionFailover, ActionRestart}},
	{"frag-post-peak", "Freed pages held after a memory peak", AreaFrag, []Action{ActionMemoryPurge}},
	{"frag-allocator", "Allocator fragmentation", AreaFrag, []Action{ActionDefragOn, ActionFailover, ActionRestart}},
	{"frag-rss-overhead", "RSS overhead outside the allocator's data", AreaFrag, []Action{ActionMemoryPurge, ActionRestart}},
	{"allocator-not-jemalloc", "Allocator is not jemalloc", AreaFrag, []Action{ActionFailover, ActionRestart}},
	{"defrag-disabled", "Active defrag is off while allocator fragmentation is high", AreaFrag, []Action{ActionDefragOn}},
	{"defrag-ineffective", "Active defrag is running but not effective", AreaFrag, []Action{ActionDefragOff, ActionFailover}},
	{"defrag-version-risk", "Server version has a known active-defrag defect", AreaFrag, []Action{ActionDefragOff}},
	{"frag-rising", "Fragmentation ratio is rising", AreaFrag, []Action{ActionDefragOn, ActionFailover, ActionRestart}},
	{"oom-rejecting", "Writes rejected with OOM errors", AreaOOM, []Action{ActionConfigSet}},
	{"maxmemory-unset", "maxmemory is not set on a primary", AreaOOM, []Action{ActionConfigSet}},
	{"maxmemory-near", "Memory usage near maxmemory", AreaOOM, []Action{ActionConfigSet}},
	{"noeviction-trap", "noeviction policy close to the limit", AreaOOM, []Action{ActionConfigSet}},
	{"volatile-no-ttl", "volatile-* policy but few keys have a TTL", AreaOOM, []Action{ActionConfigSet}},
	{"evicting", "Keys are being evicted", AreaOOM, nil},
	{"rss-near-limit", "RSS near the memory limit (OOM-killer risk)", AreaOOM, []Action{ActionMemoryPurge, ActionFailover, ActionRestart}},
	{"maxmemory-headroom", "maxmemory leaves too little headroom under the memory limit", AreaOOM, []Action{ActionConfigSet}},
	{"fork-slow", "Fork is slow", AreaOOM, nil},
	{"cow-headroom", "Copy-on-write headroom for persistence is short", AreaOOM, []Action{ActionConfigSet}},
	{"client-buffers", "Client output buffers are big", AreaOOM, nil},
	{"replica-buffers", "Replica output buffers are big", AreaOOM, nil},
	{"many-scripts", "Many cached Lua scripts", AreaOOM, nil},
	{"lazyfree-backlog", "Lazy-free backlog is not draining", AreaOOM, nil},
	{"replica-over-maxmemory", "Replica above maxmemory", AreaOOM, []Action{ActionConfigSet}},
	{"oom-forecast", "Memory growth reaches a limit soon", AreaOOM, []Action{ActionConfigSet}},
	{"big-keys", "Big keys", AreaKeys, nil},
	{"keys-no-ttl", "Keys without a TTL hold most of the memory", AreaKeys, []Action{ActionConfigSet}},
	{"defrag-skip-keys", "Collections too long for active defrag's main scan", AreaKeys, nil},
	{"ttl-size-mix", "Keys with a TTL vary widely in size", AreaKeys, nil},
	{"memory-doctor", "MEMORY DOCTOR reported issues", AreaDoctor, nil},
	{"unreachable", "Instance could not be probed", AreaProbe, nil},
	{"slow-server", "Server is reachable but slow to answer", AreaProbe, nil},
	{"restarted", "Instance restarted since the last sample", AreaProbe, nil},
}

// SpecFor returns the catalogue entry for an id.
func SpecFor(id string) (Spec, bool) {
	for _, s := range Catalogue {
		if s.ID == id {
			return s, true
		}
	}
	return Spec{}, false
}
