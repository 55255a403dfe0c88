package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// actions are the approval-gated remediations, in the order of the
// handlers.Action constants: the keys of approvals.required and
// approvals.budget.
var actions = []handlers.Action{
	handlers.ActionMemoryPurge,
	handlers.ActionDefragOn,
	handlers.ActionDefragOff,
	handlers.ActionConfigSet,
	handlers.ActionBGSave,
	handlers.ActionRestart,
	handlers.ActionFailover,
}

// Bounds of approvals.
const (
	maxRequired       = 5
	minApprovalExpiry = time.Minute
	maxApprovalExpiry = 24 * time.Hour
)

// defragParam is one parameter defrag-on sets, with the range Redis accepts
// for it (src/config.c).
type defragParam struct {
	name     string
	def      string
	min, max int64
	size     bool // a byte size ("100mb"), not a plain integer
}

// defragParams are the keys of approvals.defrag, in the order defrag-on sets
// them.
var defragParams = []defragParam{
	{name: "active-defrag-ignore-bytes", def: "100mb", min: 1, max: math.MaxInt64, size: true},
	{name: "active-defrag-threshold-lower", def: "10", min: 0, max: 1000},
	{name: "active-defrag-threshold-upper", def: "100", min: 0, max: 1000},
	{name: "active-defrag-cycle-min", def: "1", min: 1, max: 99},
	{name: "active-defrag-cycle-max", def: "25", min: 1, max: 99},
}

// defragPairs are ordering constraints between defrag parameters: Redis
// scales the defrag effort between the lower and upper threshold, from
// cycle-min to cycle-max, and divides by their difference.
var defragPairs = []struct {
	lo, hi  string
	orEqual bool
}{
	{"active-defrag-threshold-lower", "active-defrag-threshold-upper", false},
	{"active-defrag-cycle-min", "active-defrag-cycle-max", true},
}

// DefaultApprovals are the approval rules when the file has no approvals
// section: a 15 minute expiry, one approval for every action, at most 3
// restarts and 3 failovers per instance a day, and the conservative defrag
// profile of the fragmentation runbook.
func DefaultApprovals() Approvals {
	a := Approvals{
		Expiry:       DefaultApprovalExpiry,
		Required:     make(map[handlers.Action]int, len(actions)),
		Budget:       make(map[handlers.Action]int, len(actions)),
		DefragMaxOps: DefaultDefragMaxOps,
	}
	for _, act := range actions {
		a.Required[act] = 1
		a.Budget[act] = 0
	}
	a.Budget[handlers.ActionRestart] = 3
	a.Budget[handlers.ActionFailover] = 3
	for _, p := range defragParams {
		a.DefragParams = append(a.DefragParams, [2]string{p.name, p.def})
	}
	return a
}

func (l *loader) approvals(f approvalsFile) Approvals {
	a := DefaultApprovals()
	a.Expiry, a.DefragMaxOps = f.Expiry, f.DefragMaxOps
	l.p.check("approvals.expiry", a.Expiry < minApprovalExpiry || a.Expiry > maxApprovalExpiry, "must be between 1m and 24h")
	l.p.check("approvals.defrag_max_ops", a.DefragMaxOps <= 0, "must be positive")
	l.actionCounts("approvals.required", f.Required, a.Required, func(n int64) string {
		if n < 1 || n > maxRequired {
			return fmt.Sprintf("must be between 1 and %d", maxRequired)
		}
		return ""
	})
	l.actionCounts("approvals.budget", f.Budget, a.Budget, func(n int64) string {
		if n < 0 {
			return "must not be negative"
		}
		return ""
	})
	a.DefragParams = l.defrag(f.Defrag)
	return a
}

// actionCounts applies m, a number per action name, onto counts. check says
// what is wrong with a number, or "".
func (l *loader) actionCounts(prefix string, m map[string]any, counts map[handlers.Action]int, check func(int64) string) {
	for _, name := range slices.Sorted(maps.Keys(m)) { // errors in a stable order
		key := prefix + "." + name
		act := handlers.Action(name)
		switch {
		case hideSecret(name) != "":
			// A secret pasted where an action belongs: not in the key.
			l.p.addf(prefix, "unknown action %s", hideSecret(name))
			continue
		case !slices.Contains(actions, act):
			l.p.addf(key, "unknown action (valid: %s)", actionList())
			continue
		}
		n, err := integer(m[name])
		if err != nil {
			l.p.decodeFailed(key, err)
			continue
		}
		if msg := check(n); msg != "" {
			l.p.addf(key, "%s", msg)
			continue
		}
		counts[act] = int(n)
	}
}

// actionList is "memory-purge, defrag-on, ..., failover".
func actionList() string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// defrag applies m onto the default defrag parameters and returns them in
// the fixed order of defragParams. Sizes are written back in a form Redis
// accepts (it knows kb, mb and gb, not MiB or t).
func (l *loader) defrag(m map[string]any) [][2]string {
	values := make(map[string]int64, len(defragParams))
	for _, p := range defragParams {
		n, _ := parseDefragValue(p, p.def)
		values[p.name] = n
	}
	set := map[string]bool{} // keys the file sets
	ok := map[string]bool{}  // keys whose value is valid (or the default)
	for _, p := range defragParams {
		ok[p.name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(m)) {
		key := "approvals.defrag." + name
		i := slices.IndexFunc(defragParams, func(p defragParam) bool { return p.name == name })
		switch {
		case hideSecret(name) != "":
			l.p.addf("approvals.defrag", "unknown key %s", hideSecret(name))
			continue
		case i < 0:
			names := make([]string, len(defragParams))
			for i, p := range defragParams {
				names[i] = p.name
			}
			l.p.addf(key, "unknown key%s", didYouMean(name, names))
			continue
		}
		p := defragParams[i]
		set[name] = true
		n, err := parseDefragValue(p, m[name])
		if err != nil {
			l.p.decodeFailed(key, err)
			ok[name] = false
			continue
		}
		switch {
		case n >= p.min && n <= p.max:
			values[name] = n
		case p.max == math.MaxInt64:
			l.p.addf(key, "must be positive")
			ok[name] = false
		default:
			l.p.addf(key, "must be between %d and %d", p.min, p.max)
			ok[name] = false
		}
	}
	for _, pr := range defragPairs {
		lo, hi := values[pr.lo], values[pr.hi]
		if !ok[pr.lo] || !ok[pr.hi] || !set[pr.lo] && !set[pr.hi] || hi > lo || pr.orEqual && hi == lo {
			continue
		}
		// Blame the key the file set, as checkThresholds does.
		switch {
		case set[pr.hi] && pr.orEqual:
			l.p.addf("approvals.defrag."+pr.hi, "must be at least %s", pr.lo)
		case set[pr.hi]:
			l.p.addf("approvals.defrag."+pr.hi, "must be greater than %s", pr.lo)
		case pr.orEqual:
			l.p.addf("approvals.defrag."+pr.lo, "must be at most %s", pr.hi)
		default:
			l.p.addf("approvals.defrag."+pr.lo, "must be less than %s", pr.hi)
		}
	}
	out := make([][2]string, len(defragParams))
	for i, p := range defragParams {
		v := strconv.FormatInt(values[p.name], 10)
		if p.size {
			v = redisSize(values[p.name])
		}
		out[i] = [2]string{p.name, v}
	}
	return out
}

// parseDefragValue reads a defrag parameter: a size or an integer.
func parseDefragValue(p defragParam, v any) (int64, error) {
	if !p.size {
		return integer(v)
	}
	switch d := v.(type) {
	case string:
		return parseSize(d)
	case int, int64, uint64, float64:
		n, ok := wholeNumber(d)
		if !ok || n < 0 {
			return 0, invalid("size", d)
		}
		return n, nil
	}
	return 0, typeError(byteSizeType, v)
}

// integer reads a whole number from YAML: a number, or a string of digits as
// the environment would give.
func integer(v any) (int64, error) {
	switch d := v.(type) {
	case int:
		return int64(d), nil
	case int64:
		return d, nil
	case uint64, float64:
		n, ok := wholeNumber(d)
		if !ok {
			return 0, invalid("integer", d)
		}
		return n, nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(d), 10, 64)
		if err != nil {
			return 0, invalid("integer", d)
		}
		return n, nil
	}
	return 0, typeError(reflect.TypeFor[int64](), v)
}

// redisSize writes n bytes in the largest unit Redis understands that
// divides it: 104857600 -> "100mb".
func redisSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
