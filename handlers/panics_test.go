package handlers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// readPastEnd panics with a runtime error, as a reader indexing a reply
// shorter than it claimed does.
func readPastEnd(reply []byte, n int) byte { return reply[n] }

// panickingProber stands in for a probe that panics on one instance: no
// real server makes a probe panic on demand. The others get canned answers.
type panickingProber struct {
	cannedProber
	bad   string
	value any // what to panic with; nil: a runtime error
}

func (p panickingProber) Probe(ctx context.Context, inst Instance) (*Snapshot, error) {
	if inst.Name == p.bad {
		if p.value != nil {
			panic(p.value)
		}
		readPastEnd([]byte("+OK"), 3+len(inst.Name))
	}
	return p.cannedProber.Probe(ctx, inst)
}

// recordedPanic is one call of a PanicHandler.
type recordedPanic struct {
	where, instance string
	err             *PanicError
}

type panicRecorder struct {
	mu  sync.Mutex
	got []recordedPanic
}

func (r *panicRecorder) handle(_ context.Context, where, instance string, err *PanicError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, recordedPanic{where, instance, err})
}

func TestSafelyReturnsErrorsAndRecoversPanics(t *testing.T) {
	plain := errors.New("plain")
	if err := Safely(func() error { return plain }); err != plain {
		t.Errorf("Safely returned %v, want f's own error", err)
	}
	if err := Safely(func() error { return nil }); err != nil {
		t.Errorf("Safely returned %v for a clean run", err)
	}

	err := Safely(func() error { readPastEnd(nil, 4); return nil })
	pe, ok := AsPanic(err)
	if !ok {
		t.Fatalf("Safely returned %v, want a *PanicError", err)
	}
	if want := "runtime error: index out of range [4] with length 0"; pe.Summary() != want {
		t.Errorf("Summary = %q, want %q", pe.Summary(), want)
	}
	if !strings.Contains(string(pe.Stack), "readPastEnd") {
		t.Errorf("stack does not show where it panicked:\n%s", pe.Stack)
	}
	if !pe.Claim() || pe.Claim() {
		t.Error("Claim: the first caller must get it, and only the first")
	}

	// A value that may hold what a server sent never reaches Error or
	// Summary; Detail quotes it for the log.
	hostile := "unexpected reply <!channel> \x1b[31mS3CRET\x00"
	pe, _ = AsPanic(Safely(func() error { panic(hostile) }))
	for _, text := range []string{pe.Error(), pe.Summary()} {
		if strings.Contains(text, "S3CRET") || strings.Contains(text, "<!channel>") {
			t.Errorf("panic value in %q", text)
		}
	}
	if pe.Summary() != "a panic with a value of type string" {
		t.Errorf("Summary = %q", pe.Summary())
	}
	if d := pe.Detail(); !strings.Contains(d, `\x1b[31mS3CRET\x00`) {
		t.Errorf("Detail = %s, want the value quoted", d)
	}
	// A runtime error wrapped in a library's message keeps only the
	// runtime error's own words.
	wrapped := errors.Join(errors.New("redis: reply "+hostile), runtimeError(t))
	pe, _ = AsPanic(Safely(func() error { panic(wrapped) }))
	if strings.Contains(pe.Summary(), "S3CRET") || !strings.HasPrefix(pe.Summary(), "runtime error: index out of range") {
		t.Errorf("Summary of a wrapped runtime error = %q", pe.Summary())
	}
}

// runtimeError returns a real runtime error, as a library would wrap it.
func runtimeError(t *testing.T) error {
	t.Helper()
	pe, ok := AsPanic(Safely(func() error { readPastEnd(nil, 1); return nil }))
	if !ok {
		t.Fatal("no panic")
	}
	return pe.Value.(error)
}

func TestFleetSurvivesAPanickingProbe(t *testing.T) {
	snap := fixture(t, "redis-7.0.txt", nil, nil)
	mk := func(name string) Instance {
		return Instance{Name: name, Addr: "127.0.0.1:6379", Thresholds: DefaultThresholds()}
	}
	svc := NewService([]Instance{mk("cache-1"), mk("cache-2"), mk("hostile-1"), mk("cache-3"), mk("cache-4")},
		panickingProber{cannedProber: cannedProber{snap}, bad: "hostile-1"}, nil, 4, func() time.Time { return time.Unix(0, 0) })
	var rec panicRecorder
	svc.OnPanic(rec.handle)

	reports, err := svc.Fleet(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 5 {
		t.Fatalf("%d reports, want all 5", len(reports))
	}
	for _, r := range reports {
		if r.Instance != "hostile-1" {
			if r.Failed() {
				t.Errorf("%s failed: %+v", r.Instance, r.Error)
			}
			continue
		}
		if !r.Failed() || r.Error.Class != ClassInternal {
			t.Fatalf("hostile-1: error %+v, want class internal", r.Error)
		}
		if want := "internal error while probing: runtime error: index out of range [12] with length 3"; r.Error.Message != want {
			t.Errorf("message = %q, want %q", r.Error.Message, want)
		}
		if !r.Has("unreachable") || r.Severity != SeverityWarning {
			t.Errorf("hostile-1: findings %v at %s, want unreachable at warning", r.Findings, r.Severity)
		}
	}
	if len(rec.got) != 1 || rec.got[0].where != "probe" || rec.got[0].instance != "hostile-1" ||
		!strings.Contains(string(rec.got[0].err.Stack), "readPastEnd") {
		t.Errorf("panic handler heard %+v, want one probe panic of hostile-1 with its stack", rec.got)
	}

	// A scoped view (a team channel) reports to the same handler.
	svc.SetInstances([]Instance{{Name: "hostile-1", Addr: "127.0.0.1:6379", Tags: []string{"team-a"}, Thresholds: DefaultThresholds()}})
	resp, err := svc.Handle(context.Background(), Command{Verb: "diagnose", Args: []string{"hostile-1"}, Scope: []string{"team-a"}})
	if err != nil || resp.Reports[0].Error == nil || resp.Reports[0].Error.Class != ClassInternal {
		t.Fatalf("scoped diagnose: %v %+v", err, resp)
	}
	if len(rec.got) != 2 {
		t.Errorf("scoped view: the handler heard %d panics, want 2", len(rec.got))
	}
}

// panickingHistory panics when the rules ask for the previous snapshot.
type panickingHistory struct{}

func (panickingHistory) Last(context.Context, string) (*Snapshot, bool) {
	var prev map[string]*Snapshot
	prev["cache-1"].Instance = "x" // a nil map read and a nil pointer write
	return nil, false
}

func TestDiagnoseSurvivesAPanicWhileAnalysing(t *testing.T) {
	snap := fixture(t, "redis-7.0.txt", nil, nil)
	svc := NewService([]Instance{{Name: "cache-1", Addr: "127.0.0.1:6379", Thresholds: DefaultThresholds()}},
		cannedProber{snap}, panickingHistory{}, 1, nil)
	var rec panicRecorder
	svc.OnPanic(rec.handle)
	r, err := svc.Diagnose(context.Background(), "cache-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Error == nil || r.Error.Class != ClassInternal || !strings.HasPrefix(r.Error.Message, "internal error while analysing: runtime error:") {
		t.Fatalf("report error = %+v", r.Error)
	}
	if r.Snapshot == nil || len(r.Findings) != 1 || r.Findings[0].ID != "unreachable" {
		t.Errorf("report keeps the snapshot and says only that it failed: snapshot %v, findings %v", r.Snapshot != nil, r.Findings)
	}
	if len(rec.got) != 1 || rec.got[0].where != "analyse" {
		t.Errorf("panic handler heard %+v", rec.got)
	}
}
