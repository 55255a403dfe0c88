package handlers

import (
	"encoding/json"
	"time"
)

// Report is what a verb returns for one instance: transport-neutral, so the
// terminal, JSON and Slack renderers all draw from the same value. Its first
// action (what to do first) is ChooseFirstAction's, and JSON carries it as
// "first_action".
type Report struct {
	Verb     string    `json:"verb"`
	Instance string    `json:"instance"`
	Addr     string    `json:"addr"`
	Tags     []string  `json:"tags,omitempty"`
	ProbedAt time.Time `json:"probed_at"`
	// Severity is the worst finding's severity.
	Severity Severity  `json:"severity"`
	Metrics  Evidence  `json:"metrics"`
	Findings []Finding `json:"findings"`
	// Path is the fragmentation decision tree's path (frag verb).
	Path []Step `json:"path,omitempty"`
	// Doctor is MEMORY DOCTOR's own text (doctor verb).
	Doctor string `json:"doctor,omitempty"`
	// Keys is the key scan (keys verb).
	Keys *KeyReport `json:"keys,omitempty"`
	// Missing lists parts of the probe the server refused.
	Missing []string `json:"missing,omitempty"`
	// Error is set when the probe failed; Findings then holds "unreachable".
	Error *ReportError `json:"error,omitempty"`
	// Snapshot is the probe's raw capture, for runbook templating; it is not
	// part of the JSON contract.
	Snapshot    *Snapshot `json:"-"`
	MemoryLimit int64     `json:"-"`
	// Can is what the bot may do to the instance (ActionOptions).
	Can Capabilities `json:"-"`
}

// MarshalJSON writes the report with its first action ("first_action"),
// which is derived from the findings so that it can never disagree with
// them.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report // no MarshalJSON: no recursion
	return json.Marshal(struct {
		plain
		FirstAction FirstAction `json:"first_action"`
	}{plain(r), ChooseFirstAction(&r)})
}

// Compact trims the report's snapshot to what its first action and action
// options read (hintInfo, the keyspace lines, hintConfig) and drops the
// rest: most of INFO and CONFIG, MEMORY STATS and the doctor's text, which
// only runbooks and the sweep's saved history read. A fleet view holds
// thousands of reports at once, and their whole snapshots were most of
// its memory.
func (r *Report) Compact() {
	s := r.Snapshot
	if s == nil {
		return
	}
	c := &Snapshot{Instance: s.Instance, ProbedAt: s.ProbedAt, RoundTrip: s.RoundTrip, Connect: s.Connect,
		Info: Info{}, Config: map[string]string{}, Missing: s.Missing}
	for _, field := range hintInfo {
		if v, ok := s.Info[field]; ok {
			c.Info[field] = v
		}
	}
	for _, key := range hintConfig {
		if v, ok := s.Config[key]; ok {
			c.Config[key] = v
		}
	}
	for field, v := range s.Info {
		if isKeyspaceField(field) {
			c.Info[field] = v
		}
	}
	r.Snapshot = c
}

// ReportError describes a failed probe without leaking credentials.
type ReportError struct {
	Class   ErrorClass `json:"class"`
	Message string     `json:"message"`
	// Unconfirmed: the probe that timed out was a short one, of an
	// instance whose probe had timed out the time before (see
	// Service.Fleet); the whole timeout was not tried.
	Unconfirmed bool `json:"unconfirmed,omitempty"`
}

// Failed reports whether the probe failed.
func (r *Report) Failed() bool { return r.Error != nil }

// keyMetrics picks the numbers every report shows, in reading order. Absent
// fields are left out rather than shown as zero.
func keyMetrics(s *Snapshot, memoryLimit int64) Evidence {
	var m Evidence
	text := func(name, v string, ok bool) {
		if ok && v != "" {
			m = append(m, factText(name, v))
		}
	}
	num := func(name string, f func(string, int64) Fact) {
		if v, ok := s.Int(name); ok {
			m = append(m, f(name, v))
		}
	}
	ratio := func(name string) {
		if v, ok := s.Float(name); ok {
			m = append(m, factRatio(name, v))
		}
	}
	text("server", s.ServerName(), true)
	text("version", s.Version(), s.Version() != "")
	text("role", s.Role(), s.Role() != "")
	num("used_memory", factBytes)
	num("used_memory_rss", factBytes)
	num("used_memory_peak", factBytes)
	ratio("mem_fragmentation_ratio")
	ratio("allocator_frag_ratio")
	num("allocator_frag_bytes", factBytes)
	if maxmem, ok := s.Maxmemory(); ok {
		m = append(m, factBytes("maxmemory", maxmem))
	}
	if u, ok := MaxmemoryUsage(s); ok {
		m = append(m, factShare("maxmemory_usage", u.Share))
	}
	policy, ok := s.Policy()
	text("maxmemory_policy", policy, ok)
	if memoryLimit > 0 {
		m = append(m, factBytes("memory_limit", memoryLimit))
	}
	v, ok := s.Info.String("mem_allocator")
	text("mem_allocator", v, ok)
	v, ok = s.Config["activedefrag"]
	text("activedefrag", v, ok)
	keys, expires := s.Keys()
	m = append(m, factInt("keys", keys), factInt("expires", expires))
	num("evicted_keys", factInt)
	if n, ok := OOMErrors(s); ok {
		m = append(m, factInt("errorstat_OOM", n))
	}
	return m
}

// Metric returns a metric's value by name.
func (r *Report) Metric(name string) (Fact, bool) { return r.Metrics.Get(name) }

// Has reports whether the report contains a finding with the id.
func (r *Report) Has(id string) bool {
	_, ok := r.Finding(id)
	return ok
}

// Finding returns the finding with the id.
func (r *Report) Finding(id string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.ID == id {
			return f, true
		}
	}
	return Finding{}, false
}
