package remedy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
)

// Prober takes the before and after snapshots.
type Prober interface {
	Probe(ctx context.Context, inst handlers.Instance) (*handlers.Snapshot, error)
}

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
}

// Executor runs approved plans.
type Executor struct {
	prober  Prober
	timeout time.Duration // per Redis command
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
func NewExecutor(p Prober, timeout time.Duration, now func() time.Time) *Executor {
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
	return handlers.Redact(e.Redactor.Redact(text), inst.Password, inst.Remediation.Password)
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
	if p.Action == handlers.ActionMemoryPurge && after != nil {
		purgeOutcome(before, after, &o)
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
			o.Learned = map[string]string{FactDefragSupported: "no"}
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
	o.Learned = map[string]string{FactDefragSupported: "yes"}
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
		argv := inst.Remediation.RestartCommand
		if len(argv) == 0 {
			return errors.New("restart_command is empty")
		}
		cctx, cancel := context.WithTimeout(ctx, e.WaitBack)
		defer cancel()
		// argv comes from config only; no shell, nothing from chat.
		cmd := exec.CommandContext(cctx, argv[0], argv[1:]...)
		env, withheld := e.restartEnv(inst)
		cmd.Env = env
		if len(withheld) > 0 {
			o.Details["restart_env_withheld"] = strings.Join(withheld, ", ")
		}
		out := &headBuffer{max: restartOutput}
		cmd.Stdout, cmd.Stderr = out, out
		// A daemon the command starts may hold its output open: once the
		// command has exited, Run stops waiting for that after WaitDelay.
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Run(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
			// Redacted before it is cut: a cut secret no longer matches.
			return fmt.Errorf("restart command: %w: %s", err, handlers.Truncate(strings.TrimSpace(e.redact(out.String(), inst)), 300))
		}
	case "shutdown":
		// The connection closes as the server exits: that error is success.
		if err := c.Do(ctx, "SHUTDOWN", "SAVE").Err(); err != nil && isServerError(err) {
			return fmt.Errorf("SHUTDOWN SAVE: %w", err)
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
	switch inst.Remediation.FailoverMethod {
	case FailoverCluster:
		return e.clusterFailover(ctx, c, inst, before, o)
	case FailoverSentinel:
		return e.sentinelFailover(ctx, c, inst, before, o)
	}
	start := e.now()
	if err := c.Do(ctx, "FAILOVER", "TIMEOUT", "10000").Err(); err != nil {
		return fmt.Errorf("FAILOVER: %w", err)
	}
	deadline := e.now().Add(e.WaitBack)
	for {
		s, err := e.prober.Probe(ctx, inst)
		if err == nil && s.IsReplica() {
			o.Details["new_primary"] = fmt.Sprintf("%s:%s", orUnknown(s.Info["master_host"], true), orUnknown(s.Info["master_port"], true))
			break
		}
		if e.now().After(deadline) {
			return fmt.Errorf("failover did not complete within %s", e.WaitBack)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
	o.Details["failover_time"] = e.now().Sub(start).Round(time.Millisecond).String()
	o.Message = "failed over to " + o.Details["new_primary"] + " in " + o.Details["failover_time"]
	if inst.Remediation.RestartMethod == "" {
		o.Message += "; the old primary was not restarted (no restart method), so it keeps its fragmented memory"
		return nil
	}
	// A partial resync would keep the fragmented pages: restart the old
	// primary so it loads a fresh copy.
	if err := e.restart(ctx, c, inst, before, o); err != nil {
		return fmt.Errorf("failover done, restart of the old primary failed: %w", err)
	}
	if err := e.rejoin(ctx, inst, o.Details["new_primary"]); err != nil {
		return fmt.Errorf("failover done and the old primary restarted, but it did not resync: %w", err)
	}
	o.Message = "failed over to " + o.Details["new_primary"] + " in " + o.Details["failover_time"] + "; old primary restarted and fully resynced (" + o.Details["time_to_back"] + ")"
	if !inst.Remediation.Failback {
		return nil
	}
	if err := e.failback(ctx, inst, o.Details["new_primary"]); err != nil {
		return fmt.Errorf("failover done, fail-back failed: %w", err)
	}
	o.Details["failed_back_to"] = inst.Addr
	o.Message += "; failed back to " + inst.Addr
	return nil
}

// rejoin makes sure the restarted old primary is a replica of the new one
// and has finished a full sync. A supervisor that restarts Redis from its
// original config brings it back as a standalone, empty primary: it would
// serve nothing (or stale data) to clients that still point at it.
func (e *Executor) rejoin(ctx context.Context, inst handlers.Instance, newPrimary string) error {
	host, port, ok := strings.Cut(newPrimary, ":")
	if !ok {
		return fmt.Errorf("new primary %q unknown", newPrimary)
	}
	c := e.client(inst)
	defer c.Close()
	deadline := e.now().Add(e.WaitBack)
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil {
			in := handlers.ParseInfo(info)
			role, _ := in.String("role")
			if role == "master" {
				if err := c.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
					return fmt.Errorf("REPLICAOF %s: %w", newPrimary, err)
				}
			} else if link, _ := in.String("master_link_status"); link == "up" {
				if syncing, _ := in.Int("master_sync_in_progress"); syncing == 0 {
					return nil
				}
			}
		}
		if e.now().After(deadline) {
			return fmt.Errorf("not in sync with %s after %s", newPrimary, e.WaitBack)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
}

// failback hands the primary role back to the original node, now holding
// a fresh, compact copy, with FAILOVER TO on the interim primary.
func (e *Executor) failback(ctx context.Context, inst handlers.Instance, interim string) error {
	host, port, _ := strings.Cut(inst.Addr, ":")
	tmp := inst
	tmp.Addr = interim
	c := e.client(tmp)
	defer c.Close()
	if err := c.Do(ctx, "FAILOVER", "TO", host, port, "TIMEOUT", "10000").Err(); err != nil {
		return fmt.Errorf("FAILOVER TO %s: %w", inst.Addr, err)
	}
	deadline := e.now().Add(e.WaitBack)
	for {
		s, err := e.prober.Probe(ctx, inst)
		if err == nil && s.Role() == "master" {
			return nil
		}
		if e.now().After(deadline) {
			return fmt.Errorf("%s is not primary again after %s", inst.Addr, e.WaitBack)
		}
		if err := sleep(ctx, e.Poll); err != nil {
			return err
		}
	}
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
