package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// get fetches path from srv and returns the status and body.
func get(t *testing.T, srv *httptest.Server, path string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

func TestRecordersShowInMetrics(t *testing.T) {
	m := New()
	m.now = func() time.Time { return t0 }

	m.Command("info", "ok", 20*time.Millisecond)
	m.Command("info", "ok", 40*time.Millisecond)
	m.Command("flush", "denied", time.Millisecond)
	m.Ack(time.Millisecond)
	m.Sweep(2*time.Second, map[string]int{"timeout": 2, "auth": 1, "refused": 0})
	m.Sweep(time.Second, map[string]int{"timeout": 1})
	m.Alerts(map[string]int{"firing": 3, "pending": 1})
	m.Approval("requested")
	m.Approval("approved")
	m.Approval("approved")
	m.Remediation("memory-purge", "ok")
	m.Remediation("client-kill", "verify-failed")
	m.SlackError("chat.postMessage", true)
	m.SlackError("chat.postMessage", false)
	m.SlackError("chat.update", false)
	m.StoreError("put_alert")
	m.SlowLane("moved")
	m.SlowLane("moved")
	m.SlowLane("refused")

	srv := httptest.NewServer(m.Handler(Checks{}, nil, nil))
	defer srv.Close()

	const want = `
# HELP redisbot_commands_total Commands handled, by verb and outcome.
# TYPE redisbot_commands_total counter
redisbot_commands_total{outcome="denied",verb="flush"} 1
redisbot_commands_total{outcome="ok",verb="info"} 2
# HELP redisbot_sweeps_total Scheduled sweeps completed.
# TYPE redisbot_sweeps_total counter
redisbot_sweeps_total 2
# HELP redisbot_probe_errors_total Probe errors during sweeps, by error class.
# TYPE redisbot_probe_errors_total counter
redisbot_probe_errors_total{class="auth"} 1
redisbot_probe_errors_total{class="timeout"} 3
# HELP redisbot_last_sweep_timestamp_seconds Unix time at which the last sweep completed.
# TYPE redisbot_last_sweep_timestamp_seconds gauge
redisbot_last_sweep_timestamp_seconds 1.7408304e+09
# HELP redisbot_alerts Alerts currently in each state.
# TYPE redisbot_alerts gauge
redisbot_alerts{state="firing"} 3
redisbot_alerts{state="pending"} 1
# HELP redisbot_approvals_total Approval requests reaching each state.
# TYPE redisbot_approvals_total counter
redisbot_approvals_total{state="approved"} 2
redisbot_approvals_total{state="requested"} 1
# HELP redisbot_remediations_total Remediations run, by action and outcome.
# TYPE redisbot_remediations_total counter
redisbot_remediations_total{action="client-kill",outcome="verify-failed"} 1
redisbot_remediations_total{action="memory-purge",outcome="ok"} 1
# HELP redisbot_slack_errors_total Failed Slack API calls, by method, rate limiting included.
# TYPE redisbot_slack_errors_total counter
redisbot_slack_errors_total{method="chat.postMessage"} 2
redisbot_slack_errors_total{method="chat.update"} 1
# HELP redisbot_slack_rate_limited_total Slack API calls refused by rate limiting, by method.
# TYPE redisbot_slack_rate_limited_total counter
redisbot_slack_rate_limited_total{method="chat.postMessage"} 1
# HELP redisbot_store_errors_total Failed store operations, by operation.
# TYPE redisbot_store_errors_total counter
redisbot_store_errors_total{op="put_alert"} 1
# HELP redisbot_slack_slow_lane_total Slack commands and the slow lane, by how: sent (about an instance that does not answer, from the start), moved (still running after slow_after), held (still running, but the lane was full: it kept its worker), refused (the lane's queue was full).
# TYPE redisbot_slack_slow_lane_total counter
redisbot_slack_slow_lane_total{how="moved"} 2
redisbot_slack_slow_lane_total{how="refused"} 1
`
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(want),
		"redisbot_commands_total", "redisbot_sweeps_total", "redisbot_probe_errors_total",
		"redisbot_last_sweep_timestamp_seconds", "redisbot_alerts", "redisbot_approvals_total",
		"redisbot_remediations_total", "redisbot_slack_errors_total",
		"redisbot_slack_rate_limited_total", "redisbot_store_errors_total", "redisbot_slack_slow_lane_total",
	); err != nil {
		t.Error(err)
	}

	// Histograms: check counts, sums and the edges of the bucket layouts
	// rather than every bucket line.
	status, body := get(t, srv, "/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: status %d", status)
	}
	for _, line := range []string{
		`redisbot_command_duration_seconds_count{verb="info"} 2`,
		`redisbot_command_duration_seconds_sum{verb="info"} 0.06`,
		`redisbot_command_duration_seconds_count{verb="flush"} 1`,
		`redisbot_ack_latency_seconds_bucket{le="0.0005"} 0`,
		`redisbot_ack_latency_seconds_bucket{le="0.001"} 1`,
		`redisbot_ack_latency_seconds_bucket{le="1"} 1`,
		`redisbot_ack_latency_seconds_count 1`,
		`redisbot_sweep_duration_seconds_count 2`,
		`redisbot_sweep_duration_seconds_sum 3`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	if strings.Contains(body, `class="refused"`) {
		t.Error("/metrics has a probe error series for a class with no errors")
	}
}

func TestAlertsStateAbsentReadsZero(t *testing.T) {
	m := New()
	m.Alerts(map[string]int{"firing": 2, "pending": 1})
	m.Alerts(map[string]int{"pending": 4})

	if got := testutil.ToFloat64(m.alerts.WithLabelValues("firing")); got != 0 {
		t.Errorf("firing = %v after it left the report, want 0", got)
	}
	if got := testutil.ToFloat64(m.alerts.WithLabelValues("pending")); got != 4 {
		t.Errorf("pending = %v, want 4", got)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	m.Command("info", "ok", time.Second)
	m.Ack(time.Millisecond)
	m.Sweep(time.Second, map[string]int{"timeout": 1})
	m.Alerts(map[string]int{"firing": 1})
	m.Approval("approved")
	m.Remediation("memory-purge", "ok")
	m.SlackError("chat.postMessage", true)
	m.StoreError("put_alert")
	m.SlowLane("moved")
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}

	srv := httptest.NewServer(m.Handler(Checks{}, nil, nil))
	defer srv.Close()
	if status, body := get(t, srv, "/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\\n\"", status, body)
	}
	if status, _ := get(t, srv, "/readyz"); status != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", status)
	}
	if status, _ := get(t, srv, "/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics = %d, want 404 when metrics are off", status)
	}
}

func TestHealthz(t *testing.T) {
	// Liveness ignores readiness: a failing store must not get the process
	// restarted.
	c := Checks{
		SlackConnected: func() bool { return false },
		StorePing:      func(context.Context) error { return errors.New("down") },
	}
	srv := httptest.NewServer(New().Handler(c, nil, nil))
	defer srv.Close()
	if status, body := get(t, srv, "/healthz"); status != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 \"ok\\n\"", status, body)
	}
}

func TestReadyz(t *testing.T) {
	up := func() bool { return true }
	down := func() bool { return false }
	pingOK := func(context.Context) error { return nil }
	pingErr := func(context.Context) error { return errors.New("bolt: database not open") }
	// The store's own errors start with "store: ", which /readyz must not
	// say twice.
	storeErr := func(context.Context) error {
		return errors.New("store: facts \"*readyz*\": store: redis GET facts: connection refused")
	}

	tests := []struct {
		name       string
		checks     Checks
		wantStatus int
		wantBody   string
	}{
		{
			name:       "all pass",
			checks:     Checks{SlackConnected: up, StorePing: pingOK},
			wantStatus: http.StatusOK,
			wantBody:   "ok\n",
		},
		{
			name:       "no checks apply",
			wantStatus: http.StatusOK,
			wantBody:   "ok\n",
		},
		{
			name:       "slack down",
			checks:     Checks{SlackConnected: down, StorePing: pingOK},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   "slack: not connected\n",
		},
		{
			name:       "store error",
			checks:     Checks{SlackConnected: up, StorePing: pingErr},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   "store: bolt: database not open\n",
		},
		{
			name:       "store error named once",
			checks:     Checks{SlackConnected: up, StorePing: storeErr},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   "store: facts \"*readyz*\": store: redis GET facts: connection refused\n",
		},
		{
			name:       "everything fails",
			checks:     Checks{SlackConnected: down, StorePing: pingErr},
			wantStatus: http.StatusServiceUnavailable,
			wantBody:   "slack: not connected\nstore: bolt: database not open\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(New().Handler(tt.checks, nil, nil))
			defer srv.Close()

			status, body := get(t, srv, "/readyz")
			if status != tt.wantStatus || body != tt.wantBody {
				t.Errorf("/readyz = %d %q, want %d %q", status, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

// A follower is as ready as the leader: nothing in /readyz depends on this
// replica having swept, however long it has followed; the fleet's sweep
// freshness is in /metrics, read from the shared store.
func TestFollowerReadyAndFleetSweepAge(t *testing.T) {
	m := New()
	now := t0.Add(time.Hour)
	m.now = func() time.Time { return now }
	srv := httptest.NewServer(m.Handler(Checks{SlackConnected: func() bool { return true }, StorePing: func(context.Context) error { return nil }}, nil, nil))
	defer srv.Close()
	if status, body := get(t, srv, "/readyz"); status != http.StatusOK {
		t.Errorf("follower /readyz = %d %q", status, body)
	}
	_, body := get(t, srv, "/metrics")
	if strings.Contains(body, "redisbot_fleet_last_sweep") {
		t.Errorf("a fleet sweep age before any is known:\n%s", grepLines(body, "fleet"))
	}
	if !strings.Contains(body, "redisbot_leader 0") {
		t.Errorf("/metrics lacks redisbot_leader 0")
	}
	m.Leading(true)
	m.FleetSweep(t0.Add(59 * time.Minute))
	m.Fenced("slack")
	m.DedupeLocal()
	_, body = get(t, srv, "/metrics")
	for _, want := range []string{"redisbot_leader 1", "redisbot_fleet_last_sweep_age_seconds 60",
		fmt.Sprintf("redisbot_fleet_last_sweep_timestamp_seconds %g", float64(t0.Add(59*time.Minute).Unix())),
		`redisbot_fenced_total{what="slack"} 1`, "redisbot_envelope_dedupe_local_total 1"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(body, "leader|fleet|fenced|dedupe"))
		}
	}
}

// grepLines keeps the lines of text matching the regexp, for failures.
func grepLines(text, re string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if regexp.MustCompile(re).MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestReadinessStoreHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		// A ping that ignores its context must still fail readiness at 1s.
		hang := func(context.Context) error { <-release; return nil }

		start := time.Now()
		failed := readiness(t.Context(), Checks{StorePing: hang})
		if took := time.Since(start); took != storePingTimeout {
			t.Errorf("readiness took %v, want %v", took, storePingTimeout)
		}
		want := "store: no answer within 1s: context deadline exceeded"
		if len(failed) != 1 || failed[0] != want {
			t.Errorf("readiness = %q, want [%q]", failed, want)
		}
	})
}

func TestServeShutsDownOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", New().Handler(Checks{}, nil, nil)) }()

	time.Sleep(50 * time.Millisecond) // let it bind and serve
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(shutdownTimeout + time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestServeAnswersUntilCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, New().Handler(Checks{}, nil, nil)) }()

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", resp.StatusCode)
	}
	resp, err = client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics = %d, want 200", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel = %v, want nil", err)
		}
	case <-time.After(shutdownTimeout + time.Second):
		t.Fatal("serve did not return after cancel")
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("listener still accepts after shutdown")
	}
}

func TestServeBadAddr(t *testing.T) {
	err := Serve(t.Context(), "127.0.0.1:notaport", http.NotFoundHandler())
	if err == nil || !strings.HasPrefix(err.Error(), "metrics: listen 127.0.0.1:notaport: ") {
		t.Errorf("Serve(bad addr) = %v, want a listen error", err)
	}
}
