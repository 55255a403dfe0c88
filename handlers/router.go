package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Command is one request as a verb and its arguments. The CLI builds it from
// os.Args; Slack from the slash command's text via ParseCommand.
type Command struct {
	Verb string
	Args []string
	// Scope, when set, limits the command to instances carrying one of these
	// tags: a team channel only sees its own instances, and names outside
	// the scope answer as unknown.
	Scope []string
	// Progress, when set, hears how a long verb (keys) is getting on; the
	// transport shows it (a Slack message updated, a terminal bar).
	Progress func(KeyScanProgress)
}

// MaxCommandLength bounds what chat input we parse at all.
const MaxCommandLength = 1000

// UsageError is a malformed command: the transport shows it with the usage.
type UsageError struct {
	Verb string
	Msg  string
}

func (e *UsageError) Error() string { return e.Msg }

// ParseCommand splits chat text into words. Single or double quotes group
// words; control characters, unbalanced quotes and over-long text are
// refused before anything else happens.
func ParseCommand(text string) (Command, error) {
	if len(text) > MaxCommandLength {
		return Command{}, &UsageError{Msg: fmt.Sprintf("command is %d characters long; the limit is %d", len(text), MaxCommandLength)}
	}
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range text {
		switch {
		case r == unicode.ReplacementChar:
			return Command{}, &UsageError{Msg: "command contains invalid UTF-8"}
		case unicode.IsControl(r) && r != ' ' && r != '\t':
			return Command{}, &UsageError{Msg: "command contains control characters"}
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'' || r == '“' || r == '”':
			if r == '“' || r == '”' {
				r = '”' // Slack clients turn straight quotes into curly ones
			}
			quote, inWord = r, true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return Command{}, &UsageError{Msg: "unbalanced quotes in command"}
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return Command{Verb: "help"}, nil
	}
	return Command{Verb: strings.ToLower(words[0]), Args: words[1:]}, nil
}

// Response is what a verb produced, for any transport to render.
type Response struct {
	Verb      string
	Reports   []*Report
	Instances []Instance
	Help      []VerbHelp
}

// VerbHelp documents one verb.
type VerbHelp struct {
	Verb, Usage, Summary string
}

// Verbs lists what the router answers, in help order.
var Verbs = []VerbHelp{
	{"diagnose", "diagnose <instance>", "every memory finding with its evidence and runbook"},
	{"frag", "frag <instance>", "walk the fragmentation decision tree and show the path taken"},
	{"oom", "oom <instance>", "maxmemory, eviction, RSS against the memory limit, fork headroom"},
	{"doctor", "doctor <instance>", "MEMORY DOCTOR's own report"},
	{"keys", "keys <instance> [--match 'prefix:*'] [--top N] [--limit N] [--fast]", "where the memory is: biggest keys, key patterns, keys without TTL (a throttled SCAN)"},
	{"fleet", "fleet [tag]", "probe every instance (with the tag), riskiest first"},
	{"list", "list [tag]", "the configured instances"},
	{"purge", "purge <instance>", "request MEMORY PURGE (approval required)"},
	{"defrag", "defrag <instance> on|off", "request active defrag on or off (approval required)"},
	{"set", "set <instance> maxmemory <size> | policy <policy>", "request a CONFIG SET (approval required)"},
	{"bgsave", "bgsave <instance>", "request a BGSAVE (approval required)"},
	{"restart", "restart <instance>", "request a restart (approval required)"},
	{"failover", "failover <instance>", "request a failover to a replica (approval required)"},
	{"approvals", "approvals", "pending approval requests"},
	{"audit", "audit [instance]", "what was requested, decided and done"},
	{"trend", "trend <instance> [15m|1h|6h|24h|7d|30d]", "a chart of memory and fragmentation from the sweeps' history"},
	{"silence", "silence <instance> [finding] <duration>", "stop alerts for an instance or one finding (operator)"},
	{"silences", "silences", "active silences"},
	{"help", "help [verb]", "this help"},
}

// RemediationVerbs run through the approval flow in Slack, not the router.
var RemediationVerbs = []string{"purge", "defrag", "set", "bgsave", "restart", "failover", "approvals", "audit"}

func verbHelp(verb string) (VerbHelp, bool) {
	for _, v := range Verbs {
		if v.Verb == verb {
			return v, true
		}
	}
	return VerbHelp{}, false
}

// Handle routes a command to its verb. Errors are *UsageError for malformed
// commands and *UnknownInstanceError for names not in config; a failed probe
// is not an error but an "unreachable" finding in the report.
func (s *Service) Handle(ctx context.Context, cmd Command) (*Response, error) {
	// Before scoping: a read replaces the whole list, never a view's.
	s.refreshFor(ctx, cmd)
	if len(cmd.Scope) > 0 {
		s = s.scoped(cmd.Scope)
	}
	resp := &Response{Verb: cmd.Verb}
	usage := func(msg string) error {
		v, _ := verbHelp(cmd.Verb)
		return &UsageError{Verb: cmd.Verb, Msg: fmt.Sprintf("%s (usage: %s)", msg, v.Usage)}
	}
	one := func(f func(context.Context, string) (*Report, error)) (*Response, error) {
		if len(cmd.Args) != 1 {
			return nil, usage(fmt.Sprintf("%s takes exactly one instance name", cmd.Verb))
		}
		// A cluster seed's or Sentinel entry's name stands for its members.
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
	tagArg := func() (string, error) {
		switch {
		case len(cmd.Args) == 0:
			return "", nil
		case len(cmd.Args) == 1 && !strings.HasPrefix(cmd.Args[0], "-"):
			return cmd.Args[0], nil
		case len(cmd.Args) == 2 && cmd.Args[0] == "--tag":
			return cmd.Args[1], nil
		}
		return "", usage(fmt.Sprintf("%s takes at most one tag", cmd.Verb))
	}

	switch cmd.Verb {
	case "diagnose":
		return one(s.Diagnose)
	case "frag":
		return one(s.Frag)
	case "oom":
		return one(s.OOM)
	case "doctor":
		return one(s.Doctor)
	case "keys":
		name, opts, err := ParseKeysArgs(cmd.Args)
		if err != nil {
			return nil, err
		}
		opts.Progress = cmd.Progress
		r, err := s.Keys(ctx, name, opts)
		if err != nil {
			return nil, err
		}
		resp.Reports = []*Report{r}
		return resp, nil
	case "fleet":
		tag, err := tagArg()
		if err != nil {
			return nil, err
		}
		if resp.Reports, err = s.Fleet(ctx, tag); err != nil {
			return nil, &UsageError{Verb: cmd.Verb, Msg: err.Error()}
		}
		return resp, nil
	case "list":
		tag, err := tagArg()
		if err != nil {
			return nil, err
		}
		resp.Instances = s.Instances(tag)
		return resp, nil
	case "trend", "silence", "silences":
		return nil, &UsageError{Verb: cmd.Verb, Msg: fmt.Sprintf("%s reads the bot's state store: type /redis %s in Slack", cmd.Verb, cmd.Verb)}
	case "purge", "defrag", "set", "bgsave", "restart", "failover", "approvals", "audit":
		return nil, &UsageError{Verb: cmd.Verb, Msg: fmt.Sprintf("%s runs only in Slack, where it needs an approver: type /redis %s in an on-call channel", cmd.Verb, strings.TrimSpace(cmd.Verb+" "+strings.Join(cmd.Args, " ")))}
	case "help", "":
		resp.Verb = "help"
		resp.Help = Verbs
		if len(cmd.Args) > 0 {
			v, ok := verbHelp(strings.ToLower(cmd.Args[0]))
			if !ok {
				return nil, &UsageError{Verb: "help", Msg: fmt.Sprintf("unknown verb %q", redact.Truncate(cmd.Args[0], 32))}
			}
			resp.Help = []VerbHelp{v}
		}
		return resp, nil
	}
	return nil, &UsageError{Msg: fmt.Sprintf("unknown verb %q; verbs: %s", redact.Truncate(cmd.Verb, 32), verbList())}
}

func verbList() string {
	names := make([]string, len(Verbs))
	for i, v := range Verbs {
		names[i] = v.Verb
	}
	return strings.Join(names, ", ")
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
