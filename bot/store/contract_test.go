package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redisbot/redisbot/bot/alerts"
	"github.com/redisbot/redisbot/handlers"
)

var errNotPending = errors.New("approval is no longer pending")

func newApproval(id string, at time.Time) Approval {
	return Approval{
		ID:          id,
		Instance:    "cache-1",
		Action:      "memory-purge",
		Params:      map[string]string{"db": "0"},
		State:       "pending",
		RequestedBy: "U100",
		RequestedAt: at,
		ExpiresAt:   at.Add(15 * time.Minute),
		Required:    2,
		Channel:     "C42",
		MessageTS:   "1712345678.000100",
		Plan:        json.RawMessage(`{"steps":["MEMORY PURGE"]}`),
	}
}

func TestApprovalCRUD(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		s := f.s
		a := newApproval("apr-1", f.clock.Now())
		if err := s.CreateApproval(ctx, a); err != nil {
			t.Fatalf("CreateApproval: %v", err)
		}
		if err := s.CreateApproval(ctx, a); !errors.Is(err, ErrExists) {
			t.Fatalf("second CreateApproval = %v, want ErrExists", err)
		}
		if _, err := s.Approval(ctx, "apr-missing"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Approval(missing) = %v, want ErrNotFound", err)
		}

		got, err := s.Approval(ctx, "apr-1")
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.Schema, want.Revision, want.UpdatedAt = SchemaVersion, 1, f.clock.Now()
		sameJSON(t, got, want)

		f.clock.Advance(time.Minute)
		updated, err := s.UpdateApproval(ctx, "apr-1", func(a *Approval) error {
			a.Approvals = append(a.Approvals, Decision{User: "U200", At: f.clock.Now(), Note: "ok"})
			a.State = "approved"
			a.Outcome = json.RawMessage(`{"freed":1024}`)
			return nil
		})
		if err != nil {
			t.Fatalf("UpdateApproval: %v", err)
		}
		if updated.Revision != 2 || updated.State != "approved" || !updated.UpdatedAt.Equal(f.clock.Now()) {
			t.Errorf("updated = revision %d state %q at %v", updated.Revision, updated.State, updated.UpdatedAt)
		}
		stored, err := s.Approval(ctx, "apr-1")
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, stored, updated)

		// fn's error aborts and comes back unchanged.
		_, err = s.UpdateApproval(ctx, "apr-1", func(a *Approval) error {
			a.State = "executed"
			return errNotPending
		})
		if err != errNotPending { //nolint:errorlint // the contract is "unchanged", not just errors.Is
			t.Fatalf("UpdateApproval with failing fn = %v, want errNotPending itself", err)
		}
		if again, _ := s.Approval(ctx, "apr-1"); again.State != "approved" || again.Revision != 2 {
			t.Errorf("aborted update changed the record: state %q revision %d", again.State, again.Revision)
		}

		if _, err := s.UpdateApproval(ctx, "apr-1", func(a *Approval) error { a.ID = "other"; return nil }); err == nil {
			t.Error("UpdateApproval changing the id: no error")
		}
		if _, err := s.UpdateApproval(ctx, "apr-missing", func(*Approval) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateApproval(missing) = %v, want ErrNotFound", err)
		}
		if err := s.CreateApproval(ctx, Approval{}); err == nil {
			t.Error("CreateApproval without an id: no error")
		}
	})
}

// TestUpdateApprovalRace is the remediation flow's safety property: when
// many clicks race to approve, exactly one moves pending to approved.
func TestUpdateApprovalRace(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		stores := []*Store{f.s}
		race(t, f, "one store", stores)
		if f.replica != nil {
			race(t, f, "two replicas", append(stores, f.replica(t)))
		}
	})
}

func race(t *testing.T, f *fixture, name string, stores []*Store) {
	t.Run(name, func(t *testing.T) {
		ctx := context.Background()
		id := "race-" + strings.ReplaceAll(name, " ", "-")
		if err := f.s.CreateApproval(ctx, newApproval(id, f.clock.Now())); err != nil {
			t.Fatal(err)
		}
		const n = 50
		var (
			wins  atomic.Int32
			start = make(chan struct{})
			wg    sync.WaitGroup
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s := stores[i%len(stores)]
				_, err := s.UpdateApproval(ctx, id, func(a *Approval) error {
					if a.State != "pending" {
						return errNotPending
					}
					a.State = "approved"
					a.Approvals = append(a.Approvals, Decision{User: fmt.Sprintf("U%d", i), At: f.clock.Now()})
					return nil
				})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, errNotPending):
					t.Errorf("goroutine %d: %v", i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d updates moved pending to approved, want exactly 1", w)
		}
		a, err := f.s.Approval(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.State != "approved" || a.Revision != 2 || len(a.Approvals) != 1 {
			t.Errorf("after the race: state %q revision %d approvals %d", a.State, a.Revision, len(a.Approvals))
		}
	})
}

func TestApprovalsOrderAndFilter(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		t0 := f.clock.Now()
		// Created out of order, so the listing order cannot come from
		// insertion or from the ids.
		for i, spec := range []struct {
			id    string
			ago   time.Duration
			state string
		}{
			{"b", 3 * time.Minute, "pending"},
			{"e", 1 * time.Minute, "approved"},
			{"a", 5 * time.Minute, "expired"},
			{"d", 2 * time.Minute, "pending"},
			{"c", 4 * time.Minute, "rejected"},
		} {
			a := newApproval(spec.id, t0.Add(-spec.ago))
			a.State = spec.state
			if err := f.s.CreateApproval(ctx, a); err != nil {
				t.Fatalf("%d: %v", i, err)
			}
		}
		ids := func(states ...string) string {
			t.Helper()
			as, err := f.s.Approvals(ctx, states...)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, a := range as {
				out = append(out, a.ID)
			}
			return strings.Join(out, ",")
		}
		for _, tc := range []struct {
			states []string
			want   string
		}{
			{nil, "e,d,b,c,a"},
			{[]string{"pending"}, "d,b"},
			{[]string{"pending", "approved"}, "e,d,b"},
			{[]string{"executed"}, ""},
		} {
			if got := ids(tc.states...); got != tc.want {
				t.Errorf("Approvals(%v) = %s, want %s", tc.states, got, tc.want)
			}
		}
	})
}

func TestAudit(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		t0 := f.clock.Now()
		for i := range 6 {
			inst := []string{"cache-1", "cache-2"}[i%2]
			r := AuditRecord{At: t0.Add(-time.Duration(6-i) * time.Second), Instance: inst, Actor: "U1", Kind: fmt.Sprintf("k%d", i), ApprovalID: "apr-1", Detail: map[string]string{"n": fmt.Sprint(i)}}
			if err := f.s.Audit(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		// Two records at the same instant (the clock's, At left zero):
		// listed in the reverse of the order they were written.
		for _, kind := range []string{"same-1", "same-2"} {
			if err := f.s.Audit(ctx, AuditRecord{Instance: "cache-1", Actor: "bot", Kind: kind}); err != nil {
				t.Fatal(err)
			}
		}
		kinds := func(rs []AuditRecord) string {
			var out []string
			for _, r := range rs {
				out = append(out, r.Kind)
			}
			return strings.Join(out, ",")
		}
		all, err := f.s.AuditLog(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kinds(all), "same-2,same-1,k5,k4,k3,k2,k1,k0"; got != want {
			t.Errorf("AuditLog(all) = %s, want %s", got, want)
		}
		seen := map[string]bool{}
		for _, r := range all {
			if r.ID == "" || seen[r.ID] || r.Schema != SchemaVersion {
				t.Errorf("record %s: id %q (seen %v) schema %d", r.Kind, r.ID, seen[r.ID], r.Schema)
			}
			seen[r.ID] = true
		}
		if same := all[1]; !same.At.Equal(t0) || same.ID >= all[0].ID {
			t.Errorf("defaulted record: at %v (want %v), ids not increasing: %s then %s", same.At, t0, same.ID, all[0].ID)
		}
		if k5 := all[2]; k5.Detail["n"] != "5" || k5.ApprovalID != "apr-1" || k5.Actor != "U1" || k5.Instance != "cache-2" {
			t.Errorf("record lost fields: %+v", k5)
		}
		limited, err := f.s.AuditLog(ctx, "", 3)
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(limited); got != "same-2,same-1,k5" {
			t.Errorf("AuditLog(all, 3) = %s", got)
		}
		one, err := f.s.AuditLog(ctx, "cache-2", 2)
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(one); got != "k5,k3" {
			t.Errorf("AuditLog(cache-2, 2) = %s", got)
		}
		if err := f.s.Audit(ctx, AuditRecord{ID: all[0].ID, At: all[0].At, Kind: "again"}); !errors.Is(err, ErrExists) {
			t.Errorf("rewriting an audit record = %v, want ErrExists", err)
		}
	})
}

func TestAlerts(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		now := f.clock.Now()
		a := Alert{Alert: alerts.Alert{Instance: "cache-1", Finding: "memory-high", State: alerts.StateFiring, Severity: handlers.SeverityWarning, PendingSince: now, FiringSince: now, LastNotified: now, ClearSince: now, Summary: "used 95%"}, Channel: "C1", MessageTS: "1.1", Mark: "ack U1"}
		for _, x := range []Alert{a, {Alert: alerts.Alert{Instance: "cache-10", Finding: "frag-high", State: alerts.StateFiring}}, {Alert: alerts.Alert{Instance: "cache-1", Finding: "evictions", State: alerts.StateResolved}}} {
			if err := f.s.PutAlert(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		got, err := f.s.Alert(ctx, "cache-1", "memory-high")
		if err != nil {
			t.Fatal(err)
		}
		a.Schema = SchemaVersion
		sameJSON(t, got, a)

		a.State, a.Severity = alerts.StateFiring, handlers.SeverityCritical
		if err := f.s.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
		list, err := f.s.Alerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, x := range list {
			keys = append(keys, x.Instance+"/"+x.Finding+"/"+x.Severity.String())
		}
		if got, want := strings.Join(keys, ","), "cache-1/evictions/none,cache-1/memory-high/critical,cache-10/frag-high/none"; got != want {
			t.Errorf("Alerts = %s, want %s", got, want)
		}

		if err := f.s.DeleteAlert(ctx, "cache-1", "memory-high"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Alert(ctx, "cache-1", "memory-high"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Alert after delete = %v, want ErrNotFound", err)
		}
		if err := f.s.DeleteAlert(ctx, "cache-1", "memory-high"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteAlert = %v, want ErrNotFound", err)
		}
		if err := f.s.PutAlert(ctx, Alert{Alert: alerts.Alert{Instance: "cache-1"}}); err == nil {
			t.Error("PutAlert without a finding: no error")
		}
		if err := f.s.PutAlert(ctx, Alert{Alert: alerts.Alert{Instance: "a\x00b", Finding: "x"}}); err == nil {
			t.Error("PutAlert with NUL in the instance: no error")
		}
	})
}

// TestAlertsInBatches writes and deletes alerts as a sweep does, many at
// once: what a batch writes reads back as PutAlert's would, a bad key
// fails alone, and deleting alerts already gone is not an error.
func TestAlertsInBatches(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		var batch []Alert
		for i := range 1200 { // more than one delete batch
			batch = append(batch, Alert{Alert: alerts.Alert{Instance: fmt.Sprintf("cache-%04d", i), Finding: "memory-high", State: alerts.StateFiring, Severity: handlers.SeverityWarning}, Channel: "C1"})
		}
		bad := Alert{Alert: alerts.Alert{Instance: "a\x00b", Finding: "x"}}
		err := f.s.PutAlerts(ctx, append([]Alert{bad}, batch...))
		if err == nil || !strings.Contains(err.Error(), "NUL") {
			t.Errorf("PutAlerts with one bad key = %v, want its error", err)
		}
		list, err := f.s.Alerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != len(batch) {
			t.Fatalf("%d alerts stored, want the %d good ones", len(list), len(batch))
		}
		want := batch[7]
		want.Schema = SchemaVersion
		sameJSON(t, list[7], want)

		var gone []AlertKey
		for _, a := range batch[:1100] {
			gone = append(gone, AlertKey{a.Instance, a.Finding})
		}
		gone = append(gone, AlertKey{"never-stored", "x"})
		if err := f.s.DeleteAlerts(ctx, gone); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteAlerts(ctx, gone[:10]); err != nil {
			t.Errorf("deleting alerts already gone = %v, want nil", err)
		}
		if list, err = f.s.Alerts(ctx); err != nil {
			t.Fatal(err)
		}
		if len(list) != 100 || list[0].Instance != "cache-1100" {
			t.Errorf("after the deletes: %d alerts, want the 100 from cache-1100", len(list))
		}
		if err := f.s.PutAlerts(ctx, nil); err != nil {
			t.Errorf("PutAlerts of nothing = %v", err)
		}
	})
}

// TestAlertLegacyEncoding loads an alert as versions before typed alert
// records wrote it: the lifecycle's times as RFC 3339 strings in "fields".
func TestAlertLegacyEncoding(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		old := `{"schema":1,"instance":"cache-1","finding":"oom-rejecting","state":"firing","severity":"critical",` +
			`"since":"2026-12-01T10:00:00Z","last_change":"2026-12-01T10:05:00Z","last_notified":"2026-12-01T10:05:00Z",` +
			`"channel":"C1","message_ts":"1.1","fields":{"summary":"writes failed","clear_since":"2026-12-01T10:20:00.5Z",` +
			`"resolved_at":"2026-11-30T09:00:00Z","notified":"3","mark":"ack U1"}}`
		key, err := joinKey("alert", "cache-1", "oom-rejecting")
		if err != nil {
			t.Fatal(err)
		}
		if err := f.s.putJSON(ctx, kindAlerts, key, json.RawMessage(old)); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.Alert(ctx, "cache-1", "oom-rejecting")
		if err != nil {
			t.Fatal(err)
		}
		at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339Nano, s); return v }
		want := Alert{Schema: 1, Channel: "C1", MessageTS: "1.1", Mark: "ack U1", Alert: alerts.Alert{
			Instance: "cache-1", Finding: "oom-rejecting", State: alerts.StateFiring, Severity: handlers.SeverityCritical,
			PendingSince: at("2026-12-01T10:00:00Z"), FiringSince: at("2026-12-01T10:05:00Z"), LastNotified: at("2026-12-01T10:05:00Z"),
			ClearSince: at("2026-12-01T10:20:00.5Z"), ResolvedAt: at("2026-11-30T09:00:00Z"), Notified: handlers.SeverityCritical, Summary: "writes failed",
		}}
		sameJSON(t, got, want)
	})
}

func TestSilences(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		now := f.clock.Now()
		x := Silence{ID: "sil-2", Instance: "cache-*", Finding: "frag-high", CreatedBy: "U1", Reason: "defrag running", CreatedAt: now, Until: now.Add(time.Hour)}
		for _, s := range []Silence{x, {ID: "sil-1", Instance: "cache-9", Until: now}} {
			if err := f.s.PutSilence(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		list, err := f.s.Silences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ID != "sil-1" {
			t.Fatalf("Silences = %+v", list)
		}
		x.Schema = SchemaVersion
		sameJSON(t, list[1], x)
		if err := f.s.DeleteSilence(ctx, "sil-1"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteSilence(ctx, "sil-1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteSilence = %v, want ErrNotFound", err)
		}
		if list, _ := f.s.Silences(ctx); len(list) != 1 {
			t.Errorf("after delete: %d silences", len(list))
		}
		if err := f.s.PutSilence(ctx, Silence{Instance: "x"}); err == nil {
			t.Error("PutSilence without an id: no error")
		}
	})
}

func TestAcks(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		now := f.clock.Now()
		x := Ack{Instance: "cache-1", Finding: "oom-rejecting", By: "U0OP", At: now, Episode: now.Add(-time.Hour)}
		for _, a := range []Ack{x, {Instance: "cache-0", Finding: "frag-high", By: "U1", At: now}} {
			if err := f.s.PutAck(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		list, err := f.s.Acks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Instance != "cache-0" {
			t.Fatalf("Acks = %+v", list)
		}
		x.Schema = SchemaVersion
		sameJSON(t, list[1], x)
		if err := f.s.DeleteAck(ctx, "cache-1", "oom-rejecting"); err != nil {
			t.Fatal(err)
		}
		if err := f.s.DeleteAck(ctx, "cache-1", "oom-rejecting"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteAck = %v, want ErrNotFound", err)
		}
		if err := f.s.PutAck(ctx, Ack{Instance: "cache-1"}); err == nil {
			t.Error("PutAck without a finding: no error")
		}
	})
}

// series makes n minute samples from start with values that exercise the
// precision: odd byte counts, ratios with three decimals.
func series(start time.Time, n int) []handlers.Point {
	out := make([]handlers.Point, n)
	for i := range out {
		out[i] = handlers.Point{
			At:             start.Add(time.Duration(i) * time.Minute),
			UsedMemory:     1<<30 + int64(i)*7919 + 333,
			RSS:            1<<30 + 1<<27 + int64(i)*1237,
			Peak:           1<<30 + int64(i)*7919 + 600,
			Maxmemory:      2 << 30,
			EvictedKeys:    int64(i / 10),
			OOMErrors:      int64(i / 50),
			Keys:           1_000_000 + int64(i)*13,
			FragRatio:      1.125 + float64(i)/1000,
			AllocFragRatio: 1.013,
		}
	}
	return out
}

// closeEnough checks a stored sample against what was written, within the
// documented precision.
func closeEnough(t *testing.T, i int, got, want handlers.Point) {
	t.Helper()
	bytesOK := func(g, w int64) bool { return g-w <= 512 && w-g <= 512 }
	ratioOK := func(g, w float64) bool { return math.Abs(g-w) <= 0.005+1e-9 }
	if !got.At.Equal(want.At.Truncate(time.Second)) ||
		!bytesOK(got.UsedMemory, want.UsedMemory) || !bytesOK(got.RSS, want.RSS) ||
		!bytesOK(got.Peak, want.Peak) || !bytesOK(got.Maxmemory, want.Maxmemory) ||
		got.EvictedKeys != want.EvictedKeys || got.OOMErrors != want.OOMErrors || got.Keys != want.Keys ||
		!ratioOK(got.FragRatio, want.FragRatio) || !ratioOK(got.AllocFragRatio, want.AllocFragRatio) {
		t.Errorf("sample %d:\n got %+v\nwant %+v", i, got, want)
	}
}

func TestSamples(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		// Start 10 minutes before an hour, with a sub-second offset that
		// history drops: 150 samples span four hour blocks.
		start := f.clock.Now().Truncate(time.Hour).Add(-10*time.Minute + 250*time.Millisecond)
		in := series(start, 150)
		for _, x := range in {
			if err := f.s.AppendSample(ctx, "cache-1", x); err != nil {
				t.Fatal(err)
			}
		}
		// A neighbour whose name extends ours must not leak into ours.
		if err := f.s.AppendSample(ctx, "cache-10", in[20]); err != nil {
			t.Fatal(err)
		}
		all, err := f.s.Samples(ctx, "cache-1", start.Add(-time.Hour), start.Add(5*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(in) {
			t.Fatalf("Samples = %d samples, want %d", len(all), len(in))
		}
		for i := range in {
			closeEnough(t, i, all[i], in[i])
		}

		// Inclusive range across blocks: samples 70..130.
		got, err := f.s.Samples(ctx, "cache-1", in[70].At, in[130].At)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 61 || !got[0].At.Equal(all[70].At) || !got[60].At.Equal(all[130].At) {
			t.Fatalf("Samples(70..130) = %d samples from %v to %v", len(got), got[0].At, got[len(got)-1].At)
		}
		if got, _ := f.s.Samples(ctx, "cache-1", in[10].At, in[5].At); len(got) != 0 {
			t.Errorf("reversed range: %d samples", len(got))
		}

		// Out of order and repeated: history stays sorted, the same
		// second is replaced rather than duplicated.
		late := in[3]
		late.At = in[3].At.Add(30 * time.Second)
		late.Keys = 42
		retry := in[5]
		retry.Keys = 7
		for _, x := range []handlers.Point{late, retry} {
			if err := f.s.AppendSample(ctx, "cache-1", x); err != nil {
				t.Fatal(err)
			}
		}
		got, err = f.s.Samples(ctx, "cache-1", in[0].At, in[9].At)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 11 || got[4].Keys != 42 || got[6].Keys != 7 {
			t.Errorf("after out-of-order append: %d samples, keys %d and %d", len(got), got[4].Keys, got[6].Keys)
		}
		for i := 1; i < len(got); i++ {
			if !got[i].At.After(got[i-1].At) {
				t.Errorf("samples out of order at %d: %v then %v", i, got[i-1].At, got[i].At)
			}
		}
	})
}

func TestPrune(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		s := f.s
		t0 := f.clock.Now()
		if err := s.AppendSample(ctx, "cache-1", handlers.Point{At: t0.Add(-defaultRetention - 2*time.Hour), UsedMemory: 1}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Samples(ctx, "cache-1", time.Time{}, t0); len(got) != 0 {
			t.Errorf("a sample older than the retention was kept: %+v", got)
		}
		for _, x := range series(t0, 3) {
			if err := s.AppendSample(ctx, "cache-1", x); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Audit(ctx, AuditRecord{Instance: "cache-1", Kind: "old"}); err != nil {
			t.Fatal(err)
		}

		// Two hours past the retention of t0's block: it goes, a sample
		// taken now stays.
		f.clock.Advance(defaultRetention + 2*time.Hour)
		if err := s.AppendSample(ctx, "cache-1", handlers.Point{UsedMemory: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		if err := s.Audit(ctx, AuditRecord{Instance: "cache-1", Kind: "recent"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.Samples(ctx, "cache-1", time.Time{}, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].UsedMemory != 1<<20 {
			t.Errorf("after Prune: %+v, want only the recent sample", got)
		}
		log, _ := s.AuditLog(ctx, "", 0)
		if len(log) != 2 {
			t.Errorf("audit within its 90 days was pruned: %d records", len(log))
		}

		f.clock.Advance(defaultAuditRetention - defaultRetention)
		if err := s.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		log, _ = s.AuditLog(ctx, "", 0)
		if len(log) != 1 || log[0].Kind != "recent" {
			t.Errorf("after the audit retention: %+v, want only the recent record", log)
		}
		if got, _ := s.Samples(ctx, "cache-1", time.Time{}, f.clock.Now()); len(got) != 0 {
			t.Errorf("history outlived its retention: %+v", got)
		}
	})
}

func TestSnapshots(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, ok := f.s.Last(ctx, "cache-1"); ok {
			t.Fatal("Last on an empty store reported a snapshot")
		}
		snap := &handlers.Snapshot{
			Instance:    "cache-1",
			ProbedAt:    f.clock.Now(),
			RoundTrip:   1500 * time.Microsecond,
			Info:        handlers.ParseInfo("# Memory\r\nused_memory:1048576\r\nmaxmemory_policy:allkeys-lru\r\nmem_fragmentation_ratio:1.42\r\n"),
			Config:      map[string]string{"maxmemory": "104857600", "activedefrag": "no"},
			MemoryStats: map[string]float64{"db.0.overhead.hashtable.main": 4096},
			Doctor:      "Sam, I have no memory problems",
			Missing:     []string{"LATENCY DOCTOR: noperm"},
		}
		if err := f.s.PutSnapshot(ctx, snap); err != nil {
			t.Fatal(err)
		}
		got, ok := f.s.Last(ctx, "cache-1")
		if !ok {
			t.Fatal("Last: no snapshot")
		}
		sameJSON(t, got, snap)
		if !maps.Equal(got.Info, snap.Info) || !maps.Equal(got.Config, snap.Config) {
			t.Errorf("Info or Config changed: %v %v", got.Info, got.Config)
		}

		next := *snap
		next.Info = handlers.Info{"used_memory": "2097152"}
		if err := f.s.PutSnapshot(ctx, &next); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.s.Last(ctx, "cache-1"); got.Info["used_memory"] != "2097152" {
			t.Errorf("Last after a second put = %v", got.Info)
		}
		if err := f.s.PutSnapshot(ctx, nil); err == nil {
			t.Error("PutSnapshot(nil): no error")
		}
	})
}

func TestFacts(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		got, err := f.s.Facts(ctx, "cache-1")
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("Facts before any = %v, %v; want an empty map", got, err)
		}
		for _, kv := range [][2]string{{"defrag_supported", "no"}, {"memory_purge", "yes"}, {"defrag_supported", "yes"}} {
			if err := f.s.SetFact(ctx, "cache-1", kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.s.SetFact(ctx, "cache-2", "defrag_supported", "no"); err != nil {
			t.Fatal(err)
		}
		got, err = f.s.Facts(ctx, "cache-1")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"defrag_supported": "yes", "memory_purge": "yes"}; !maps.Equal(got, want) {
			t.Errorf("Facts = %v, want %v", got, want)
		}
		if err := f.s.SetFact(ctx, "cache-1", "", "x"); err == nil {
			t.Error("SetFact with an empty key: no error")
		}
	})
}

func TestOnce(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		// Long enough that a loaded CI machine does not expire it between
		// two calls; Redis really waits it out.
		const ttl = time.Second
		check := func(key string, want bool) {
			t.Helper()
			got, err := f.s.Once(ctx, key, ttl)
			if err != nil || got != want {
				t.Errorf("Once(%s) = %v, %v; want %v", key, got, err, want)
			}
		}
		check("env-1", true)
		check("env-1", false)
		check("env-2", true)
		f.elapse(ttl + 100*time.Millisecond)
		check("env-1", true)

		// Racing replicas: one winner.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if ok, err := f.s.Once(ctx, "env-3", time.Minute); err != nil {
					t.Error(err)
				} else if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d racing Once calls won, want 1", wins.Load())
		}
		if _, err := f.s.Once(ctx, "env-4", 0); err == nil {
			t.Error("Once with ttl 0: no error")
		}
	})
}

func TestLeases(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		s := f.s
		const ttl = time.Second // see TestOnce
		acquire := func(holder string, wantOK bool) Lease {
			t.Helper()
			l, ok, err := s.AcquireLease(ctx, "cron", holder, ttl)
			if err != nil || ok != wantOK {
				t.Fatalf("AcquireLease(%s) = %+v, %v, %v; want ok=%v", holder, l, ok, err, wantOK)
			}
			return l
		}
		checkLease := func(token int64, want bool) {
			t.Helper()
			if got, err := s.CheckLease(ctx, "cron", token); err != nil || got != want {
				t.Errorf("CheckLease(%d) = %v, %v; want %v", token, got, err, want)
			}
		}

		first := acquire("r1", true)
		if first.Holder != "r1" || first.Token <= 0 || first.Name != "cron" || !first.Expires.After(time.Now().Add(-time.Minute)) {
			t.Errorf("first lease = %+v", first)
		}
		f.elapse(50 * time.Millisecond)
		renewed := acquire("r1", true)
		if renewed.Token != first.Token || renewed.Expires.Before(first.Expires) {
			t.Errorf("renewal = %+v, want token %d and a later expiry than %v", renewed, first.Token, first.Expires)
		}
		if other := acquire("r2", false); other.Holder != "r1" || other.Token != first.Token {
			t.Errorf("refused acquire reported %+v, want r1's lease", other)
		}
		checkLease(first.Token, true)
		if err := s.ReleaseLease(ctx, "cron", "r2"); err != nil {
			t.Fatal(err)
		}
		checkLease(first.Token, true) // r2 cannot release r1's lease

		// r1 pauses past its ttl: r2 takes over with a larger token and
		// r1's fencing check fails.
		f.elapse(ttl + 100*time.Millisecond)
		checkLease(first.Token, false)
		second := acquire("r2", true)
		if second.Token <= first.Token {
			t.Errorf("new holder's token %d is not above %d", second.Token, first.Token)
		}
		checkLease(first.Token, false)
		checkLease(second.Token, true)

		if err := s.ReleaseLease(ctx, "cron", "r2"); err != nil {
			t.Fatal(err)
		}
		checkLease(second.Token, false)
		if third := acquire("r1", true); third.Token <= second.Token {
			t.Errorf("token after release %d is not above %d", third.Token, second.Token)
		}
		// Leases are independent by name.
		if _, ok, err := s.AcquireLease(ctx, "remediate:cache-1", "r2", ttl); err != nil || !ok {
			t.Errorf("another lease: ok=%v err=%v", ok, err)
		}
		if _, _, err := s.AcquireLease(ctx, "cron", "", ttl); err == nil {
			t.Error("AcquireLease without a holder: no error")
		}
	})
}

// TestSchemaTolerance reads records written by older and newer versions:
// without "schema" (0) and with schema 2 and fields this version does not
// know.
func TestSchemaTolerance(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		raw := map[string]string{
			"old": `{"id":"old","instance":"cache-1","action":"memory-purge","state":"pending","requested_by":"U1","requested_at":"2025-01-02T03:04:05Z","required":1}`,
			"new": `{"schema":2,"id":"new","instance":"cache-1","action":"memory-purge","state":"pending","requested_by":"U1","requested_at":"2025-01-02T03:04:06Z","required":1,"revision":4,"risk":"high","approvals":[{"user":"U2","at":"2025-01-02T03:05:00Z","weight":2}]}`,
		}
		for id, v := range raw {
			if err := f.s.b.put(ctx, kindApprovals, id, []byte(v), 0); err != nil {
				t.Fatal(err)
			}
		}
		old, err := f.s.Approval(ctx, "old")
		if err != nil {
			t.Fatalf("schema 0: %v", err)
		}
		if old.Schema != 0 || old.Action != "memory-purge" || old.Revision != 0 {
			t.Errorf("schema 0 read as %+v", old)
		}
		newer, err := f.s.Approval(ctx, "new")
		if err != nil {
			t.Fatalf("schema 2: %v", err)
		}
		if newer.Schema != 2 || newer.Revision != 4 || len(newer.Approvals) != 1 || newer.Approvals[0].User != "U2" {
			t.Errorf("schema 2 read as %+v", newer)
		}
		if list, err := f.s.Approvals(ctx); err != nil || len(list) != 2 {
			t.Errorf("Approvals over mixed schemas = %d, %v", len(list), err)
		}

		// Updating keeps what a newer writer added.
		up, err := f.s.UpdateApproval(ctx, "new", func(a *Approval) error { a.State = "approved"; return nil })
		if err != nil {
			t.Fatal(err)
		}
		if up.Revision != 5 || up.Schema != SchemaVersion {
			t.Errorf("updated schema-2 record: revision %d schema %d", up.Revision, up.Schema)
		}
		stored, err := f.s.b.get(ctx, kindApprovals, "new")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(stored), `"risk":"high"`) || !strings.Contains(string(stored), `"state":"approved"`) {
			t.Errorf("update dropped the unknown field or the change: %s", stored)
		}
		if up, err := f.s.UpdateApproval(ctx, "old", func(a *Approval) error { return nil }); err != nil || up.Revision != 1 || up.Schema != SchemaVersion {
			t.Errorf("updated schema-0 record: %+v, %v", up, err)
		}

		// The same for an alert and a snapshot.
		if err := f.s.b.put(ctx, kindAlerts, "cache-1\x00oom", []byte(`{"instance":"cache-1","finding":"oom","state":"firing","escalation":{"level":2}}`), 0); err != nil {
			t.Fatal(err)
		}
		if a, err := f.s.Alert(ctx, "cache-1", "oom"); err != nil || a.State != "firing" {
			t.Errorf("alert with an unknown field: %+v, %v", a, err)
		}
		if err := f.s.b.put(ctx, kindSnapshots, "cache-9", []byte(`{"schema":3,"snapshot":{"instance":"cache-9","info":{"used_memory":"1"},"shards":4}}`), 0); err != nil {
			t.Fatal(err)
		}
		if snap, ok := f.s.Last(ctx, "cache-9"); !ok || snap.Info["used_memory"] != "1" {
			t.Errorf("snapshot of schema 3: %+v, %v", snap, ok)
		}
	})
}

// TestHistoryCompatibility: a block from a newer writer with an extra
// column reads fine and keeps the column when this version appends; a
// block of an unknown version is skipped, not misread.
func TestHistoryCompatibility(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		hour := f.clock.Now().UTC().Truncate(time.Hour)
		row := append(sampleRow(handlers.Point{At: hour, UsedMemory: 1 << 20, Keys: 5}), 777)
		wide := block{cols: numCols + 1, rows: [][]int64{row}}
		if err := f.s.b.put(ctx, kindHistory, historyKey("cache-1", hour), wide.encode(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := f.s.AppendSample(ctx, "cache-1", handlers.Point{At: hour.Add(time.Minute), UsedMemory: 2 << 20, Keys: 6}); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.Samples(ctx, "cache-1", hour, hour.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].UsedMemory != 1<<20 || got[1].Keys != 6 {
			t.Errorf("wide block read as %+v", got)
		}
		v, err := f.s.b.get(ctx, kindHistory, historyKey("cache-1", hour))
		if err != nil {
			t.Fatal(err)
		}
		blk, err := decodeBlock(v)
		if err != nil {
			t.Fatal(err)
		}
		if blk.cols != numCols+1 || blk.rows[1][numCols] != 777 {
			t.Errorf("the extra column was not carried: cols %d rows %v", blk.cols, blk.rows)
		}

		next := hour.Add(time.Hour)
		if err := f.s.b.put(ctx, kindHistory, historyKey("cache-1", next), []byte{2, 1, 0}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := f.s.Samples(ctx, "cache-1", hour, next.Add(time.Hour)); err != nil || len(got) != 2 {
			t.Errorf("with a block of version 2: %d samples, %v", len(got), err)
		}
		if err := f.s.AppendSample(ctx, "cache-1", handlers.Point{At: next}); err == nil {
			t.Error("appending to a block of an unknown version: no error")
		}
	})
}

func TestListPaging(t *testing.T) {
	contract(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		// More than a Redis page, with a gap of deleted keys.
		n := listPage*2 + 7
		for i := range n {
			if err := f.s.PutSilence(ctx, Silence{ID: fmt.Sprintf("s%05d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		for i := 100; i < 200; i++ {
			if err := f.s.DeleteSilence(ctx, fmt.Sprintf("s%05d", i)); err != nil {
				t.Fatal(err)
			}
		}
		list, err := f.s.Silences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != n-100 || !slices.IsSortedFunc(list, func(a, b Silence) int { return strings.Compare(a.ID, b.ID) }) {
			t.Errorf("Silences = %d, sorted %v", len(list), slices.IsSortedFunc(list, func(a, b Silence) int { return strings.Compare(a.ID, b.ID) }))
		}
		for i := range n {
			if err := f.s.Audit(ctx, AuditRecord{Instance: "cache-1", Kind: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		log, err := f.s.AuditLog(ctx, "cache-1", listPage+3)
		if err != nil {
			t.Fatal(err)
		}
		if len(log) != listPage+3 || log[0].Kind != fmt.Sprint(n-1) || log[len(log)-1].Kind != fmt.Sprint(n-listPage-3) {
			t.Errorf("AuditLog across pages: %d records from %s to %s", len(log), log[0].Kind, log[len(log)-1].Kind)
		}
	})
}
