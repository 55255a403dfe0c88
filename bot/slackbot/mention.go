package slackbot

import (
	"context"
	"fmt"
	"strings"

	"github.com/redisbot/redisbot/bot/blockkit"
	"github.com/redisbot/redisbot/handlers"
)

// mention answers a mention or a direct message. Unlike a slash command it
// may be free text ("why is cache-1 using so much memory?"), which can only
// be read once the channel's scope is known: the access check comes first,
// and only the names of instances in that scope are looked for in the text,
// so a host or a name outside it is never probed.
func (b *Bot) mention(ctx context.Context, j job) (string, error) {
	scope, outcome, ok := b.allowed(ctx, j)
	if !ok {
		return outcome, nil
	}
	names, err := b.instanceNames(ctx, scope)
	if err != nil {
		return outcomeInternal, b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	m, err := handlers.ReadMention(j.text, verbNames(), names)
	if err != nil {
		return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(err))
	}
	if m.Command.Verb == "" && len(m.Closest) > 0 {
		return outcomeUsage, b.ephemeral(ctx, j, blockkit.RenderError(closestHelp(m.Closest)))
	}
	if m.Inferred {
		// Said before the probe starts, so the asker sees at once what the
		// bot is about to answer, and can ask again if it read them wrong.
		note := blockkit.RenderNote(fmt.Sprintf("Reading this as `diagnose %s`", m.Command.Args[0]))
		if err := b.post(ctx, j, blockkit.Reply{Messages: []blockkit.Message{note}}); err != nil {
			return outcomeInternal, err
		}
	}
	return b.run(ctx, j, m.Command, scope)
}

// instanceNames are the names of the instances in scope, as `list` shows
// them: the router knows the fleet, the transport does not. Listing probes
// no instance; with cluster or Sentinel entries it re-reads a membership
// older than its cache allows, as `list` does, so a member that just
// appeared can be named.
func (b *Bot) instanceNames(ctx context.Context, scope []string) ([]string, error) {
	resp, err := b.opts.Router.Handle(ctx, handlers.Command{Verb: "list", Scope: scope})
	if err != nil {
		return nil, fmt.Errorf("list instances in scope: %w", err)
	}
	names := make([]string, len(resp.Instances))
	for i, inst := range resp.Instances {
		names[i] = inst.Name
	}
	return names, nil
}

// verbNames are every verb's name: a mention starting with one that Slack
// does not run still reads as that verb and is told where it runs.
func verbNames() []string {
	names := make([]string, len(handlers.Verbs))
	for i, v := range handlers.Verbs {
		names[i] = v.Name
	}
	return names
}

// closestHelp answers text that is neither a command nor about an
// instance in scope, naming the verbs nearest its first word that Slack
// runs, with their arguments.
func closestHelp(closest []string) *handlers.UsageError {
	var usages []string
	for _, name := range closest {
		if v, ok := handlers.LookupVerb(name); ok && v.Where&handlers.InSlack != 0 {
			usages = append(usages, "`"+v.Usage+"`")
		}
	}
	msg := "I could not read that as a command, and it names no instance redisbot watches here."
	if len(usages) > 0 {
		msg += " Closest commands: " + strings.Join(usages, ", ") + "."
	}
	return &handlers.UsageError{Msg: msg}
}
