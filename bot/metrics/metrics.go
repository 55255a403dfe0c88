// Package metrics exposes the bot's own health to operators: Prometheus
// collectors for commands, acks, sweeps, alerts, approvals, remediations and
// adapter errors, plus the /healthz and /readyz endpoints an orchestrator
// probes. It measures the bot, not Redis: Redis metrics belong to
// redis_exporter.
//
// The collectors live on a registry owned by Metrics, never the global one,
// so tests and several bots in one process do not collide.
package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/redisbot/redisbot/handlers"
)

const namespace = "redisbot"

// ackBuckets span 0.5ms to 1s: Slack retries an envelope that is not acked
// within 3s, so the interesting part is well below that.
var ackBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}

// commandBuckets cover a command from a cached answer to a slow fleet-wide
// probe.
var commandBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// sweepBuckets cover a sweep from one instance to a large fleet.
var sweepBuckets = []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// Metrics holds the bot's Prometheus collectors on its own registry. Its
// recorders are safe for concurrent use, and a nil *Metrics records nothing,
// so callers need not check whether metrics are enabled.
//
// Label values must come from small fixed sets (verbs the router knows,
// action names, Slack API method names, store operations): the caller maps
// anything else, such as an unknown verb typed by a user, to a fixed value
// like "unknown" before recording it.
type Metrics struct {
	reg *prometheus.Registry
	// now stamps the last sweep; tests replace it.
	now func() time.Time

	commands        *prometheus.CounterVec
	commandDuration *prometheus.HistogramVec
	ackLatency      prometheus.Histogram
	sweepDuration   prometheus.Histogram
	sweepStage      *prometheus.HistogramVec
	sweeps          prometheus.Counter
	sweepsSkipped   prometheus.Counter
	sweepDeferred   prometheus.Counter
	probeErrors     *prometheus.CounterVec
	lastSweep       prometheus.Gauge
	alerts          *prometheus.GaugeVec
	approvals       *prometheus.CounterVec
	remediations    *prometheus.CounterVec
	slackErrors     *prometheus.CounterVec
	slackRateLimit  *prometheus.CounterVec
	storeErrors     *prometheus.CounterVec
	panics          *prometheus.CounterVec
	leader          prometheus.Gauge
	fenced          *prometheus.CounterVec
	dedupeLocal     prometheus.Counter
	fleet           *fleetSweep
	slackPaused     *prometheus.CounterVec
	outboxWait      *prometheus.HistogramVec
	outboxDropped   *prometheus.CounterVec
	outbox          *outboxQueue
	slowLane        *prometheus.CounterVec

	// alertStates remembers every state reported so far, so a state that
	// drops out of a later report reads 0 instead of its last count.
	mu          sync.Mutex
	alertStates map[string]bool
}

// New returns Metrics with every collector registered on a fresh registry,
// together with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg:         prometheus.NewRegistry(),
		now:         time.Now,
		alertStates: map[string]bool{},
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "commands_total",
			Help: "Commands handled, by verb and outcome.",
		}, []string{"verb", "outcome"}),
		commandDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "command_duration_seconds",
			Help:    "Time from receiving a command to sending its answer, by verb.",
			Buckets: commandBuckets,
		}, []string{"verb"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "ack_latency_seconds",
			Help:    "Time from receiving a Slack envelope to acknowledging it.",
			Buckets: ackBuckets,
		}),
		sweepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sweep_duration_seconds",
			Help:    "Time one scheduled sweep of the fleet took.",
			Buckets: sweepBuckets,
		}),
		sweepStage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "sweep_stage_seconds",
			Help:    "Time each stage of a sweep took (observe: probes and store reads; judge; deliver: Slack; save: store writes; forward: Alertmanager).",
			Buckets: sweepBuckets,
		}, []string{"stage"}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sweeps_total",
			Help: "Scheduled sweeps completed.",
		}),
		sweepsSkipped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sweeps_skipped_total",
			Help: "Sweep ticks skipped because the previous sweep was still running (it overran the schedule's interval).",
		}),
		sweepDeferred: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "sweep_notifications_deferred_total",
			Help: "Alert notifications a sweep left to the next one because its delivery deadline passed (an alert storm under Slack's rate limits).",
		}),
		probeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "probe_errors_total",
			Help: "Probe errors during sweeps, by error class.",
		}, []string{"class"}),
		lastSweep: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "last_sweep_timestamp_seconds",
			Help: "Unix time at which the last sweep completed.",
		}),
		alerts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "alerts",
			Help: "Alerts currently in each state.",
		}, []string{"state"}),
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "approvals_total",
			Help: "Approval requests reaching each state.",
		}, []string{"state"}),
		remediations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "remediations_total",
			Help: "Remediations run, by action and outcome.",
		}, []string{"action", "outcome"}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "slack_errors_total",
			Help: "Failed Slack API calls, by method, rate limiting included.",
		}, []string{"method"}),
		slackRateLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "slack_rate_limited_total",
			Help: "Slack API calls refused by rate limiting, by method.",
		}, []string{"method"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "Failed store operations, by operation.",
		}, []string{"op"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "panics_total",
			Help: "Panics recovered (each failed one probe, command or job and is logged with its stack), by where.",
		}, []string{"where"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "leader",
			Help: "1 while this replica holds the leader lease and runs sweeps and digests, else 0.",
		}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "fenced_total",
			Help: "Work of a stale leader refused by its lease's fencing token: store writes, Slack posts, sweeps not started, by what.",
		}, []string{"what"}),
		dedupeLocal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "envelope_dedupe_local_total",
			Help: "Slack envelopes deduplicated on this replica only because the shared store did not answer (another replica may handle a redelivery too).",
		}),
	}
	m.fleet = &fleetSweep{now: func() time.Time { return m.now() }}
	m.slackPaused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "slack_paused_total",
		Help: "Pauses of a Slack outbox lane for a Retry-After Slack announced, by method.",
	}, []string{"method"})
	m.outboxWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "slack_outbox_wait_seconds",
		Help:    "Time from queueing a Slack message to Slack accepting it, retries included, by priority.",
		Buckets: commandBuckets,
	}, []string{"priority"})
	m.outboxDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "slack_outbox_dropped_total",
		Help: "Slack messages not sent, by priority and reason (queue_full, replaced by a newer version, cancelled by a resolve, expired, a reply rate_limited past its deadline, gave_up, failed, fenced, closed at shutdown).",
	}, []string{"priority", "reason"})
	m.outbox = &outboxQueue{now: func() time.Time { return m.now() }}
	m.slowLane = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "slack_slow_lane_total",
		Help: "Slack commands and the slow lane, by how: sent (about an instance that does not answer, from the start), moved (still running after slow_after), held (still running, but the lane was full: it kept its worker), refused (the lane's queue was full).",
	}, []string{"how"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.commands, m.commandDuration, m.ackLatency,
		m.sweepDuration, m.sweepStage, m.sweeps, m.sweepsSkipped, m.sweepDeferred, m.probeErrors, m.lastSweep,
		m.alerts, m.approvals, m.remediations,
		m.slackErrors, m.slackRateLimit, m.storeErrors, m.panics,
		m.leader, m.fenced, m.dedupeLocal, m.fleet,
		m.slackPaused, m.outboxWait, m.outboxDropped, m.outbox,
		m.slowLane,
	)
	return m
}

// Registry returns the registry the collectors are on, for tests and for
// callers that add collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Command records one handled command: outcome is a small fixed set such as
// "ok", "refused", "usage", "probe_error", "internal".
func (m *Metrics) Command(verb, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(verb, outcome).Inc()
	m.commandDuration.WithLabelValues(verb).Observe(d.Seconds())
}

// Ack records how long a Slack envelope waited for its acknowledgement.
func (m *Metrics) Ack(d time.Duration) {
	if m == nil {
		return
	}
	m.ackLatency.Observe(d.Seconds())
}

// Sweep records one completed sweep, its duration and its probe errors by
// class (for example "timeout", "auth", "refused"), and stamps the time it
// completed.
func (m *Metrics) Sweep(d time.Duration, probeErrors map[string]int) {
	if m == nil {
		return
	}
	m.sweepDuration.Observe(d.Seconds())
	m.sweeps.Inc()
	for class, n := range probeErrors {
		if n > 0 {
			m.probeErrors.WithLabelValues(class).Add(float64(n))
		}
	}
	m.lastSweep.Set(float64(m.now().UnixNano()) / 1e9)
}

// SweepStage records how long one stage of a sweep took.
func (m *Metrics) SweepStage(stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.sweepStage.WithLabelValues(stage).Observe(d.Seconds())
}

// SweepSkipped counts a sweep tick skipped because the previous sweep was
// still running.
func (m *Metrics) SweepSkipped() {
	if m == nil {
		return
	}
	m.sweepsSkipped.Inc()
}

// SweepDeferred counts the alert notifications a sweep left to the next
// one because its delivery deadline passed.
func (m *Metrics) SweepDeferred(n int) {
	if m == nil {
		return
	}
	m.sweepDeferred.Add(float64(n))
}

// Alerts records how many alerts are in each state. byState is the full
// picture: a state reported before and absent now is set to 0.
func (m *Metrics) Alerts(byState map[string]int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for state := range byState {
		m.alertStates[state] = true
	}
	for state := range m.alertStates {
		m.alerts.WithLabelValues(state).Set(float64(byState[state]))
	}
}

// Approval records an approval request reaching state ("requested",
// "approved", "rejected", "expired", ...).
func (m *Metrics) Approval(state string) {
	if m == nil {
		return
	}
	m.approvals.WithLabelValues(state).Inc()
}

// Remediation records one remediation run of action and how it ended.
func (m *Metrics) Remediation(action, outcome string) {
	if m == nil {
		return
	}
	m.remediations.WithLabelValues(action, outcome).Inc()
}

// SlackError records a failed Slack API call. A rate-limited call counts
// both as an error and as rate limited, so the two series can be compared.
func (m *Metrics) SlackError(method string, rateLimited bool) {
	if m == nil {
		return
	}
	m.slackErrors.WithLabelValues(method).Inc()
	if rateLimited {
		m.slackRateLimit.WithLabelValues(method).Inc()
	}
}

// StoreError records a failed store operation such as "put_alert".
func (m *Metrics) StoreError(op string) {
	if m == nil {
		return
	}
	m.storeErrors.WithLabelValues(op).Inc()
}

// Panicked logs a recovered panic at error level with its stack, and
// counts it in redisbot_panics_total{where}. where is a fixed name of the place
// ("probe", "slack_command", "sweep", "http"). On a nil *Metrics it only
// logs. ctx carries the request id the log handler adds.
func (m *Metrics) Panicked(ctx context.Context, log *slog.Logger, where string, pe *handlers.PanicError) {
	if log != nil {
		log.ErrorContext(ctx, "recovered a panic", "where", where, "panic", pe.Detail(), "error", pe.Summary(), "stack", string(pe.Stack))
	}
	if m == nil {
		return
	}
	m.panics.WithLabelValues(where).Inc()
}

// Leading records whether this replica holds the leader lease.
func (m *Metrics) Leading(leading bool) {
	if m == nil {
		return
	}
	if leading {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// Fenced counts one piece of a stale leader's work refused by its fencing
// token: what is "store" (a write), "slack" (a post or its retry) or
// "sweep" (a sweep or digest not started).
func (m *Metrics) Fenced(what string) {
	if m == nil {
		return
	}
	m.fenced.WithLabelValues(what).Inc()
}

// DedupeLocal counts an envelope deduplicated on this replica alone while
// the shared store did not answer.
func (m *Metrics) DedupeLocal() {
	if m == nil {
		return
	}
	m.dedupeLocal.Inc()
}

// FleetSweep records when the fleet was last swept, by any replica, as
// read from the shared store; the zero time when none is recorded.
func (m *Metrics) FleetSweep(at time.Time) {
	if m == nil {
		return
	}
	m.fleet.set(at)
}

// fleetSweep exports the fleet's last sweep, read from the store by every
// replica: its time, and its age computed at scrape time, so a follower
// reports the same freshness as the leader and the age keeps growing while
// nobody sweeps (or the store cannot be read). Nothing is exported until a
// sweep is known.
type fleetSweep struct {
	now func() time.Time

	mu sync.Mutex
	at time.Time
}

var (
	fleetSweepAtDesc = prometheus.NewDesc(namespace+"_fleet_last_sweep_timestamp_seconds",
		"Unix time of the last fleet sweep by any replica, as recorded in the shared store.", nil, nil)
	fleetSweepAgeDesc = prometheus.NewDesc(namespace+"_fleet_last_sweep_age_seconds",
		"Seconds since the last fleet sweep by any replica, as recorded in the shared store.", nil, nil)
)

func (f *fleetSweep) set(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at = at
}

// Describe implements prometheus.Collector.
func (f *fleetSweep) Describe(ch chan<- *prometheus.Desc) {
	ch <- fleetSweepAtDesc
	ch <- fleetSweepAgeDesc
}

// Collect implements prometheus.Collector.
func (f *fleetSweep) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	at := f.at
	f.mu.Unlock()
	if at.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(fleetSweepAtDesc, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(fleetSweepAgeDesc, prometheus.GaugeValue, max(f.now().Sub(at).Seconds(), 0))
}

// SlackPaused counts a Slack outbox lane paused for a Retry-After.
func (m *Metrics) SlackPaused(method string) {
	if m == nil {
		return
	}
	m.slackPaused.WithLabelValues(method).Inc()
}

// OutboxSent records how long a message of priority waited before Slack
// took it.
func (m *Metrics) OutboxSent(priority string, waited time.Duration) {
	if m == nil {
		return
	}
	m.outboxWait.WithLabelValues(priority).Observe(waited.Seconds())
}

// OutboxDropped counts a message of priority that was not sent, and why.
func (m *Metrics) OutboxDropped(priority, reason string) {
	if m == nil {
		return
	}
	m.outboxDropped.WithLabelValues(priority, reason).Inc()
}

// SlowLane counts a Slack command sent to, moved to, held out of or
// refused by the slow lane (bot/slackbot/lanes.go).
func (m *Metrics) SlowLane(how string) {
	if m == nil {
		return
	}
	m.slowLane.WithLabelValues(how).Inc()
}

// OutboxQueue sets where the Slack outbox's queue is read at scrape time:
// the messages waiting by priority, and when the oldest was queued (zero
// when none waits).
func (m *Metrics) OutboxQueue(read func() (byPriority map[string]int, oldest time.Time)) {
	if m == nil {
		return
	}
	m.outbox.mu.Lock()
	defer m.outbox.mu.Unlock()
	m.outbox.read = read
}

// outboxQueue exports the outbox's depth and its oldest message's age,
// read when scraped, so the age keeps growing while the queue is stuck.
type outboxQueue struct {
	now func() time.Time

	mu   sync.Mutex
	read func() (map[string]int, time.Time)
}

var (
	outboxDepthDesc = prometheus.NewDesc(namespace+"_slack_outbox_depth",
		"Slack messages waiting in the outbox, by priority.", []string{"priority"}, nil)
	outboxAgeDesc = prometheus.NewDesc(namespace+"_slack_outbox_oldest_age_seconds",
		"Seconds the oldest message waiting in the Slack outbox has waited (0 when none waits).", nil, nil)
)

// Describe implements prometheus.Collector.
func (q *outboxQueue) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxDepthDesc
	ch <- outboxAgeDesc
}

// Collect implements prometheus.Collector.
func (q *outboxQueue) Collect(ch chan<- prometheus.Metric) {
	q.mu.Lock()
	read := q.read
	q.mu.Unlock()
	if read == nil {
		return
	}
	depth, oldest := read()
	for p, n := range depth {
		ch <- prometheus.MustNewConstMetric(outboxDepthDesc, prometheus.GaugeValue, float64(n), p)
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(q.now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
}
