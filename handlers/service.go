package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Prober reads a snapshot of one instance. The probe package implements it
// against real servers. The service, the executor (before and after an
// action) and the approval workflow (planning and re-checking) all take
// one.
type Prober interface {
	Probe(ctx context.Context, inst Instance) (*Snapshot, error)
}

// History returns the last snapshot seen of an instance, so rules can read
// rates and trends. A nil History means every report stands alone.
type History interface {
	Last(ctx context.Context, instance string) (*Snapshot, bool)
}

// WindowHistory is a History that also keeps past samples; with it, rules
// read trends (frag-rising, oom-forecast) over the last HistoryWindow.
type WindowHistory interface {
	History
	Window(ctx context.Context, instance string, from, to time.Time) ([]Point, error)
}

// Learned returns what earlier remediations taught the bot about an
// instance (FactDefragSupported); a History that implements it lets
// reports offer only the actions the instance can carry out.
type Learned interface {
	Facts(ctx context.Context, instance string) (map[string]string, error)
}

// HistoryWindow is how far back trend rules look.
const HistoryWindow = 6 * time.Hour

// Service holds the verbs that users call. It only knows the instances it
// was built with: nothing a user types can name another server.
type Service struct {
	mu          sync.RWMutex
	instances   []Instance
	prober      Prober
	history     History
	now         func() time.Time
	concurrency int
	// blockedAfter and growth pace Fleet's extra probes beside blocked
	// ones (SetFleetGrowth).
	blockedAfter time.Duration
	growth       int
	// timeout is the prober's, for Fleet's short probes
	// (SetProbeTimeout); 0: unknown, no short probes.
	timeout time.Duration
	// timedOut returns the instances the last sweep saw time out, for the
	// fleet verb's short probes (SetTimedOut); nil: none.
	timedOut func() map[string]bool
	scanner  KeyScanner
	onPanic  PanicHandler
	// members re-reads cluster and Sentinel membership (SetMembership);
	// nil: the list changes only through SetInstances.
	members *membership
	// records is the state store the store-backed verbs read; nil: none.
	records Records
	// slow remembers which instances kept their last fleet probe waiting
	// (see fleet: they start first); shared with scoped views.
	slow *slowSet
}

// slowSet is the instances whose last fleet probe waited at least
// blockedAfter on its server: a slow or silent one.
type slowSet struct {
	mu sync.Mutex
	m  map[string]bool
}

func (w *slowSet) set(name string, slow bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if slow {
		w.m[name] = true
	} else {
		delete(w.m, name)
	}
}

func (w *slowSet) has(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m[name]
}

// PanicHandler hears about a panic the service recovered while probing
// ("probe") or analysing ("analyse") one instance, so the transport can log
// it with its stack and count it. The report of that instance says only
// that it failed, with class internal.
type PanicHandler func(ctx context.Context, where, instance string, err *PanicError)

// OnPanic sets who hears about recovered panics; nil: nobody.
func (s *Service) OnPanic(h PanicHandler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onPanic = h
}

// panicked hands a recovered panic to the handler, once per panic.
func (s *Service) panicked(ctx context.Context, where, instance string, pe *PanicError) {
	s.mu.RLock()
	h := s.onPanic
	s.mu.RUnlock()
	if h != nil && pe.Claim() {
		h(ctx, where, instance, pe)
	}
}

// NewService returns a Service over the configured instances. concurrency
// bounds parallel probes in fleet-wide verbs.
func NewService(instances []Instance, prober Prober, history History, concurrency int, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{instances: instances, prober: prober, history: history, now: now, concurrency: max(concurrency, 1),
		blockedAfter: DefaultBlockedAfter, growth: DefaultFleetWorkersGrowth, slow: &slowSet{m: map[string]bool{}}}
}

// SetFleetGrowth sets how Fleet adds probes beside those blocked on
// servers that do not answer: a probe counts as blocked once it has waited
// blockedAfter, and at most growth times the concurrency probes are in
// flight (probe.blocked_after and probe.workers_growth). A value that is
// not positive keeps its default.
func (s *Service) SetFleetGrowth(blockedAfter time.Duration, growth int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if blockedAfter > 0 {
		s.blockedAfter = blockedAfter
	}
	if growth > 0 {
		s.growth = growth
	}
}

// fleetGrowth is what SetFleetGrowth set.
func (s *Service) fleetGrowth() (time.Duration, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.blockedAfter, s.growth
}

// SetProbeTimeout tells the service the prober's timeout, so Fleet can
// give the instances that timed out before a short probe (ShortTimeout).
// Without it every probe gets the prober's timeout.
func (s *Service) SetProbeTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timeout = d
}

// SetTimedOut gives the fleet verb the instances whose probe timed out in
// the last sweep (the sweep's TimedOut), which it probes with a short
// first timeout, as the sweep does: a chat `fleet` over a fleet with dead
// instances does not wait the whole timeout on each, and their reports
// say the failure is unconfirmed. The service only reads the set; the
// sweep keeps it (see sweep.Sweeper.TimedOut for why). Without it, and in
// the CLI, every probe gets the whole timeout.
func (s *Service) SetTimedOut(last func() map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timedOut = last
}

// lastTimedOut is what SetTimedOut's function returns now; nil without it.
func (s *Service) lastTimedOut() map[string]bool {
	s.mu.RLock()
	last := s.timedOut
	s.mu.RUnlock()
	if last == nil {
		return nil
	}
	return last()
}

// ShortTimeout is the probe timeout for an instance whose probe timed out
// with the whole timeout in the previous sweep: a quarter of the probe
// timeout, at most 1 s. It only has to tell "still dead" from "back": a
// Redis that came back answers a probe in milliseconds, and one that came
// back slow gets the whole timeout in the next sweep. What it saves is
// probes in flight (goroutines, and descriptors where each probe dials):
// a blackholed instance holds one for the whole timeout, and issue 18's
// fleet has 500 of them in 10,000.
func ShortTimeout(timeout time.Duration) time.Duration {
	return min(time.Second, timeout/4)
}

// DefaultBlockedAfter is how long a fleet probe waits on its server before
// it counts as blocked and lets another probe start (see Service.Fleet;
// probe.blocked_after): a Redis that answers takes a few milliseconds, a
// blackholed or slow one the probe timeout.
const DefaultBlockedAfter = 200 * time.Millisecond

// DefaultFleetWorkersGrowth bounds the probes of a fleet probe in flight:
// at most this many times probe.concurrency, those beyond it waiting on
// servers that do not answer (probe.workers_growth). In serve, a probe
// uses its instance's pooled connection, so workers cost goroutines, not
// descriptors; the CLI dials per probe, one descriptor per worker: 1,024
// at the default 128.
const DefaultFleetWorkersGrowth = 8

// Instances returns the configured instances with the tag ("" for all), in
// config order.
func (s *Service) Instances(tag string) []Instance {
	var out []Instance
	for _, inst := range s.all() {
		if tag == "" || inst.HasTag(tag) {
			out = append(out, inst)
		}
	}
	return out
}

// SetInstances replaces the instance list: cluster and Sentinel entries are
// expanded again before each sweep, so a failover's new primary is known.
func (s *Service) SetInstances(instances []Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances = instances
}

func (s *Service) probeTimeout() time.Duration {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.timeout
}

func (s *Service) all() []Instance {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.instances
}

// scoped returns a view of the service that only knows the instances with
// one of the tags.
func (s *Service) scoped(tags []string) *Service {
	s.mu.RLock()
	onPanic, members, records, timedOut := s.onPanic, s.members, s.records, s.timedOut
	s.mu.RUnlock()
	blockedAfter, growth := s.fleetGrowth()
	view := &Service{prober: s.prober, history: s.history, now: s.now, concurrency: s.concurrency, blockedAfter: blockedAfter, growth: growth,
		timeout: s.probeTimeout(), timedOut: timedOut, scanner: s.keyScanner(), onPanic: onPanic, members: members, records: records, slow: s.slow}
	for _, inst := range s.all() {
		for _, tag := range tags {
			if inst.HasTag(tag) {
				view.instances = append(view.instances, inst)
				break
			}
		}
	}
	return view
}

// UnknownInstanceError is returned for a name that is not in config.
type UnknownInstanceError struct {
	Name    string
	Closest []string
}

func (e *UnknownInstanceError) Error() string {
	msg := fmt.Sprintf("unknown instance %q", e.Name)
	if len(e.Closest) > 0 {
		msg += " (did you mean " + strings.Join(e.Closest, ", ") + "?)"
	}
	return msg
}

// ErrUnknownInstance matches any UnknownInstanceError with errors.Is.
var ErrUnknownInstance = errors.New("unknown instance")

// Is lets errors.Is(err, ErrUnknownInstance) match.
func (e *UnknownInstanceError) Is(target error) bool { return target == ErrUnknownInstance }

var validName = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// Lookup finds a configured instance by exact name.
func (s *Service) Lookup(name string) (Instance, error) {
	instances := s.all()
	for _, inst := range instances {
		if inst.Name == name {
			return inst, nil
		}
	}
	names := make([]string, len(instances))
	for i, inst := range instances {
		names[i] = inst.Name
	}
	shown := name
	if !validName.MatchString(name) {
		shown = redact.Truncate(name, 64)
	}
	return Instance{}, &UnknownInstanceError{Name: shown, Closest: Closest(strings.ToLower(name), names, 3)}
}

// Resolve finds a configured instance by name within a scope of tags (nil:
// every instance). Names outside the scope answer as unknown.
func (s *Service) Resolve(name string, scope []string) (Instance, error) {
	if len(scope) > 0 {
		return s.scoped(scope).Lookup(name)
	}
	return s.Lookup(name)
}

// Diagnose runs every rule on one instance.
func (s *Service) Diagnose(ctx context.Context, name string) (*Report, error) {
	return s.report(ctx, "diagnose", name, func(in Input, r *Report) { r.Findings = Evaluate(in) })
}

// Frag walks the fragmentation decision tree and shows its path.
func (s *Service) Frag(ctx context.Context, name string) (*Report, error) {
	return s.report(ctx, "frag", name, func(in Input, r *Report) {
		a := FragTree(in)
		r.Path, r.Findings = a.Steps, a.Findings
		SortFindings(r.Findings)
	})
}

// OOM runs the rules about limits, eviction and the OOM killer.
func (s *Service) OOM(ctx context.Context, name string) (*Report, error) {
	return s.report(ctx, "oom", name, func(in Input, r *Report) {
		for _, rule := range oomRules {
			r.Findings = append(r.Findings, rule(in)...)
		}
		SortFindings(r.Findings)
	})
}

// Doctor shows MEMORY DOCTOR's own report next to its parsed issues.
func (s *Service) Doctor(ctx context.Context, name string) (*Report, error) {
	return s.report(ctx, "doctor", name, func(in Input, r *Report) {
		r.Doctor = in.Cur.Doctor
		r.Findings = doctorFinding(in)
	})
}

func (s *Service) report(ctx context.Context, verb, name string, analyse func(Input, *Report)) (*Report, error) {
	inst, err := s.Lookup(name)
	if err != nil {
		return nil, err
	}
	return s.probeAndAnalyse(ctx, verb, inst, analyse), nil
}

// probeAndAnalyse never fails: a failed probe becomes an "unreachable"
// finding, so one dead instance never breaks a fleet view. A panic while
// probing or analysing (a client library choking on a hostile reply, a
// rule's bug) fails this instance's report with class internal, not the
// command, the fleet view or the process.
func (s *Service) probeAndAnalyse(ctx context.Context, verb string, inst Instance, analyse func(Input, *Report)) *Report {
	r := &Report{Verb: verb, Instance: inst.Name, Addr: inst.Addr, Tags: inst.Tags, ProbedAt: s.now(), MemoryLimit: inst.MemoryLimit, Findings: []Finding{}}
	if ge := s.groupFailure(inst); ge != nil {
		return groupFailed(r, inst, ge)
	}
	snap, err := s.probe(ctx, inst)
	if pe, ok := AsPanic(err); ok {
		return failed(r, inst, &ReportError{Class: ClassInternal, Message: "internal error while probing: " + pe.Summary()})
	}
	err = Safely(func() error { s.analyse(ctx, r, inst, snap, err, analyse); return nil })
	if pe, ok := AsPanic(err); ok {
		s.panicked(ctx, "analyse", inst.Name, pe)
		r.Path = nil
		return failed(r, inst, &ReportError{Class: ClassInternal, Message: "internal error while analysing: " + pe.Summary()})
	}
	return r
}

// probe runs the prober. A panic in it (here, or in the prober's own
// goroutine, which hands it back as an error) comes back as a *PanicError.
func (s *Service) probe(ctx context.Context, inst Instance) (*Snapshot, error) {
	var snap *Snapshot
	err := Safely(func() error {
		var err error
		snap, err = s.prober.Probe(ctx, inst)
		return err
	})
	if pe, ok := AsPanic(err); ok {
		s.panicked(ctx, "probe", inst.Name, pe)
		return nil, pe
	}
	return snap, err
}

// analyse fills r from a probe's result: the snapshot's numbers and the
// rules' findings, or the unreachable finding of a failed probe.
func (s *Service) analyse(ctx context.Context, r *Report, inst Instance, snap *Snapshot, probeErr error, analyse func(Input, *Report)) {
	// The probe validates what it reads; any other Prober is held to the
	// same before a rule sees its snapshot (a copy: the prober may share it).
	snap = snap.Validated()
	if snap != nil {
		r.Snapshot, r.ProbedAt, r.Missing = snap, snap.ProbedAt, snap.Missing
		r.Metrics = keyMetrics(snap, inst.MemoryLimit)
	}
	if probeErr != nil {
		e := &ReportError{Class: ClassOf(probeErr), Message: redact.Secrets(probeErr.Error(), inst.Password)}
		if e.Class == "" {
			e.Class = ClassError
		}
		failed(r, inst, e)
		return
	}
	var learned map[string]string
	if l, ok := s.history.(Learned); ok {
		learned, _ = l.Facts(ctx, inst.Name) // unknown facts only offer more, and the plan re-checks
	}
	r.Can = CapabilitiesOf(inst, learned)
	in := Input{Cur: snap, MemoryLimit: inst.MemoryLimit, T: inst.Thresholds}
	if s.history != nil {
		if prev, ok := s.history.Last(ctx, inst.Name); ok {
			in.Prev = prev.Validated() // it may have been stored before validation
		}
		if wh, ok := s.history.(WindowHistory); ok {
			if w, err := wh.Window(ctx, inst.Name, snap.ProbedAt.Add(-HistoryWindow), snap.ProbedAt); err == nil {
				in.Window = w
			}
		}
	}
	analyse(in, r)
	r.Severity = Worst(r.Findings)
}

// failed marks r as a failed probe: its error and the one finding that
// says so.
func failed(r *Report, inst Instance, e *ReportError) *Report {
	r.Error = e
	r.Findings = []Finding{unreachableFinding(inst, e)}
	r.Severity = Worst(r.Findings)
	return r
}

func unreachableFinding(inst Instance, e *ReportError) Finding {
	sev, hint := e.Class.advice()
	f := newFinding("unreachable", sev, fmt.Sprintf("Probe failed (%s): %s.", e.Class, hint),
		factText("error_class", string(e.Class)), factText("error", e.Message), factText("addr", inst.Addr))
	return f
}

// Fleet probes every instance with the tag ("" for all) concurrently and
// returns one report each, riskiest first. It probes probe.concurrency
// instances at once, and more while some of them keep their workers
// waiting on servers that do not answer (SetFleetGrowth).
//
// timedOut names the instances whose probe timed out in the caller's
// previous fleet probe (nil: none; the sweep passes its last
// observation, the fleet verb and the digest the sweep's TimedOut):
// their probe gets ShortTimeout, so that dead instances
// do not hold a probe for the whole timeout each. Other failures
// (refused, protocol...) come fast with any timeout, and a short one
// could only change their class. A short probe that times out is
// reported unreachable but unconfirmed (ReportError.Unconfirmed), and the
// caller leaves the instance out of timedOut next time, so that it gets
// the whole timeout then: a dead instance alternates a short probe and a
// whole one, a short probe only ever reports unreachable an instance
// that a whole one found unreachable the time before, and a slow
// instance that answers within the timeout is never reported unreachable
// two times in a row. Confirming in the same call would add a whole
// timeout after the first pass: probes blocked on silent servers already
// let others start (SetFleetGrowth), so that tail would be most of the
// sweep.
//
// Each report keeps its probe's whole snapshot: the sweep saves it and
// its alerts' runbooks read it.
func (s *Service) Fleet(ctx context.Context, tag string, timedOut map[string]bool) ([]*Report, error) {
	return s.fleet(ctx, tag, timedOut, false)
}

// fleet is Fleet; with compact, each report is compacted (Report.Compact)
// as soon as it is judged, so that a view of thousands of instances never
// holds thousands of whole snapshots.
func (s *Service) fleet(ctx context.Context, tag string, timedOut map[string]bool, compact bool) ([]*Report, error) {
	instances := s.Instances(tag)
	if len(instances) == 0 {
		if tag != "" {
			return nil, fmt.Errorf("no instance has tag %q", tag)
		}
		return nil, errors.New("no instances configured")
	}
	var short time.Duration
	if t := s.probeTimeout(); t > 0 && len(timedOut) > 0 {
		short = ShortTimeout(t)
	}
	blockedAfter, growth := s.fleetGrowth()
	reports := make([]*Report, len(instances))
	// A pool of workers over the list: a goroutine per instance waiting
	// for a slot would cost a stack each, for nothing.
	type job struct {
		i       int
		timeout time.Duration // 0: the prober's own
		// slow: the last probe waited blockedAfter or more on its server.
		slow bool
	}
	jobs := make(chan job)
	// An answering probe holds one of s.concurrency tokens, and gives it
	// up once it has waited blockedAfter on its server (a blackholed or
	// slow instance: no CPU, no progress), so that another can start. The
	// CPU then works on about s.concurrency answering instances, while up
	// to growth times as many probes wait on silent servers: issue 18's
	// 1,000 unresponsive instances in 10,000 no longer hold the others
	// back. An instance that was slow or silent the last time (or timed
	// out: it gets the short probe) starts first, without a token: its
	// wait then runs beside everyone else's probes instead of adding to
	// the end of the fleet's, and it does not hold a token for
	// blockedAfter for nothing (1,000 such instances at 200 ms each were
	// 1.6 s of 128 tokens).
	tokens := make(chan struct{}, s.concurrency)
	var workers sync.WaitGroup
	for range min(growth*s.concurrency, len(instances)) {
		workers.Go(func() {
			for j := range jobs {
				release := func() {}
				if !j.slow {
					tokens <- struct{}{}
					var once sync.Once
					release = func() { once.Do(func() { <-tokens }) }
				}
				blocked := time.AfterFunc(blockedAfter, release)
				began := time.Now()
				r := s.fleetReport(ctx, instances[j.i], j.timeout)
				s.slow.set(instances[j.i].Name, time.Since(began) >= blockedAfter)
				blocked.Stop()
				release()
				if compact {
					r.Compact()
				}
				if j.timeout > 0 && r.Failed() && r.Error.Class == ClassTimeout {
					r.Error.Unconfirmed = true
					// True of the sweep's own probes and of the fleet
					// views that use the sweep's set (SetTimedOut) alike.
					r.Error.Message += fmt.Sprintf(" (within the short timeout of %s, as it did not answer the last sweep; unconfirmed until a sweep waits the whole timeout)", j.timeout)
					r.Findings = []Finding{unreachableFinding(instances[j.i], r.Error)}
				}
				reports[j.i] = r
			}
		})
	}
	var rest []job
	for i, inst := range instances {
		switch {
		case short > 0 && timedOut[inst.Name]:
			jobs <- job{i, short, true}
		case s.slow.has(inst.Name):
			jobs <- job{i, 0, true}
		default:
			rest = append(rest, job{i, 0, false})
		}
	}
	for _, j := range rest {
		jobs <- j
	}
	close(jobs)
	workers.Wait()
	SortByRisk(reports)
	return reports, nil
}

// fleetReport is one instance's report in a fleet view, from a probe
// within timeout (0: the prober's own).
func (s *Service) fleetReport(ctx context.Context, inst Instance, timeout time.Duration) *Report {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var r *Report
	// probeAndAnalyse recovers panics in the probe and the rules; this is
	// the last line for anything else, because a panic nobody recovers in
	// a worker would end the process.
	err := Safely(func() error {
		r = s.probeAndAnalyse(ctx, "fleet", inst, func(in Input, r *Report) { r.Findings = Evaluate(in) })
		return nil
	})
	if pe, ok := AsPanic(err); ok {
		s.panicked(ctx, "probe", inst.Name, pe)
		r = &Report{Verb: "fleet", Instance: inst.Name, Addr: inst.Addr, Tags: inst.Tags, ProbedAt: s.now(), MemoryLimit: inst.MemoryLimit}
		r = failed(r, inst, &ReportError{Class: ClassInternal, Message: "internal error while probing: " + pe.Summary()})
	}
	return r
}

// SortByRisk orders reports worst severity first, then by maxmemory usage,
// then RSS against the memory limit, then fragmentation.
func SortByRisk(reports []*Report) {
	score := func(r *Report, name string) float64 {
		f, ok := r.Metric(name)
		if !ok {
			return 0
		}
		v, _ := f.Value.(float64)
		return v
	}
	rssShare := func(r *Report) float64 {
		rss, ok := r.Metric("used_memory_rss")
		if !ok || r.MemoryLimit == 0 {
			return 0
		}
		n, _ := rss.Value.(int64)
		return float64(n) / float64(r.MemoryLimit)
	}
	slices.SortStableFunc(reports, func(a, b *Report) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(score(b, "maxmemory_usage"), score(a, "maxmemory_usage")),
			cmp.Compare(rssShare(b), rssShare(a)),
			cmp.Compare(score(b, "mem_fragmentation_ratio"), score(a, "mem_fragmentation_ratio")),
			strings.Compare(a.Instance, b.Instance),
		)
	})
}

// Closest returns up to n names nearest to name by edit distance, for
// "did you mean" hints. Names sharing a prefix rank first.
func Closest(name string, names []string, n int) []string {
	type scored struct {
		name string
		d    int
	}
	var c []scored
	for _, cand := range names {
		d := editDistance(name, cand)
		if strings.HasPrefix(cand, name) || strings.HasPrefix(name, cand) {
			d = min(d, 1)
		}
		if d <= max(2, len(cand)/3) {
			c = append(c, scored{cand, d})
		}
	}
	slices.SortStableFunc(c, func(a, b scored) int { return cmp.Or(cmp.Compare(a.d, b.d), strings.Compare(a.name, b.name)) })
	var out []string
	for i := 0; i < len(c) && i < n; i++ {
		out = append(out, c[i].name)
	}
	return out
}

func editDistance(a, b string) int {
	if len(a) > 128 {
		a = a[:128]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
