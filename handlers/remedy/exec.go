package remedy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redact"
)

// Outcome is what an execution did and measured.
type Outcome struct {
	OK       bool              `json:"ok"`
	Message  string            `json:"message"`
	Before   []handlers.Fact   `json:"before,omitempty"`
	After    []handlers.Fact   `json:"after,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	Duration time.Duration     `json:"duration_ns"`
	// NoEffect marks an action that ran but changed nothing measurable (a
	// purge that gave back nothing, defrag that moved nothing): OK, yet not
	// a success to show in green.
	NoEffect bool `json:"no_effect,omitempty"`
	// Learned are facts about the instance to remember (for example that
	// its build cannot run active defrag).
	Learned map[string]string `json:"learned,omitempty"`
	// Phases are the steps of a failover with their durations.
	Phases []Phase `json:"phases,omitempty"`
}

// Executor runs approved plans.
type Executor struct {
	prober  handlers.Prober // the before and after snapshots
	timeout time.Duration   // per Redis command
	// WaitBack bounds how long a restart or failover may take.
	WaitBack time.Duration
	// Poll is how often progress is checked.
	Poll time.Duration
	// PurgeSettle is how long after MEMORY PURGE the result is measured:
	// Redis samples RSS in its cron and jemalloc hands pages back
	// asynchronously, so a probe at once under-reports what was returned.
	PurgeSettle time.Duration
	// Redactor removes every configured secret (every instance's
	// passwords, the Slack tokens, the store's) from outcomes, which are
	// posted to Slack and kept in the audit log: a restart command's
	// output may print any of them. Without it only the instance's own
	// passwords are removed.
	Redactor *handlers.Redactor
	// Getenv reads the bot's environment for a restart command: PATH,
	// HOME and the variables restart_env names (os.Getenv when nil).
	Getenv func(string) string
	now    func() time.Time
}

// NewExecutor returns an Executor.
func NewExecutor(p handlers.Prober, timeout time.Duration, now func() time.Time) *Executor {
	if now == nil {
		now = time.Now
	}
	return &Executor{prober: p, timeout: timeout, WaitBack: 2 * time.Minute, Poll: 200 * time.Millisecond, PurgeSettle: 2 * time.Second, now: now}
}

// client connects with the remediation credential when the instance has
// one (diagnosis keeps its read-only user), and with the instance's TLS
// settings.
func (e *Executor) client(inst handlers.Instance) *redis.Client {
	user, pass := inst.Username, inst.Password
	if inst.Remediation.Username != "" || inst.Remediation.Password != "" {
		user, pass = inst.Remediation.Username, inst.Remediation.Password
	}
	inst.Username, inst.Password = user, pass
	// A bad TLS file was reported when config loaded and by every probe;
	// here the connection then fails and the outcome says so.
	opts, _ := probe.ClientOptions(inst, e.timeout)
	// Remediation steps wait on their own contexts (a BGSAVE, a restart):
	// each command is bounded by the timeout, not by the step's deadline.
	opts.ContextTimeoutEnabled = false
	return redis.NewClient(opts)
}

// keyNumbers are the before/after numbers every outcome reports.
func keyNumbers(s *handlers.Snapshot) []handlers.Fact {
	if s == nil {
		return nil
	}
	var ev []handlers.Fact
	for _, name := range []string{"used_memory", "used_memory_rss", "allocator_frag_bytes"} {
		if n, ok := s.Int(name); ok {
			ev = append(ev, handlers.Fact{Name: name, Value: n, Text: handlers.HumanBytes(n)})
		}
	}
	for _, name := range []string{"mem_fragmentation_ratio", "allocator_frag_ratio"} {
		if f, ok := s.Float(name); ok {
			ev = append(ev, handlers.Fact{Name: name, Value: f, Text: handlers.Ratio(f)})
		}
	}
	if v, ok := s.Maxmemory(); ok {
		ev = append(ev, handlers.Fact{Name: "maxmemory", Value: v, Text: handlers.HumanBytes(v)})
	}
	if v, ok := s.Policy(); ok {
		ev = append(ev, handlers.Fact{Name: "maxmemory_policy", Value: v, Text: v})
	}
	return ev
}

// Execute runs a plan that was approved and re-checked. It reports failure
// in the Outcome rather than as an error: every path ends in an audit record.
// Whatever the path, the outcome's text goes out without a secret in it.
func (e *Executor) Execute(ctx context.Context, p Plan, inst handlers.Instance) Outcome {
	o := e.execute(ctx, p, inst)
	o.Message = e.redact(o.Message, inst)
	for k, v := range o.Details {
		o.Details[k] = e.redact(v, inst)
	}
	return o
}

// redact removes every configured secret and the instance's passwords.
func (e *Executor) redact(text string, inst handlers.Instance) string {
	return redact.Secrets(e.Redactor.Redact(text), inst.Password, inst.Remediation.Password)
}

func (e *Executor) execute(ctx context.Context, p Plan, inst handlers.Instance) Outcome {
	start := e.now()
	if inst.Addr == "" {
		// Never let go-redis fall back to localhost:6379.
		return Outcome{Message: "the instance has no address (a cluster or Sentinel entry that could not be expanded)"}
	}
	before, err := e.prober.Probe(ctx, inst)
	if err != nil {
		return Outcome{Message: "could not probe before acting: " + err.Error()}
	}
	o := Outcome{Before: keyNumbers(before), Details: map[string]string{}}
	c := e.client(inst)
	defer c.Close()

	switch p.Action {
	case handlers.ActionMemoryPurge:
		err = c.Do(ctx, "MEMORY", "PURGE").Err()
	case handlers.ActionDefragOn:
		err = e.defragOn(ctx, c, p, &o)
	case handlers.ActionDefragOff:
		err = c.ConfigSet(ctx, "activedefrag", "no").Err()
	case handlers.ActionConfigSet:
		err = c.ConfigSet(ctx, p.Params["setting"], p.Params["value"]).Err()
		if err == nil && inst.Remediation.PersistConfig {
			err = c.ConfigRewrite(ctx).Err()
		}
		o.Details["old"], o.Details["new"] = p.Params["old"], p.Params["value"]
	case handlers.ActionBGSave:
		err = e.bgsave(ctx, c, &o)
	case handlers.ActionRestart:
		err = e.restart(ctx, c, inst, before, &o)
	case handlers.ActionFailover:
		err = e.failover(ctx, c, inst, before, &o)
	default:
		err = fmt.Errorf("unknown action %q", p.Action)
	}
	o.Duration = e.now().Sub(start)
	if err != nil {
		if o.Message == "" {
			o.Message = err.Error()
		}
		return o
	}
	o.OK = true
	if o.Message == "" {
		o.Message = "done"
	}
	// Defrag's effect shows over minutes: the defrag watch measures it
	// (WatchResult.Outcome), not a probe taken now.
	if p.Action == handlers.ActionDefragOn {
		return o
	}
	if p.Action == handlers.ActionMemoryPurge {
		_ = sleep(ctx, e.PurgeSettle)
	}
	// After a cluster failover another server serves the data.
	after, err := e.prober.Probe(ctx, servingAfter(inst, o))
	if err == nil {
		o.After = keyNumbers(after)
	}
	switch {
	case p.Action == handlers.ActionMemoryPurge && after != nil:
		purgeOutcome(before, after, &o)
	case p.Action == handlers.ActionConfigSet:
		configSetOutcome(p, &o)
	}
	return o
}

// errNoDefrag is the answer of builds linked against a stock jemalloc.
const errNoDefrag = "Active defragmentation cannot be enabled"

func (e *Executor) defragOn(ctx context.Context, c *redis.Client, p Plan, o *Outcome) error {
	// activedefrag first: on a build without defrag support nothing else
	// should change.
	if err := c.ConfigSet(ctx, "activedefrag", "yes").Err(); err != nil {
		if strings.Contains(err.Error(), errNoDefrag) {
			o.Learned = map[string]string{handlers.FactDefragSupported: "no"}
			o.Message = "this server was built without active defrag support (it needs Redis' bundled jemalloc); use failover or restart to reclaim the memory"
		}
		return err
	}
	for _, cmd := range p.Commands {
		f := strings.Fields(cmd)
		if len(f) == 4 && f[2] != "activedefrag" {
			if err := c.ConfigSet(ctx, f[2], f[3]).Err(); err != nil {
				_ = c.ConfigSet(ctx, "activedefrag", "no").Err()
				return fmt.Errorf("CONFIG SET %s: %w (defrag turned back off)", f[2], err)
			}
		}
	}
	o.Learned = map[string]string{handlers.FactDefragSupported: "yes"}
	o.Message = "active defrag is on; the watch reports what it reclaims when it stops"
	return nil
}

func (e *Executor) bgsave(ctx context.Context, c *redis.Client, o *Outcome) error {
	if err := c.BgSave(ctx).Err(); err != nil {
		return err
	}
	for {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		in := handlers.ParseInfo(info)
		if n, _ := in.Int("rdb_bgsave_in_progress"); n == 0 {
			for _, k := range []string{"rdb_last_bgsave_status", "rdb_last_bgsave_time_sec", "rdb_last_cow_size"} {
				o.Details[k], _ = in.String(k)
			}
			if cow, err := strconv.ParseInt(o.Details["rdb_last_cow_size"], 10, 64); err == nil {
				o.Details["rdb_last_cow_size"] = handlers.HumanBytes(cow)
			}
			if o.Details["rdb_last_bgsave_status"] != "ok" {
				return errors.New("BGSAVE finished with status " + o.Details["rdb_last_bgsave_status"])
			}
			o.Message = fmt.Sprintf("BGSAVE done in %ss, copy-on-write %s", o.Details["rdb_last_bgsave_time_sec"], o.Details["rdb_last_cow_size"])
			return nil
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
}

func (e *Executor) restart(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) error {
	start := e.now()
	switch inst.Remediation.RestartMethod {
	case "command":
		withheld, err := e.runRestartCommand(ctx, inst, nil)
		noteWithheld(o, withheld)
		if err != nil {
			return err
		}
	case "shutdown":
		if err := shutdownSave(ctx, c); err != nil {
			return err
		}
	default:
		return errors.New("no restart method configured")
	}
	if err := e.waitBack(ctx, inst, before); err != nil {
		return err
	}
	o.Details["time_to_back"] = e.now().Sub(start).Round(time.Millisecond).String()
	o.Message = "restarted; back after " + o.Details["time_to_back"]
	return nil
}

// runRestartCommand runs restart_command with restartEnv's environment and
// the extra NAME=value pairs, for at most WaitBack. withheld names the
// variables kept from it.
func (e *Executor) runRestartCommand(ctx context.Context, inst handlers.Instance, extra []string) (withheld []string, err error) {
	argv := inst.Remediation.RestartCommand
	if len(argv) == 0 {
		return nil, errors.New("restart_command is empty")
	}
	cctx, cancel := context.WithTimeout(ctx, e.WaitBack)
	defer cancel()
	// argv comes from config only; no shell, nothing from chat.
	cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
	env, withheld := e.restartEnv(inst)
	cmd.Env = append(env, extra...)
	out := &headBuffer{max: restartOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// A daemon the command starts may hold its output open: once the
	// command has exited, Run stops waiting for that after WaitDelay.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		// Redacted before it is cut: a cut secret no longer matches.
		return withheld, fmt.Errorf("restart command: %w: %s", err, redact.Truncate(strings.TrimSpace(e.redact(out.String(), inst)), 300))
	}
	return withheld, nil
}

func noteWithheld(o *Outcome, withheld []string) {
	if len(withheld) > 0 {
		o.Details["restart_env_withheld"] = strings.Join(withheld, ", ")
	}
}

// shutdownSave stops the server for its supervisor to start again.
func shutdownSave(ctx context.Context, c *redis.Client) error {
	// The connection closes as the server exits: that error is success.
	if err := c.Do(ctx, "SHUTDOWN", "SAVE").Err(); err != nil && isServerError(err) {
		return fmt.Errorf("SHUTDOWN SAVE: %w", err)
	}
	return nil
}

// restartOutput is how much of a restart command's output is kept: the
// outcome shows its first 300 characters, redacted first.
const restartOutput = 8 << 10

// restartEnv is the environment of a restart command: PATH and HOME, so
// that a script finds its tools, and the variables restart_env names. The
// rest of the bot's environment, where the Slack tokens and the password
// variables live, is not passed. A variable whose value holds a configured
// secret is withheld whatever its name (an alias of a token, another
// instance's password variable); withheld names it.
func (e *Executor) restartEnv(inst handlers.Instance) (env, withheld []string) {
	getenv := e.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	// Not nil: a nil Env would give the command the bot's whole
	// environment.
	env = []string{}
	seen := map[string]bool{}
	for _, name := range append([]string{"PATH", "HOME"}, inst.Remediation.RestartEnv...) {
		v := getenv(name)
		if seen[name] || v == "" {
			continue
		}
		seen[name] = true
		if e.redact(v, inst) != v {
			withheld = append(withheld, name)
			continue
		}
		env = append(env, name+"="+v)
	}
	return env, withheld
}

// headBuffer keeps the first max bytes written to it and drops the rest, so
// a command that prints without end cannot fill the bot's memory.
type headBuffer struct {
	max int
	buf []byte
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *headBuffer) String() string { return string(b.buf) }

// waitBack waits until the instance answers with a new run_id and has
// finished loading.
func (e *Executor) waitBack(ctx context.Context, inst handlers.Instance, before *handlers.Snapshot) error {
	oldRun, _ := before.Info.String("run_id")
	deadline := e.now().Add(e.WaitBack)
	for {
		s, err := e.prober.Probe(ctx, inst)
		if err == nil && s != nil {
			run, _ := s.Info.String("run_id")
			if loading, _ := s.Int("loading"); run != oldRun && loading == 0 {
				return nil
			}
		}
		if e.now().After(deadline) {
			return fmt.Errorf("instance not back after %s", e.WaitBack)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
}

func (e *Executor) failover(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) error {
	var err error
	switch inst.Remediation.FailoverMethod {
	case FailoverCluster:
		return e.clusterFailover(ctx, c, inst, before, o)
	case FailoverSentinel:
		err = e.sentinelFailover(ctx, c, inst, before, o)
	default:
		err = e.switchPrimary(ctx, c, inst, before, o)
	}
	// switchPrimary's and sentinelFailover's errors say what was done
	// before the step that failed: they are the message.
	if err != nil {
		o.Message = err.Error()
	}
	if len(o.Phases) > 0 {
		o.Message += ". " + PhasesText(o.Phases)
	}
	return err
}

// ReplicaOfEnv is the variable a restart command gets when the server it
// restarts must come back as a replica: "<host> <port>" of its primary,
// the argument of redis-server's --replicaof and of a config file's
// replicaof line. The command must start the server with it: a server that
// starts as a primary takes writes from the clients still pointed at it,
// and the full sync that makes it a replica discards them.
const ReplicaOfEnv = "REDISBOT_REPLICAOF"

// switchPrimary runs FAILOVER on the primary and, with a restart method,
// restarts the old primary as a replica of the new one, waits for its sync,
// and fails back when configured. Each step is a Phase.
//
// No write a client saw acknowledged may be lost. FAILOVER itself loses
// none: it pauses writes until the replica has caught up, and the old
// primary answers READONLY once it follows. The danger is the restart: a
// server that comes back as a standalone primary takes writes until it is
// made a replica, and its full sync then replaces them. So the old primary
// must come back as a replica: the restart command gets ReplicaOfEnv, a
// config file is rewritten to name the new primary, and restart_method
// shutdown is refused for a server without a config file. Should it come
// back a primary anyway, it is made a replica at once and the outcome
// fails with the number of changes it applied meanwhile.
func (e *Executor) switchPrimary(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, o *Outcome) error {
	method := inst.Remediation.RestartMethod
	if err := restartable(ctx, c, method, before); err != nil {
		return err
	}
	start := e.now()
	if err := c.Do(ctx, "FAILOVER", "TIMEOUT", "10000").Err(); err != nil {
		return fmt.Errorf("FAILOVER: %w", err)
	}
	newPrimary, err := e.waitSwitched(ctx, c, start, "FAILOVER")
	if err != nil {
		return err
	}
	o.addPhase("FAILOVER", e.now().Sub(start), "client writes paused")
	o.Details["new_primary"] = newPrimary
	o.Details["failover_time"] = e.now().Sub(start).Round(time.Millisecond).String()
	o.Message = "failed over to " + newPrimary + " in " + o.Details["failover_time"]
	if method == "" {
		o.Message += "; the old primary was not restarted (no restart method), so it keeps its fragmented memory"
		return nil
	}
	// A partial resync would keep the fragmented pages: restart the old
	// primary so it loads a fresh copy.
	back, lost, err := e.rejoinAsReplica(ctx, c, inst, before, newPrimary, o)
	if err != nil {
		return err
	}
	if inst.Remediation.Failback {
		if err := e.failback(ctx, inst, newPrimary, o); err != nil {
			return fmt.Errorf("%s; fail-back failed: %w", o.Message, err)
		}
		o.Details["failed_back_to"] = inst.Addr
		o.Message += "; failed back to " + inst.Addr
		if back.rewrote {
			e.rewriteAfterFailback(ctx, inst, newPrimary, o)
		}
	}
	if lost {
		return errors.New(o.Message)
	}
	return nil
}

// restartable refuses, before anything changes, a restart method that
// cannot bring the old primary back as a replica: restart_method shutdown
// leaves the restart to a supervisor that starts the server from its
// config file, so the server needs one and CONFIG REWRITE must work on it.
// Every failover that restarts its old primary (standalone and Sentinel)
// asks this first.
func restartable(ctx context.Context, c *redis.Client, method string, before *handlers.Snapshot) error {
	if method != "shutdown" {
		return nil
	}
	if file, _ := before.Info.String("config_file"); file == "" {
		return errors.New("refused: restart_method shutdown leaves the old primary's restart to its supervisor, which starts it from its config file, " +
			"and this server has none (config_file is empty): it would come back as an empty primary and take writes that its resync then discards. " +
			"Start it from a config file, or use restart_method command with a command that passes " + ReplicaOfEnv + " to redis-server; nothing was changed")
	}
	// The restart depends on rewriting the file: find out now, not after
	// the failover, whether it can be. This rewrite only writes the
	// settings the server already runs with.
	if err := c.ConfigRewrite(ctx).Err(); err != nil {
		return fmt.Errorf("refused: restart_method shutdown needs CONFIG REWRITE, so that the old primary's supervisor starts it as a replica, and it failed: %w; nothing was changed", err)
	}
	return nil
}

// rejoinAsReplica restarts the old primary as a replica of newPrimary
// (restartAsReplica) once a failover has made it follow that primary, and
// says in o how it came back. lost is set when it came back as a primary
// and applied changes that its sync then discarded: the failover must then
// fail, with the number in its message.
func (e *Executor) rejoinAsReplica(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, newPrimary string, o *Outcome) (back rejoined, lost bool, err error) {
	back, err = e.restartAsReplica(ctx, c, inst, before, newPrimary, o)
	if err != nil {
		return back, false, fmt.Errorf("%s, but the old primary's restart as its replica failed: %w", o.Message, err)
	}
	sync := "fully resynced"
	if !back.full {
		sync = "resynced (partial, after loading its own RDB)"
	}
	o.Message = "failed over to " + newPrimary + "; old primary restarted as its replica and " + sync
	if back.standalone {
		warning := fmt.Sprintf("the old primary came back as a primary, not as a replica of %s (its restart did not apply %s and its config file names no primary), and REPLICAOF was sent at once", newPrimary, ReplicaOfEnv)
		if back.changes > 0 {
			warning = fmt.Sprintf("WRITES LOST: %s: it had applied %d changes (rdb_changes_since_last_save), and its sync discarded them", warning, back.changes)
			lost = true
		} else {
			warning += ": it applied no change meanwhile, but it could have; fix the restart command"
		}
		o.Details["restart_contract"] = warning
		o.Message = warning + ". " + o.Message
	}
	return back, lost, nil
}

// rewriteAfterFailback rewrites the config file that has named the interim
// primary since the restart, so that the next restart starts a primary.
func (e *Executor) rewriteAfterFailback(ctx context.Context, inst handlers.Instance, interim string, o *Outcome) {
	// A new connection: the one from before the restart is dead.
	c := e.client(inst)
	defer c.Close()
	if err := c.ConfigRewrite(ctx).Err(); err != nil {
		o.Details["config_rewrite"] = fmt.Sprintf("CONFIG REWRITE after the fail-back failed (%v): its config file still names %s as its primary, so a restart would make it a replica", err, interim)
	}
}

// rejoined is how the old primary came back from its restart.
type rejoined struct {
	// standalone: it came back as a primary and was made a replica with
	// REPLICAOF; changes is rdb_changes_since_last_save just before, the
	// writes (or expiries) the sync then discarded.
	standalone bool
	changes    int64
	// full: the new primary counted a full sync.
	full bool
	// rewrote: CONFIG REWRITE put the new primary in its config file.
	rewrote bool
}

// restartAsReplica restarts the old primary, which follows newPrimary
// since FAILOVER, so that it comes back as its replica, and waits until it
// has synced. The server is watched while the restart command runs, so
// that one that comes back as a primary is made a replica within
// restartPoll. Phases: the restart (until it answers with a new run_id and
// has loaded its own data), the replica's connection to the new primary
// (until a sync is in progress or the link is up), the sync (until the
// link is up and no sync is in progress) and the catch-up (until its
// offset has reached the new primary's).
func (e *Executor) restartAsReplica(ctx context.Context, c *redis.Client, inst handlers.Instance, before *handlers.Snapshot, newPrimary string, o *Outcome) (rejoined, error) {
	var back rejoined
	host, port, err := net.SplitHostPort(newPrimary)
	if err != nil {
		return back, fmt.Errorf("new primary %q: %w", newPrimary, err)
	}
	oldRun, _ := before.Info.String("run_id")
	np := inst
	np.Addr = newPrimary
	pc := e.client(np)
	defer pc.Close()
	fullSyncs, fullKnown := statInt(ctx, pc, "sync_full")

	start := e.now()
	method := inst.Remediation.RestartMethod
	if file, _ := before.Info.String("config_file"); file != "" {
		// FAILOVER made it a replica in memory only; CONFIG REWRITE
		// writes the replicaof line, so whoever starts it from that file
		// starts a replica (as Sentinel does).
		err := c.ConfigRewrite(ctx).Err()
		switch {
		case err == nil:
			back.rewrote = true
		case method == "shutdown":
			return back, fmt.Errorf("CONFIG REWRITE, to keep it a replica of %s when its supervisor starts it again: %w; it was not restarted", newPrimary, err)
		default:
			o.Details["config_rewrite"] = fmt.Sprintf("CONFIG REWRITE failed (%v): only %s keeps it a replica across the restart", err, ReplicaOfEnv)
		}
	}
	// The command runs while the server is watched: its end is awaited
	// last.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type ran struct {
		withheld []string
		err      error
	}
	done := make(chan ran, 1)
	switch method {
	case "command":
		go func() {
			withheld, err := e.runRestartCommand(cctx, inst, []string{ReplicaOfEnv + "=" + host + " " + port})
			done <- ran{withheld, err}
		}()
	case "shutdown":
		if err := shutdownSave(ctx, c); err != nil {
			return back, err
		}
		done <- ran{}
	default:
		return back, fmt.Errorf("unknown restart method %q", method)
	}
	finished := false
	finish := func(r ran) error {
		finished = true
		noteWithheld(o, r.withheld)
		return r.err
	}

	w := &redialer{e: e, inst: inst}
	defer w.close()
	// in is the restarted server's last INFO, which refresh reads.
	var in handlers.Info
	refresh := func() (err error) {
		in, err = w.info(ctx)
		return err
	}
	err = e.waitFor(ctx, start, "back from its restart", func(time.Duration) time.Duration { return restartPoll }, func() (bool, string, error) {
		select {
		case r := <-done:
			if err := finish(r); err != nil {
				return false, "", err
			}
		default:
		}
		if err := refresh(); err != nil {
			return false, err.Error(), nil
		}
		if run, _ := in.String("run_id"); run == oldRun {
			return false, "still the server from before the restart", nil
		}
		role, _ := in.String("role")
		switch {
		case role == "master":
			changes, err := w.demote(ctx, host, port)
			if err != nil {
				return false, "back as a primary; " + err.Error(), nil
			}
			back.standalone, back.changes = true, changes
			return false, "back as a primary, made a replica", nil
		case masterAddr(in) != newPrimary:
			if err := w.client().Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
				return false, "back as a replica of " + masterAddr(in) + "; REPLICAOF: " + err.Error(), nil
			}
			return false, "back as a replica of " + masterAddr(in) + ", pointed at " + newPrimary, nil
		}
		loading, _ := in.Int("loading")
		syncing, _ := in.Int("master_sync_in_progress")
		// Loading while a sync is in progress is loading the primary's
		// copy: that is the sync's time, not the restart's.
		return loading == 0 || syncing == 1, "loading its data", nil
	})
	if err != nil {
		return back, err
	}
	note := "back as a replica"
	if back.standalone {
		note = fmt.Sprintf("back as a PRIMARY; REPLICAOF sent after %d changes", back.changes)
	}
	o.addPhase("old primary restart", e.now().Sub(start), note)

	start = e.now()
	err = e.waitFor(ctx, start, "connected to "+newPrimary, e.pollAfter, func() (bool, string, error) {
		syncing, _ := in.Int("master_sync_in_progress")
		link, _ := in.String("master_link_status")
		if syncing == 1 || link == "up" {
			return true, "", nil
		}
		if err := refresh(); err != nil {
			return false, err.Error(), nil
		}
		return false, "master_link_status " + link, nil
	})
	if err != nil {
		return back, err
	}
	o.addPhase("replica connected", e.now().Sub(start), "")

	start = e.now()
	err = e.waitFor(ctx, start, "synced from "+newPrimary, e.pollAfter, func() (bool, string, error) {
		if err := refresh(); err != nil {
			return false, err.Error(), nil
		}
		link, _ := in.String("master_link_status")
		syncing, _ := in.Int("master_sync_in_progress")
		return link == "up" && syncing == 0, fmt.Sprintf("master_link_status %s, master_sync_in_progress %d", orUnknown(link, link != ""), syncing), nil
	})
	if err != nil {
		return back, err
	}
	n, ok := statInt(ctx, pc, "sync_full")
	back.full = !fullKnown || !ok || n > fullSyncs
	name := "full sync"
	if !back.full {
		name = "partial resync"
	}
	o.addPhase(name, e.now().Sub(start), "")

	// The writes the new primary took during the sync reach the replica
	// after it; until it has them, it is not a copy.
	start = e.now()
	var primaryOffset int64
	err = e.waitFor(ctx, start, "caught up with "+newPrimary, e.pollAfter, func() (bool, string, error) {
		// The new primary's offset first: the replica has caught up when
		// it has reached what the primary had sent before it was asked.
		text, err := pc.Info(ctx, "replication").Result()
		if err != nil {
			return false, newPrimary + ": " + err.Error(), nil
		}
		primaryOffset, _ = handlers.ParseInfo(text).Int("master_repl_offset")
		if err := refresh(); err != nil {
			return false, err.Error(), nil
		}
		link, _ := in.String("master_link_status")
		offset, _ := in.Int("slave_repl_offset")
		return link == "up" && offset >= primaryOffset, fmt.Sprintf("master_link_status %s, offset %d of %d", orUnknown(link, link != ""), offset, primaryOffset), nil
	})
	if err != nil {
		return back, err
	}
	o.addPhase("catch-up", e.now().Sub(start), fmt.Sprintf("offset %d reached", primaryOffset))

	// The command may still run (a supervisor that reports once the unit
	// has settled); its failure fails the restart.
	if !finished {
		select {
		case r := <-done:
			if err := finish(r); err != nil {
				return back, err
			}
		case <-ctx.Done():
			return back, ctx.Err()
		}
	}
	return back, nil
}

// restartPoll is how often the restarting old primary is checked: a
// refused connection costs nothing, and should it come back as a primary,
// this is about how long it takes writes before REPLICAOF.
const restartPoll = 10 * time.Millisecond

// phasePollMin is the finest poll of a phase's end.
const phasePollMin = 10 * time.Millisecond

// pollAfter is how long to wait before checking again on a phase that has
// run for elapsed: a twentieth of it, at least phasePollMin and at most
// Poll, so that every phase is timed to within 5% (or 10 ms) without a
// long sync being polled a hundred times a second.
func (e *Executor) pollAfter(elapsed time.Duration) time.Duration {
	return min(max(elapsed/20, phasePollMin), e.Poll)
}

// waitFor calls check until it is done or fails, for at most WaitBack
// from start, sleeping every(elapsed) in between. A timeout names what
// was awaited and check's last state.
func (e *Executor) waitFor(ctx context.Context, start time.Time, what string, every func(time.Duration) time.Duration, check func() (done bool, state string, err error)) error {
	deadline := start.Add(e.WaitBack)
	for {
		done, state, err := check()
		if err != nil || done {
			return err
		}
		if e.now().After(deadline) {
			return fmt.Errorf("not %s after %s (%s)", what, e.WaitBack, state)
		}
		if err := sleep(ctx, every(e.now().Sub(start))); err != nil {
			return err
		}
	}
}

// waitSwitched waits until the primary on c has handed its role over after
// a FAILOVER sent at start: it reports role slave with no failover in
// progress, which it does once the target has accepted the role. It
// returns the new primary. A primary back to no-failover without having
// switched aborted it.
func (e *Executor) waitSwitched(ctx context.Context, c *redis.Client, start time.Time, what string) (string, error) {
	var primary string
	err := e.waitFor(ctx, start, "switched by "+what, e.pollAfter, func() (bool, string, error) {
		text, err := c.Info(ctx, "replication").Result()
		if err != nil {
			return false, err.Error(), nil
		}
		in := handlers.ParseInfo(text)
		role, _ := in.String("role")
		state, _ := in.String("master_failover_state")
		switch {
		case role == "slave" && (state == "no-failover" || state == ""):
			primary = masterAddr(in)
			return true, "", nil
		case role == "master" && state == "no-failover":
			return false, "", errors.New(what + " was aborted: the replica did not catch up within its timeout or went away (the server's log says which); the primary is unchanged")
		}
		return false, "role " + role + ", master_failover_state " + state, nil
	})
	return primary, err
}

// failback hands the primary role back to the original node, now holding
// a fresh, compact copy, with FAILOVER TO on the interim primary.
func (e *Executor) failback(ctx context.Context, inst handlers.Instance, interim string, o *Outcome) error {
	host, port, _ := net.SplitHostPort(inst.Addr)
	tmp := inst
	tmp.Addr = interim
	c := e.client(tmp)
	defer c.Close()
	start := e.now()
	if err := c.Do(ctx, "FAILOVER", "TO", host, port, "TIMEOUT", "10000").Err(); err != nil {
		return fmt.Errorf("FAILOVER TO %s: %w", inst.Addr, err)
	}
	if _, err := e.waitSwitched(ctx, c, start, "FAILOVER TO "+inst.Addr); err != nil {
		return err
	}
	o.addPhase("fail-back", e.now().Sub(start), "client writes paused")
	return nil
}

// masterAddr is the primary a replica's INFO replication names.
func masterAddr(in handlers.Info) string {
	host, _ := in.String("master_host")
	port, _ := in.String("master_port")
	if host == "" {
		return ""
	}
	return net.JoinHostPort(host, port)
}

// statInt reads one INFO stats counter.
func statInt(ctx context.Context, c *redis.Client, name string) (int64, bool) {
	text, err := c.Info(ctx, "stats").Result()
	if err != nil {
		return 0, false
	}
	return handlers.ParseInfo(text).Int(name)
}

// redialer watches a restarting server. After a failed dial go-redis' pool
// fails every command for up to a second, until a background dial of its
// own succeeds; a watcher that must see the server the moment it is back
// dials again at once instead.
type redialer struct {
	e    *Executor
	inst handlers.Instance
	c    *redis.Client
}

func (r *redialer) client() *redis.Client {
	if r.c == nil {
		r.c = r.e.client(r.inst)
	}
	return r.c
}

// info reads INFO's default sections (server, replication, persistence
// among them: Redis 6.2 takes one section name only).
func (r *redialer) info(ctx context.Context) (handlers.Info, error) {
	text, err := r.client().Info(ctx).Result()
	if err != nil {
		r.failed(err)
		return nil, err
	}
	return handlers.ParseInfo(text), nil
}

func (r *redialer) failed(err error) {
	if !isServerError(err) {
		r.close()
	}
}

func (r *redialer) close() {
	if r.c != nil {
		_ = r.c.Close()
		r.c = nil
	}
}

// demote makes the server a replica of host:port with REPLICAOF, in the
// same pipeline as the INFO that reads how many changes it applied since
// it started: nothing runs between the two.
func (r *redialer) demote(ctx context.Context, host, port string) (int64, error) {
	pipe := r.client().Pipeline()
	persistence := pipe.Info(ctx, "persistence")
	replicaof := pipe.Do(ctx, "REPLICAOF", host, port)
	if _, err := pipe.Exec(ctx); err != nil {
		r.failed(err)
		if replicaof.Err() != nil {
			return 0, fmt.Errorf("REPLICAOF %s %s: %w", host, port, replicaof.Err())
		}
		return 0, err
	}
	changes, _ := handlers.ParseInfo(persistence.Val()).Int("rdb_changes_since_last_save")
	return changes, nil
}

// Phase is one step of a remediation and how long it took, in the order
// they ran: what a failover's outcome lists, since a single total hides
// which step was slow.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	// Note qualifies the step: "client writes paused", "offset 1234
	// reached".
	Note string `json:"note,omitempty"`
}

func (o *Outcome) addPhase(name string, d time.Duration, note string) {
	o.Phases = append(o.Phases, Phase{Name: name, Duration: d, Note: note})
}

// PhasesText lists phases in one line: "FAILOVER 212ms (client writes
// paused) · old primary restart 480ms (back as a replica) · ...".
func PhasesText(phases []Phase) string {
	parts := make([]string, len(phases))
	for i, p := range phases {
		parts[i] = p.Name + " " + p.Duration.Round(time.Millisecond).String()
		if p.Note != "" {
			parts[i] += " (" + p.Note + ")"
		}
	}
	return "Phases: " + strings.Join(parts, " · ")
}

func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
