package handlers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Role is what a verb asks of whoever runs it, in Slack: bot/access maps it
// to its own roles. At a terminal nobody is checked, since whoever runs the
// binary already holds the config and its credentials.
type Role string

// The roles, each allowing what the one before does.
const (
	RoleViewer   Role = "viewer"   // read: diagnoses, lists, history
	RoleOperator Role = "operator" // ask for changes: remediation requests, silences
	RoleApprover Role = "approver" // decide on remediation requests
)

// Where says which transports may run a verb.
type Where uint8

// The transports. A verb that needs to know who asks (an approval, a
// silence) runs only in Slack; one that needs the whole config (serve) only
// at a terminal.
const (
	AtTerminal Where = 1 << iota
	InSlack
	Anywhere = AtTerminal | InSlack
)

// Flag is one of a verb's options. The CLI declares it as a flag of the
// verb's command and hands it back in the arguments ("--top 20"), so that
// the verb's handler checks it the same way for both transports.
type Flag struct {
	Name string
	// Value names the flag's value in help ("N", "PATTERN"); empty for a
	// flag that takes none (--fast).
	Value string
	Usage string
	// Render, when set, is a flag of the terminal's rendering, not of the
	// verb: the CLI keeps it and the handler never sees it (--runbook).
	Render bool
}

// Handler answers one verb. cmd.Scope, when set, already limits s to the
// channel's instances.
type Handler func(ctx context.Context, s *Service, cmd Command) (*Response, error)

// Verb is one entry of the verb table, the one place a verb exists: the
// Slack transport and the CLI's command tree both read it.
type Verb struct {
	Name string
	// Usage is the verb with its arguments and options, as help shows it.
	Usage   string
	Summary string
	Flags   []Flag
	Role    Role
	Where   Where
	// Long verbs take minutes (a key scan): a transport that can show
	// progress runs them in the background and shows it.
	Long bool
	// Probes says the first argument names an instance the verb probes
	// while the user waits: Slack keeps commands about an instance that
	// does not answer off the workers the other commands need.
	Probes bool
	// Handle answers the verb; nil for the verbs the binary runs itself
	// (serve, check-config, version), which need the whole config.
	Handle Handler
}

// Verbs is the verb table, in help order. It is filled in init because the
// help verb's handler reads it.
var Verbs []Verb

func init() {
	instanceVerb := func(name, summary string, f func(*Service) func(context.Context, string) (*Report, error)) Verb {
		return Verb{Name: name, Usage: name + " <instance>", Summary: summary, Role: RoleViewer, Where: Anywhere, Probes: true,
			Handle: func(ctx context.Context, s *Service, cmd Command) (*Response, error) {
				return s.instanceReports(ctx, cmd, f(s))
			}}
	}
	// At a terminal a report shows each finding in a line; --runbook
	// prints their runbooks too. Slack has a runbook button per finding.
	runbook := Flag{Name: "runbook", Usage: "print each finding's full runbook", Render: true}
	withRunbook := func(v Verb) Verb {
		v.Flags = append(v.Flags, runbook)
		return v
	}
	tag := Flag{Name: "tag", Value: "TAG", Usage: "only instances with this tag"}
	change := func(name, usage, summary string) Verb {
		// A request's plan reads the instance first.
		return Verb{Name: name, Usage: usage, Summary: summary, Role: RoleOperator, Where: InSlack, Probes: true, Handle: requestRemediation}
	}
	Verbs = []Verb{
		{Name: "diagnose", Usage: "diagnose <instance> [finding]", Summary: "every memory finding with its evidence, or one finding's full runbook",
			Flags: []Flag{runbook}, Role: RoleViewer, Where: Anywhere, Probes: true, Handle: diagnoseVerb},
		withRunbook(instanceVerb("frag", "walk the fragmentation decision tree and show the path taken", func(s *Service) func(context.Context, string) (*Report, error) { return s.Frag })),
		withRunbook(instanceVerb("oom", "maxmemory, eviction, RSS against the memory limit, fork headroom", func(s *Service) func(context.Context, string) (*Report, error) { return s.OOM })),
		instanceVerb("doctor", "MEMORY DOCTOR's own report", func(s *Service) func(context.Context, string) (*Report, error) { return s.Doctor }),
		{Name: "keys", Usage: "keys <instance> [--match 'prefix:*'] [--top N] [--limit N] [--fast]",
			Summary: "where the memory is: biggest keys, key patterns, keys without TTL (a throttled SCAN)",
			Flags: []Flag{
				runbook,
				{Name: "match", Value: "PATTERN", Usage: "only keys matching this SCAN glob"},
				{Name: "top", Value: "N", Usage: "how many of the biggest keys to show"},
				{Name: "limit", Value: "N", Usage: "stop after this many keys (500000, 500k, 1m)"},
				{Name: "fast", Usage: "do not throttle the scan (operators only, in Slack)"},
			},
			Role: RoleViewer, Where: Anywhere, Long: true, Handle: keysVerb},
		{Name: "fleet", Usage: "fleet [tag]", Summary: "probe every instance (with the tag), riskiest first", Flags: []Flag{tag},
			Role: RoleViewer, Where: Anywhere, Handle: fleetVerb},
		{Name: "list", Usage: "list [tag]", Summary: "the configured instances", Flags: []Flag{tag},
			Role: RoleViewer, Where: Anywhere, Handle: listVerb},
		change("purge", "purge <instance>", "request MEMORY PURGE (approval required)"),
		change("defrag", "defrag <instance> on|off", "request active defrag on or off (approval required)"),
		change("set", "set <instance> maxmemory <size> | policy <policy>", "request a CONFIG SET (approval required)"),
		change("bgsave", "bgsave <instance>", "request a BGSAVE (approval required)"),
		change("restart", "restart <instance>", "request a restart (approval required)"),
		change("failover", "failover <instance>", "request a failover to a replica (approval required)"),
		{Name: "approvals", Usage: "approvals", Summary: "pending approval requests", Role: RoleViewer, Where: Anywhere, Handle: approvalsVerb},
		{Name: "audit", Usage: "audit [instance]", Summary: "what was requested, decided and done", Role: RoleViewer, Where: Anywhere, Handle: auditVerb},
		{Name: "trend", Usage: "trend <instance> [" + TrendWindowNames() + "]", Summary: "a chart of memory and fragmentation from the sweeps' history",
			Flags: []Flag{{Name: "out", Value: "FILE", Usage: "write the chart to this PNG file (default ./trend-<instance>.png)", Render: true}},
			Role:  RoleViewer, Where: Anywhere, Handle: trendVerb},
		{Name: "silence", Usage: "silence <instance> <finding>|all <duration>", Summary: "stop alerts for one finding (in an alert's thread, that alert's) or all of an instance's (operator)",
			Role: RoleOperator, Where: InSlack, Handle: silenceVerb},
		{Name: "unsilence", Usage: "unsilence <id>|<instance> [finding]", Summary: "lift a silence by its id, or an instance's (operator)",
			Role: RoleOperator, Where: InSlack, Handle: unsilenceVerb},
		{Name: "silences", Usage: "silences", Summary: "active silences", Role: RoleViewer, Where: Anywhere, Handle: silencesVerb},
		{Name: "help", Usage: "help [verb]", Summary: "this help", Role: RoleViewer, Where: Anywhere, Handle: helpVerb},
		{Name: "check-config", Usage: "check-config", Summary: "validate the config and probe every instance", Role: RoleOperator, Where: AtTerminal},
		{Name: "serve", Usage: "serve", Summary: "connect to Slack (Socket Mode) and answer /redis commands", Role: RoleOperator, Where: AtTerminal},
		{Name: "version", Usage: "version", Summary: "print the version", Role: RoleViewer, Where: AtTerminal},
	}
}

// LookupVerb finds a verb of the table by name.
func LookupVerb(name string) (Verb, bool) {
	i := slices.IndexFunc(Verbs, func(v Verb) bool { return v.Name == name })
	if i < 0 {
		return Verb{}, false
	}
	return Verbs[i], true
}

// VerbsFor lists the verbs a transport may run, in help order.
func VerbsFor(w Where) []Verb {
	var out []Verb
	for _, v := range Verbs {
		if v.Where&w != 0 {
			out = append(out, v)
		}
	}
	return out
}

// Help is the verb's entry in help.
func (v Verb) Help() VerbHelp { return VerbHelp{Verb: v.Name, Usage: v.Usage, Summary: v.Summary} }

// UsageError is a malformed command of this verb: what is wrong and the
// verb's usage.
func (v Verb) UsageError(msg string) *UsageError {
	return &UsageError{Verb: v.Name, Msg: fmt.Sprintf("%s (usage: %s)", msg, v.Usage)}
}

// NotHere is the answer to a verb asked of a transport it does not run in.
func (v Verb) NotHere(args []string) *UsageError {
	typed := strings.TrimSpace(v.Name + " " + strings.Join(args, " "))
	switch {
	case v.Where&InSlack == 0:
		return &UsageError{Verb: v.Name, Msg: fmt.Sprintf("%s runs only at a terminal: redisbot %s", v.Name, v.Name)}
	case v.Role == RoleOperator:
		return &UsageError{Verb: v.Name, Msg: fmt.Sprintf("%s runs only in Slack, where it needs an approver: type /redis %s in an on-call channel", v.Name, typed)}
	}
	return &UsageError{Verb: v.Name, Msg: fmt.Sprintf("%s runs only in Slack: type /redis %s", v.Name, typed)}
}

// UnknownVerbError answers a verb that is not in the table, naming the
// closest ones.
func UnknownVerbError(name string, w Where) *UsageError {
	var names []string
	for _, v := range VerbsFor(w) {
		names = append(names, v.Name)
	}
	msg := fmt.Sprintf("unknown verb %q", redact.Truncate(name, 32))
	if near := Closest(strings.ToLower(name), names, 3); len(near) > 0 {
		msg += " (did you mean " + strings.Join(near, ", ") + "?)"
	}
	return &UsageError{Msg: msg + "; verbs: " + strings.Join(names, ", ")}
}

// instanceReports answers a verb about one instance; a cluster seed's or
// Sentinel entry's name stands for its members.
func (s *Service) instanceReports(ctx context.Context, cmd Command, f func(context.Context, string) (*Report, error)) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if len(cmd.Args) != 1 {
		return nil, v.UsageError(fmt.Sprintf("%s takes exactly one instance name", cmd.Verb))
	}
	resp := &Response{Verb: cmd.Verb}
	if reports, ok, err := s.memberReports(ctx, cmd.Verb, cmd.Args[0], f); ok {
		if err != nil {
			return nil, err
		}
		resp.Reports = reports
		return resp, nil
	}
	r, err := f(ctx, cmd.Args[0])
	if err != nil {
		return nil, err
	}
	resp.Reports = []*Report{r}
	return resp, nil
}

// diagnoseVerb diagnoses an instance; with a finding, the answer is that
// finding's full runbook, filled from this probe.
func diagnoseVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	v, _ := LookupVerb(cmd.Verb)
	if len(cmd.Args) != 1 && len(cmd.Args) != 2 {
		return nil, v.UsageError("diagnose takes an instance name and, for its runbook, a finding")
	}
	finding := ""
	if len(cmd.Args) == 2 {
		finding = cmd.Args[1]
		if _, ok := SpecFor(finding); !ok {
			return nil, v.UsageError(fmt.Sprintf("unknown finding %q", redact.Truncate(finding, 40)))
		}
		cmd.Args = cmd.Args[:1]
	}
	resp, err := s.instanceReports(ctx, cmd, s.Diagnose)
	if err != nil {
		return nil, err
	}
	resp.Runbook = finding
	return resp, nil
}

func keysVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	name, opts, err := ParseKeysArgs(cmd.Args)
	if err != nil {
		return nil, err
	}
	opts.Progress = cmd.Progress
	r, err := s.Keys(ctx, name, opts)
	if err != nil {
		return nil, err
	}
	return &Response{Verb: cmd.Verb, Reports: []*Report{r}}, nil
}

// tagArg reads fleet's and list's optional tag: "team-a" or "--tag team-a".
func tagArg(cmd Command) (string, error) {
	switch {
	case len(cmd.Args) == 0:
		return "", nil
	case len(cmd.Args) == 1 && !strings.HasPrefix(cmd.Args[0], "-"):
		return cmd.Args[0], nil
	case len(cmd.Args) == 2 && cmd.Args[0] == "--tag":
		return cmd.Args[1], nil
	}
	v, _ := LookupVerb(cmd.Verb)
	return "", v.UsageError(fmt.Sprintf("%s takes at most one tag", cmd.Verb))
}

func fleetVerb(ctx context.Context, s *Service, cmd Command) (*Response, error) {
	tag, err := tagArg(cmd)
	if err != nil {
		return nil, err
	}
	// The view shows each instance's numbers, findings and first action,
	// never its runbooks: compact reports are enough. The instances the
	// last sweep saw time out get a short first probe (SetTimedOut).
	reports, err := s.fleet(ctx, tag, s.lastTimedOut(), true)
	if err != nil {
		return nil, &UsageError{Verb: cmd.Verb, Msg: err.Error()}
	}
	return &Response{Verb: cmd.Verb, Reports: reports}, nil
}

func listVerb(_ context.Context, s *Service, cmd Command) (*Response, error) {
	tag, err := tagArg(cmd)
	if err != nil {
		return nil, err
	}
	return &Response{Verb: cmd.Verb, Instances: s.Instances(tag)}, nil
}

// helpVerb lists the verbs the asking transport runs, or one verb.
func helpVerb(_ context.Context, _ *Service, cmd Command) (*Response, error) {
	resp := &Response{Verb: "help"}
	if len(cmd.Args) > 0 {
		v, ok := LookupVerb(strings.ToLower(cmd.Args[0]))
		if !ok {
			return nil, &UsageError{Verb: "help", Msg: fmt.Sprintf("unknown verb %q", redact.Truncate(cmd.Args[0], 32))}
		}
		resp.Help = []VerbHelp{v.Help()}
		return resp, nil
	}
	for _, v := range VerbsFor(InSlack) {
		resp.Help = append(resp.Help, v.Help())
	}
	return resp, nil
}
