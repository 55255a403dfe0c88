package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
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
	// Changes, when set, carries out remediation requests and silences
	// for whoever asked; only the Slack transport knows who that is.
	Changes Changer
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
	Approvals []PendingApproval
	Audit     []AuditEntry
	AuditOf   string // whose audit log: an instance, or "all instances"
	Silences  []SilenceEntry
	Trend     *Trend
	// Runbook, when set, names the finding whose full runbook was asked
	// for (diagnose <instance> <finding>).
	Runbook string `json:"-"`
	// Answered: the verb answered the user itself (a remediation request's
	// approval message); there is nothing more to render.
	Answered bool `json:"-"`
}

// VerbHelp documents one verb.
type VerbHelp struct {
	Verb, Usage, Summary string
}

// Handle runs a command through the verb table. Errors are *UsageError for
// malformed commands and *UnknownInstanceError for names not in config; a
// failed probe is not an error but an "unreachable" finding in the report.
// Which transport may run the verb, and with which role, is the
// transport's check (Verb.Where, Verb.Role).
func (s *Service) Handle(ctx context.Context, cmd Command) (*Response, error) {
	if cmd.Verb == "" {
		cmd.Verb = "help"
	}
	v, ok := LookupVerb(cmd.Verb)
	if !ok {
		return nil, UnknownVerbError(cmd.Verb, InSlack)
	}
	if v.Handle == nil {
		return nil, v.NotHere(cmd.Args)
	}
	// Before scoping: a read replaces the whole list, never a view's.
	s.refreshFor(ctx, cmd)
	if len(cmd.Scope) > 0 {
		s = s.scoped(cmd.Scope)
	}
	return v.Handle(ctx, s, cmd)
}

// IsUsage reports whether err is a usage error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}
