package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Membership reads the instances config stands for: every cluster seed and
// Sentinel entry replaced by the servers that are its members now
// (topology.Expand over the config's entries, wired in cmd). An entry that
// could not be expanded stays in the list as it is, and a *GroupError
// among the errors says why.
type Membership func(ctx context.Context) ([]Instance, []error)

// GroupError is why a cluster seed or a Sentinel entry could not be
// expanded into its members. The service reports it as that entry's
// finding instead of probing an entry that stands for no one server.
type GroupError struct {
	// Entry is the entry's name in config.
	Entry string
	// Class is why, as a failed probe is classified.
	Class ErrorClass
	Err   error
}

func (e *GroupError) Error() string { return "expand " + e.Entry + ": " + e.Err.Error() }

func (e *GroupError) Unwrap() error { return e.Err }

// membership keeps a service's instance list current: cluster members and
// a Sentinel master move when a failover happens, by the bot or anyone
// else, and a command that names <entry>.master must reach the server that
// is master now, not the one that was when the list was last read.
//
// Reads are shared (one in flight at a time, every caller that needs one
// waits for the same) and cached for maxAge, so a burst of commands costs
// one read of the seeds and sentinels.
type membership struct {
	read Membership
	// svc is the service whose list a read replaces: always the root
	// service, never a channel's scoped view of it.
	svc *Service
	now func() time.Time
	// maxAge is how old a read may be for a command that names a member;
	// maxWait is how long such a command waits for a read before it goes
	// on with the list it has (a black-holed sentinel costs a timeout per
	// address; the read still finishes in the background).
	maxAge, maxWait time.Duration

	mu sync.Mutex
	// reads counts the reads started; last is the last one completed.
	reads  int
	last   *memberRead
	flight *memberRead
	failed map[string]*GroupError
}

// memberRead is one read of the membership, shared by its waiters.
type memberRead struct {
	seq     int // the reads count when it started
	started time.Time
	done    chan struct{}
	errs    []error
}

// SetMembership makes the service re-read its instances through read:
// before a command that names a cluster or Sentinel member (or a name it
// does not know, which may be a member that appeared) when the last read
// is older than maxAge, waiting at most maxWait for it, and whenever
// Refresh is called. Until the first read, the list NewService was given
// is used.
func (s *Service) SetMembership(read Membership, maxAge, maxWait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = &membership{read: read, svc: s, now: s.now, maxAge: maxAge, maxWait: maxWait}
}

func (s *Service) membership() *membership {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.members
}

// Refresh re-reads the membership now, whatever the cache holds (after a
// failover the bot ran, before a sweep), and returns the read's errors:
// the entries that could not be expanded (*GroupError) and expanded names
// that were skipped. A read already in flight that started before the
// call is not enough: Refresh waits for it and starts another. Without
// SetMembership it does nothing.
func (s *Service) Refresh(ctx context.Context) []error {
	m := s.membership()
	if m == nil {
		return nil
	}
	m.mu.Lock()
	started := m.reads
	m.mu.Unlock()
	errs, _ := m.refresh(ctx, func(r *memberRead) bool { return r.seq > started }, 0)
	return errs
}

// ResolveFresh is Resolve after re-reading the membership when name is
// not a plain instance from config and the last read is older than the
// cache allows.
func (s *Service) ResolveFresh(ctx context.Context, name string, scope []string) (Instance, error) {
	s.refreshUnlessPlain(ctx, name)
	return s.Resolve(name, scope)
}

// refreshFor re-reads the membership, if it is stale, before a command
// whose instances may have moved: one that names a member, a group or an
// unknown name, and the fleet-wide verbs.
func (s *Service) refreshFor(ctx context.Context, cmd Command) {
	switch cmd.Verb {
	case "fleet", "list":
		s.refreshStale(ctx)
	case "diagnose", "frag", "oom", "doctor", "keys":
		if len(cmd.Args) > 0 {
			s.refreshUnlessPlain(ctx, cmd.Args[0])
		}
	}
}

func (s *Service) refreshUnlessPlain(ctx context.Context, name string) {
	for _, inst := range s.all() {
		if inst.Name == name && inst.Origin == "" && !inst.Cluster && inst.Sentinel == nil {
			return // a server straight from config does not move
		}
	}
	s.refreshStale(ctx)
}

func (s *Service) refreshStale(ctx context.Context) {
	if m := s.membership(); m != nil {
		since := m.now().Add(-m.maxAge)
		_, _ = m.refresh(ctx, func(r *memberRead) bool { return !r.started.Before(since) }, m.maxWait)
	}
}

// refresh returns once a read that is good enough has completed, starting
// one when none in flight or done is, and returns its errors. With wait >
// 0 it gives up after wait and reports false, leaving the read to finish
// in the background; it gives up too when ctx ends.
func (m *membership) refresh(ctx context.Context, good func(*memberRead) bool, wait time.Duration) ([]error, bool) {
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		m.mu.Lock()
		if m.flight == nil && m.last != nil && good(m.last) {
			m.mu.Unlock()
			return nil, true
		}
		f := m.flight
		if f == nil {
			m.reads++
			f = &memberRead{seq: m.reads, started: m.now(), done: make(chan struct{})}
			m.flight = f
			// The read outlives a caller that stops waiting: the next
			// command then finds it done.
			go m.run(context.WithoutCancel(ctx), f)
		}
		m.mu.Unlock()
		select {
		case <-f.done:
		case <-timeout:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
		if good(f) {
			return f.errs, true
		}
	}
}

// run does one read and applies it. A panic in the read (a client library
// choking on a hostile reply) keeps the list as it was.
func (m *membership) run(ctx context.Context, f *memberRead) {
	var insts []Instance
	err := Safely(func() error { insts, f.errs = m.read(ctx); return nil })
	if pe, ok := AsPanic(err); ok {
		m.svc.panicked(ctx, "membership", "", pe)
		insts, f.errs = nil, []error{fmt.Errorf("reading cluster and Sentinel members: %w", pe)}
	}
	if insts != nil {
		failed := map[string]*GroupError{}
		for _, err := range f.errs {
			var ge *GroupError
			if errors.As(err, &ge) {
				failed[ge.Entry] = ge
			}
		}
		m.mu.Lock()
		m.failed = failed
		m.mu.Unlock()
		m.svc.SetInstances(insts)
	}
	m.mu.Lock()
	m.last, m.flight = f, nil
	m.mu.Unlock()
	close(f.done)
}

// groupFailure is why inst, a cluster seed or Sentinel entry left in the
// list unexpanded, could not be expanded by the last read; nil for any
// other instance.
func (s *Service) groupFailure(inst Instance) *GroupError {
	m := s.membership()
	if m == nil || inst.Origin != "" || (!inst.Cluster && inst.Sentinel == nil) {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed[inst.Name]
}

// groupFailed marks r as the report of a group entry that could not be
// expanded: its one finding says which servers were asked and what they
// answered, where a probe would only have said that the entry has no
// address.
func groupFailed(r *Report, inst Instance, ge *GroupError) *Report {
	class := ge.Class
	if class == "" {
		class = ClassError
	}
	e := &ReportError{Class: class, Message: redact.Truncate(redact.Secrets(ge.Err.Error(), inst.Password, inst.Remediation.Password), 1000)}
	r.Error = e
	r.Findings = []Finding{groupFinding(inst, e)}
	r.Severity = Worst(r.Findings)
	return r
}

// groupFinding is the unreachable finding of a group entry: the servers
// asked for its members (the seeds or the sentinels) and why none told.
func groupFinding(inst Instance, e *ReportError) Finding {
	what, asked := "cluster", inst.Seeds
	hint := "check that the seeds are up, reachable from the bot and cluster nodes, or list more seeds"
	if len(asked) == 0 && inst.Addr != "" {
		asked = []string{inst.Addr}
	}
	if inst.Sentinel != nil && !inst.Cluster {
		what, asked = "Sentinel master "+inst.Sentinel.Master, inst.Sentinel.Addrs
		hint = "check that the sentinels are up, reachable from the bot and monitor " + inst.Sentinel.Master
	}
	sev := SeverityCritical
	switch e.Class {
	case ClassAuth:
		sev, hint = SeverityWarning, "check the entry's username and password in the bot's config"
	case ClassNoPerm:
		sev, hint = SeverityWarning, "the bot's ACL user lacks CLUSTER SHARDS and CLUSTER NODES (see docs/redis-acl.md)"
	}
	return newFinding("unreachable", sev,
		fmt.Sprintf("Members unknown (%s): the %s behind %s could not be read; %s.", e.Class, what, inst.Name, hint),
		factText("error_class", string(e.Class)), factText("error", e.Message), factText("addr", strings.Join(asked, ", ")))
}

// groupMembers are the members of the cluster or Sentinel entry called
// name, as the last read found them; nil when name is an instance of its
// own (a plain one, or a group entry left unexpanded) or no group's name.
func (s *Service) groupMembers(name string) []Instance {
	var members []Instance
	for _, inst := range s.all() {
		if inst.Name == name {
			return nil
		}
		if inst.Origin == name {
			members = append(members, inst)
		}
	}
	return members
}

// memberReports runs verb on every member of the group called name, as
// fleet does for a tag: concurrently, at most s.concurrency at a time,
// riskiest first. ok is false when name is not a group's name.
func (s *Service) memberReports(ctx context.Context, verb, name string, run func(context.Context, string) (*Report, error)) ([]*Report, bool, error) {
	members := s.groupMembers(name)
	if len(members) == 0 {
		return nil, false, nil
	}
	reports := make([]*Report, len(members))
	errs := make([]error, len(members))
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	for i, inst := range members {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// The verb recovers panics in the probe and the rules; this is
			// the last line for anything else in this goroutine.
			errs[i] = Safely(func() error {
				var err error
				reports[i], err = run(ctx, inst.Name)
				return err
			})
		})
	}
	wg.Wait()
	var out []*Report
	for i, err := range errs {
		m := members[i]
		switch pe, isPanic := AsPanic(err); {
		case isPanic:
			s.panicked(ctx, "probe", m.Name, pe)
			r := &Report{Verb: verb, Instance: m.Name, Addr: m.Addr, Tags: m.Tags, ProbedAt: s.now(), MemoryLimit: m.MemoryLimit}
			out = append(out, failed(r, m, &ReportError{Class: ClassInternal, Message: "internal error while probing: " + pe.Summary()}))
		case errors.Is(err, ErrUnknownInstance):
			// A member that a read dropped while the others were probed.
		case err != nil:
			return nil, true, err
		default:
			out = append(out, reports[i])
		}
	}
	SortByRisk(out)
	return out, true, nil
}
