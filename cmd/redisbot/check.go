package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/slack-go/slack"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/bot/terminal"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/keyspace"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redact"
	"github.com/redisbot/redisbot/handlers/remedy"
)

// Bounds of the checks that are not probes (those take probe.timeout).
const (
	slackCheckTimeout = 10 * time.Second
	// storeCheckTimeout covers bbolt's 2s wait for its file lock and the
	// Redis backend's 5s dial.
	storeCheckTimeout = 15 * time.Second
	// storeCheckTTL is the life of the store's test record: Redis expires
	// it, and on bbolt it reads as absent from then on until the hourly
	// prune deletes it.
	storeCheckTTL = time.Minute
)

// checkArg stands for every argument of a command whose permission is
// checked (handlers.RedisCommand.Args of them): as a key it need not exist,
// since Redis checks the user's key patterns against the names a command
// carries before it looks anything up, so a user without key access gets
// NOPERM for a missing key too; as a setting, section, address or keyword
// no command accepts it, so even a command that ran would only fail.
const checkArg = "redisbot-check-config"

// checkReport is what check-config found, printed as text or JSON.
type checkReport struct {
	Config    string          `json:"config"`
	Slack     slackCheck      `json:"slack"`
	Store     storeCheck      `json:"store"`
	Instances []instanceCheck `json:"instances"`
}

// slackCheck is the result of calling Slack with the configured tokens.
type slackCheck struct {
	// Status is "ok", "not configured" or "error".
	Status string `json:"status"`
	// BotToken and AppToken are "ok" or what is wrong: Slack's error code
	// (invalid_auth, not_authed, ...), a network error, or a missing token.
	BotToken  string `json:"bot_token,omitempty"`
	AppToken  string `json:"app_token,omitempty"`
	Team      string `json:"team,omitempty"`
	TeamID    string `json:"team_id,omitempty"`
	BotUser   string `json:"bot_user,omitempty"`
	BotUserID string `json:"bot_user_id,omitempty"`
}

// storeCheck is the result of a write and read back in the state store.
type storeCheck struct {
	Backend string `json:"backend"`
	// Location is the bbolt file, or the Redis URL with its password
	// hidden.
	Location string `json:"location"`
	// Status is "ok" or "error".
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Warning says what the store will forget: a Redis server that
	// persists nothing, or one whose persistence could not be read.
	Warning string `json:"warning,omitempty"`
}

// instanceCheck is one row of the instance table. The first six fields
// are the table's columns, and were check-config's whole JSON before.
type instanceCheck struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Version string `json:"version"`
	Role    string `json:"role"`
	Status  string `json:"status"`
	ACL     string `json:"acl"`
	// KeyScan is what the diagnosis user may not send for /redis keys;
	// nil when the probe failed.
	KeyScan *permCheck `json:"key_scan,omitempty"`
	// Remediation is the check of the instance's remediation credential;
	// nil when it has none (actions then use the diagnosis user).
	Remediation *permCheck `json:"remediation,omitempty"`
}

// permCheck is what one Redis user may send.
type permCheck struct {
	User string `json:"user,omitempty"`
	// Status is "ok", "missing" or "error: <class>" (the check could not
	// run: wrong password, connection lost).
	Status string `json:"status"`
	// Missing are ACL names as ACL SETUSER spells them ("memory|usage"),
	// "read access to keys (%R~*)", or a command the server does not know
	// ("memory|usage (unknown command)").
	Missing []string `json:"missing,omitempty"`
	// NotChecked are commands whose permission could not be tested
	// without running them; Why says why.
	NotChecked []string `json:"not_checked,omitempty"`
	Why        string   `json:"why,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func (p *permCheck) failed() bool { return p != nil && strings.HasPrefix(p.Status, "error") }

func (p *permCheck) lacks() bool { return p != nil && len(p.Missing) > 0 }

// exitCode: exitError when anything configured does not work (an
// unreachable instance, a wrong password, a token Slack refuses, a store
// that cannot be opened or written), else exitWarning when a permission is
// missing, else exitOK. A missing permission is a warning because the bot
// degrades around it rather than failing: diagnosis goes on without
// CONFIG GET's settings, /redis keys is refused, an approved action fails
// with NOPERM and changes nothing. Commands that could not be checked are
// not counted: check-config cannot tell. A store that keeps nothing across
// a restart is a warning too: the bot runs, and forgets.
func (r *checkReport) exitCode() int {
	code := exitOK
	if r.Slack.Status == "error" || r.Store.Status == "error" {
		return exitError
	}
	if r.Store.Warning != "" {
		code = exitWarning
	}
	for _, in := range r.Instances {
		if in.Status != "ok" || in.KeyScan.failed() || in.Remediation.failed() {
			return exitError
		}
		if in.ACL != "ok" || in.KeyScan.lacks() || in.Remediation.lacks() {
			code = exitWarning
		}
	}
	return code
}

// checkConfig checks everything the config points at: the Slack tokens,
// the state store, and every instance with the permissions its users need.
func checkConfig(ctx context.Context, cfg *config.Config, svc *handlers.Service, path string, opts options, stdout io.Writer) int {
	reports, err := svc.Fleet(ctx, "", nil)
	if err != nil {
		fmt.Fprintf(stdout, "%s: %s\n", path, redact.Secrets(err.Error(), cfg.Secrets()...))
		return exitError
	}
	r := &checkReport{
		Config:    path,
		Slack:     checkSlack(ctx, cfg),
		Store:     checkStore(ctx, cfg.Store),
		Instances: checkInstances(ctx, reports, svc.Instances(""), cfg.Probe),
	}

	// Every message is built without secrets, but a server's or a
	// library's error text is not ours: the whole output is redacted once
	// more, in every form a secret can take in it.
	var out strings.Builder
	if opts.json {
		enc := json.NewEncoder(&out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(r)
	} else {
		r.writeText(&out)
	}
	fmt.Fprint(stdout, redact.Secrets(out.String(), secretForms(cfg.Secrets())...))
	return r.exitCode()
}

// secretForms are the secrets as they appear in text (terminal.Clean) and
// inside JSON strings.
func secretForms(secrets []string) []string {
	var forms []string
	for _, s := range secrets {
		forms = append(forms, s, terminal.Clean(s))
		if b, err := json.Marshal(s); err == nil {
			forms = append(forms, string(b[1:len(b)-1]))
		}
	}
	return forms
}

func (r *checkReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "config %s: valid, %d instances\n\n", r.Config, len(r.Instances))
	fmt.Fprintf(w, "slack: %s\n", terminal.Clean(r.Slack.text()))
	fmt.Fprintf(w, "store: %s %s: %s\n", r.Store.Backend, terminal.Clean(r.Store.Location), terminal.Clean(r.Store.text()))
	if r.Store.Warning != "" {
		fmt.Fprintf(w, "  warning: %s\n", terminal.Clean(r.Store.Warning))
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDR\tVERSION\tROLE\tSTATUS\tACL")
	for _, in := range r.Instances {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Name, in.Addr, terminal.Clean(in.Version), terminal.Clean(in.Role), in.Status, terminal.Clean(in.ACL))
	}
	tw.Flush()

	var notes []string
	for _, in := range r.Instances {
		if k := in.KeyScan; k != nil {
			switch {
			case k.failed():
				notes = append(notes, fmt.Sprintf("%s: key-scan permissions: %s: %s", in.Name, k.Status, k.Error))
			case k.lacks():
				notes = append(notes, fmt.Sprintf("%s: missing: %s (needed by /redis keys; see docs/redis-acl.md)", in.Name, strings.Join(k.Missing, ", ")))
			}
		}
		if rc := in.Remediation; rc != nil {
			notes = append(notes, fmt.Sprintf("%s: remediation %s: %s", in.Name, userLabel(rc.User), rc.text()))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range notes {
		fmt.Fprintln(w, terminal.Clean(n))
	}
}

func userLabel(user string) string {
	if user == "" {
		return "credential (default user)"
	}
	return "user " + user
}

func (s slackCheck) text() string {
	switch s.Status {
	case "not configured":
		return "not configured (CLI only)"
	case "ok":
		return fmt.Sprintf("ok: bot user %s (%s) in team %s (%s); the app token opens Socket Mode connections", s.BotUser, s.BotUserID, s.Team, s.TeamID)
	}
	return fmt.Sprintf("error: bot token: %s; app token: %s", s.BotToken, s.AppToken)
}

func (s storeCheck) text() string {
	if s.Detail == "" {
		return s.Status
	}
	return s.Status + ": " + s.Detail
}

func (p *permCheck) text() string {
	if p.failed() {
		return p.Status + ": " + p.Error
	}
	var parts []string
	if len(p.Missing) > 0 {
		parts = append(parts, "missing: "+strings.Join(p.Missing, ", ")+" (needed by approved actions; see docs/redis-acl.md)")
	} else {
		parts = append(parts, "ok")
	}
	if len(p.NotChecked) > 0 {
		parts = append(parts, "not checked: "+strings.Join(p.NotChecked, ", ")+" ("+p.Why+")")
	}
	return strings.Join(parts, "; ")
}

// checkSlack calls auth.test with the bot token and apps.connections.open
// with the app-level token, as serve does when it starts. The second
// returns a Socket Mode URL that is never dialled: opening one costs
// nothing and it expires unused. Tokens are never printed.
func checkSlack(ctx context.Context, cfg *config.Config) slackCheck {
	s := cfg.Slack
	if s.BotToken == "" && s.AppToken == "" {
		return slackCheck{Status: "not configured"}
	}
	res := slackCheck{Status: "ok", BotToken: "ok", AppToken: "ok"}
	if s.BotToken == "" || s.AppToken == "" {
		// RequireSlack names the missing token and its variable.
		msg := "missing"
		if err := cfg.RequireSlack(); err != nil {
			msg = strings.ReplaceAll(err.Error(), "\n", "; ")
		}
		if s.BotToken == "" {
			res.BotToken = msg
		} else {
			res.AppToken = msg
		}
		res.Status = "error"
	}
	if s.BotToken != "" {
		cctx, cancel := context.WithTimeout(ctx, slackCheckTimeout)
		auth, err := slack.New(s.BotToken, slack.OptionAPIURL(s.APIURL)).AuthTestContext(cctx)
		cancel()
		if err != nil {
			res.BotToken, res.Status = slackError(err), "error"
		} else {
			res.Team, res.TeamID, res.BotUser, res.BotUserID = auth.Team, auth.TeamID, auth.User, auth.UserID
		}
	}
	if s.AppToken != "" {
		cctx, cancel := context.WithTimeout(ctx, slackCheckTimeout)
		api := slack.New(s.BotToken, slack.OptionAppLevelToken(s.AppToken), slack.OptionAPIURL(s.APIURL))
		_, _, err := api.StartSocketModeContext(cctx)
		cancel()
		if err != nil {
			res.AppToken, res.Status = slackError(err), "error"
		}
	}
	return res
}

// slackError is Slack's error code, or what kept the call from Slack.
func slackError(err error) string {
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &se):
		return se.Err
	case errors.As(err, &rl):
		return "rate limited, retry after " + rl.RetryAfter.String()
	case errors.As(err, &sc):
		return "HTTP " + sc.Status
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout after " + slackCheckTimeout.String()
	}
	return "network: " + err.Error()
}

// checkStore opens the store as serve does, writes a record and reads it
// back. The record is a Once marker under a key of its own: it is the one
// kind that expires (so it leaves nothing lasting behind, unlike a fact or
// a lease's token counter), that nothing lists, and that the Redis backend
// keeps out of its indexes.
func checkStore(ctx context.Context, cfg config.Store) storeCheck {
	res := storeCheck{Backend: "bbolt", Location: cfg.String(), Status: "ok"}
	if cfg.RedisURL != "" {
		res.Backend = "redis"
	} else if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
		// Opening would create the file: check that serve could, and leave
		// no file for another process to find.
		f, err := os.CreateTemp(filepath.Dir(cfg.Path), ".redisbot-check-*")
		if err != nil {
			res.Status, res.Detail = "error", "cannot create the file: "+err.Error()
			return res
		}
		f.Close()
		os.Remove(f.Name())
		res.Detail = "not created yet (serve creates it; its directory is writable)"
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, storeCheckTimeout)
	defer cancel()
	st, err := store.Open(ctx, store.Options{Path: cfg.Path, RedisURL: cfg.RedisURL})
	if err != nil {
		res.Status, res.Detail = "error", err.Error()
		if errors.Is(err, berrors.ErrTimeout) {
			// bbolt holds an exclusive lock on the file while it is open.
			res.Detail = "in use by another process (is redisbot serve running?)"
		}
		return res
	}
	defer st.Close()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := "check-config:" + hex.EncodeToString(b)
	first, err := st.Once(ctx, key, storeCheckTTL)
	if err == nil && !first {
		err = errors.New("a new record read as already present")
	}
	if err == nil {
		var again bool
		if again, err = st.Once(ctx, key, storeCheckTTL); err == nil && again {
			err = errors.New("a record just written could not be read back")
		}
	}
	if err != nil {
		res.Status, res.Detail = "error", "write and read back: "+err.Error()
		return res
	}
	res.Warning = durabilityWarning(ctx, st)
	return res
}

// durabilityWarning says what a store that keeps nothing across a restart
// of its server loses, or "" when it keeps its data. Several replicas rely
// on the store for approvals and for the record of what was posted.
func durabilityWarning(ctx context.Context, st *store.Store) string {
	d, err := st.Durability(ctx)
	switch {
	case err != nil:
		return "could not read the server's persistence settings: " + err.Error()
	case !d.Known:
		return "could not read the server's persistence settings (CONFIG GET appendonly and save refused): make sure it runs with appendonly yes, or a restart loses pending approvals"
	case !d.Persistent():
		return "the Redis server persists nothing (appendonly no, no save schedule): a restart of it loses pending approvals, silences and alert records (alerts are found again by their Slack messages, approvals are not); set appendonly yes"
	}
	return ""
}

// checkInstances builds the instance table from the probes and checks,
// for every instance that answered, the permissions the probe does not
// exercise. The checks run with probe.concurrency at once.
func checkInstances(ctx context.Context, reports []*handlers.Report, instances []handlers.Instance, pc config.Probe) []instanceCheck {
	byName := map[string]handlers.Instance{}
	for _, in := range instances {
		byName[in.Name] = in
	}
	rows := make([]instanceCheck, len(reports))
	sem := make(chan struct{}, max(pc.Concurrency, 1))
	var wg sync.WaitGroup
	for i, rep := range reports {
		r := instanceCheck{Name: rep.Instance, Addr: rep.Addr, Version: "-", Role: "-", Status: "ok", ACL: "ok"}
		if m, ok := rep.Metric("version"); ok {
			r.Version = m.Text
		}
		if m, ok := rep.Metric("role"); ok {
			r.Role = m.Text
		}
		rows[i] = r
		if rep.Failed() {
			rows[i].Status, rows[i].ACL = "error: "+string(rep.Error.Class), "-"
			continue
		}
		inst, ok := byName[rep.Instance]
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			row := &rows[i]
			// A client library that panics over a hostile reply fails this
			// instance's row (exit 3), not the whole check.
			err := handlers.Safely(func() error {
				row.KeyScan = checkKeyScan(ctx, inst, pc.Timeout)
				if inst.Remediation.Username != "" || inst.Remediation.Password != "" {
					row.Remediation = checkRemediation(ctx, inst, pc.Timeout)
				}
				return nil
			})
			if _, ok := handlers.AsPanic(err); ok {
				row.Status, row.ACL, row.KeyScan, row.Remediation = "error: "+string(handlers.ClassInternal), "-", nil, nil
				return
			}
			missing := rep.Missing
			if row.KeyScan.lacks() {
				missing = append(missing[:len(missing):len(missing)], strings.Join(row.KeyScan.Missing, ", ")+" (for /redis keys)")
			}
			if len(missing) > 0 {
				row.ACL = "missing: " + strings.Join(missing, "; ")
			}
		}()
	}
	wg.Wait()
	return rows
}

// checkForm is how a command is sent to test its permission: its name
// and checkArg for each argument.
func checkForm(c handlers.RedisCommand) []any {
	var args []any
	for _, w := range c.Words() {
		args = append(args, w)
	}
	for range c.Args {
		args = append(args, checkArg)
	}
	return args
}

// checkKeyScan sends the commands of the key scan (keyspace.Commands) as
// the diagnosis user.
func checkKeyScan(ctx context.Context, inst handlers.Instance, timeout time.Duration) *permCheck {
	res := &permCheck{User: inst.Username, Status: "ok"}
	c, err := checkClient(inst, inst.Username, inst.Password, timeout)
	if err != nil {
		res.Status, res.Error = "error: "+string(handlers.ClassTLS), err.Error()
		return res
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	// Every command the scan sends only reads: each is simply sent.
	cmds := make([]*redis.Cmd, len(keyspace.Commands))
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, kc := range keyspace.Commands {
			cmds[i] = p.Do(ctx, checkForm(kc)...)
		}
		return nil
	})
	for i, kc := range keyspace.Commands {
		res.judge(kc.ACL, cmds[i].Err())
	}
	return res
}

// Checking the remediation credential.
//
// A non-admin user has no way to ask Redis whether it may run a command:
// ACL DRYRUN and ACL GETUSER need acl|dryrun and acl|getuser, which no bot
// user should have, and COMMAND DOCS says nothing about permissions. The
// only answer is the server's own check when the command arrives, and the
// order of processCommand (src/server.c, 6.0 to 7.2, and Valkey) decides
// what can be learnt from it without effects: command lookup, arity,
// authentication, the no-multi flag, then the ACL check, then everything
// else (cluster redirection, OOM, read-only replica, ...), and last either
// the command itself or, inside MULTI, queueing it with "+QUEUED".
// Sending too few arguments is therefore useless (the arity error comes
// before the ACL check), but:
//
//   - Commands that only read (those remedy.Commands does not mark
//     Writes: INFO, PING, TIME, LATENCY LATEST, ROLE, CLUSTER NODES) are
//     simply sent.
//   - Writes (CONFIG SET included) are sent only inside MULTI and the
//     transaction is then discarded (and the connection closed, which
//     discards it too): "+QUEUED" means the ACL check passed, NOPERM that
//     it did not, and nothing is ever run. MULTI is sent alone, and
//     nothing follows unless it answered OK. Each also carries checkArg
//     for each argument it takes (RedisCommand.Args), so that even if it
//     ran it would only be an error (a setting CONFIG SET does not know, a
//     syntax error); MEMORY PURGE, CONFIG REWRITE and CLIENT UNPAUSE take
//     none. SHUTDOWN is refused inside MULTI before the ACL check
//     (no-multi, Redis 7.0 and later), so it is not checked there.
//   - docs/redis-acl.md grants the remediation user +multi and +discard
//     for this check; a user without +multi gets those writes listed as
//     not checked. Without +exec they add no power: a transaction that
//     cannot be executed runs nothing.
//
// Each NOPERM leaves an entry in the server's ACL LOG, as the probe's
// refusals do.

// remediationCommands are what the executor (handlers/remedy) sends with
// the remediation credential for the actions the instance's settings allow
// (remedy.Commands of each action), split into those that only read and
// those that write, which are only ever queued.
func remediationCommands(r handlers.Remediation) (reads, writes []handlers.RedisCommand) {
	var all []handlers.RedisCommand
	for _, a := range handlers.Actions {
		all = handlers.MergeCommands(all, remedy.Commands(a, r))
	}
	for _, c := range all {
		if c.Writes {
			writes = append(writes, c)
		} else {
			reads = append(reads, c)
		}
	}
	return reads, writes
}

// checkRemediation logs in with the remediation credential and checks the
// commands approved actions send, without running any that writes.
func checkRemediation(ctx context.Context, inst handlers.Instance, timeout time.Duration) *permCheck {
	res := &permCheck{User: inst.Remediation.Username, Status: "ok"}
	c, err := checkClient(inst, inst.Remediation.Username, inst.Remediation.Password, timeout)
	if err != nil {
		res.Status, res.Error = "error: "+string(handlers.ClassTLS), err.Error()
		return res
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	// One connection throughout: MULTI is a state of the connection, and
	// a sticky connection that breaks is not replaced.
	conn := c.Conn()
	defer conn.Close()

	reads, writes := remediationCommands(inst.Remediation)
	cmds := make([]*redis.Cmd, len(reads))
	_, _ = conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, rc := range reads {
			cmds[i] = p.Do(ctx, checkForm(rc)...)
		}
		return nil
	})
	for i, rc := range reads {
		if res.judge(rc.ACL, cmds[i].Err()); res.failed() {
			return res
		}
	}

	notChecked := func(why string, list []handlers.RedisCommand) {
		for _, w := range list {
			res.NotChecked = append(res.NotChecked, w.ACL)
		}
		res.Why = why
	}
	if err := conn.Do(ctx, "MULTI").Err(); err != nil {
		switch class := probe.Classify(err); class {
		case handlers.ClassNoPerm:
			notChecked("a user without +multi cannot test them without running them; see docs/redis-acl.md", writes)
		case handlers.ClassError:
			// A proxy or fork without transactions.
			notChecked("the server refused MULTI: "+err.Error(), writes)
		default:
			res.Status, res.Error = "error: "+string(class), "MULTI: "+err.Error()
		}
		return res
	}
	queued := make([]*redis.Cmd, len(writes))
	_, _ = conn.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range writes {
			queued[i] = p.Do(ctx, checkForm(w)...)
		}
		p.Do(ctx, "DISCARD")
		return nil
	})
	var refused []handlers.RedisCommand
	for i, w := range writes {
		err := queued[i].Err()
		switch {
		case err == nil && queued[i].Val() != "QUEUED":
			// Not reachable on a server that honours MULTI; say so loudly
			// rather than count it as allowed.
			res.Status, res.Error = "error: "+string(handlers.ClassProtocol), fmt.Sprintf("%s inside MULTI answered %v, not QUEUED", w.ACL, queued[i].Val())
			return res
		case err != nil && strings.Contains(err.Error(), "not allowed inside a transaction"):
			refused = append(refused, w)
		default:
			if res.judge(w.ACL, err); res.failed() {
				return res
			}
		}
	}
	if len(refused) > 0 {
		notChecked("the server refuses them inside MULTI, and check-config never sends them outside one", refused)
	}
	return res
}

// deniedCommand finds the command a NOPERM names: 'memory|usage' (Redis 7)
// or 'memory' with "or its subcommand" (Redis 6).
var deniedCommand = regexp.MustCompile(`run the '([^']+)' command`)

// judge records what a reply to the command checked as acl says about the
// permission: NOPERM is missing, an unknown command is missing too (renamed
// or too old), and any other error comes after the ACL check and so means
// allowed. Errors that are not replies to the command (a wrong password, a
// lost connection, a NOPERM for SELECT while connecting) fail the check.
func (p *permCheck) judge(acl string, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	class := probe.Classify(err)
	msg := err.Error()
	switch {
	case class == handlers.ClassNoPerm:
		m := deniedCommand.FindStringSubmatch(msg)
		switch {
		case m != nil && m[1] != acl && !strings.HasPrefix(acl, m[1]+"|"):
			p.Status, p.Error = "error: "+string(class), msg
		case m == nil && strings.Contains(msg, "key"):
			// "access one of the keys used as arguments" (6.2, 7.0),
			// "access a key" (7.2)
			p.addMissing("read access to keys (%R~*)")
		default:
			p.addMissing(acl)
		}
	case hasPrefixFold(msg, "ERR unknown command"), hasPrefixFold(msg, "ERR unknown subcommand"):
		p.addMissing(acl + " (unknown command)")
	case class == handlers.ClassError, class == handlers.ClassLoading, class == handlers.ClassBusy:
		// Refused after the ACL check: the permission is there.
	default:
		p.Status, p.Error = "error: "+string(class), msg
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (p *permCheck) addMissing(name string) {
	for _, m := range p.Missing {
		if m == name {
			return
		}
	}
	p.Missing = append(p.Missing, name)
	if !p.failed() {
		p.Status = "missing"
	}
}

// checkClient connects as user, with the instance's TLS and database, the
// way every other client does (probe.ClientOptions).
func checkClient(inst handlers.Instance, user, pass string, timeout time.Duration) (*redis.Client, error) {
	inst.Username, inst.Password = user, pass
	opts, err := probe.ClientOptions(inst, timeout)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opts), nil
}
