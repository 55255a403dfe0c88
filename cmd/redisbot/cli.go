package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/redisbot/redisbot/bot/terminal"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redact"
	"github.com/redisbot/redisbot/runbooks"
)

// cli is one invocation: the command tree generated from the verb table,
// the global flags it parsed, and the exit code the verb chose.
type cli struct {
	wiring
	getenv         func(string) string
	stdout, stderr io.Writer
	opts           options
	code           int
}

// usageError is a line cobra could not parse (an unknown flag, a flag
// without its value): the user gets the verb's usage with it.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }

// execute parses args through the command tree and runs the verb.
func (c *cli) execute(ctx context.Context, args []string) int {
	root := c.tree()
	root.SetArgs(args)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	_, err := root.ExecuteContextC(ctx)
	if err == nil {
		return c.code
	}
	fmt.Fprintf(c.stderr, "redisbot: %s\n", terminal.Clean(err.Error()))
	var usage *usageError
	if errors.As(err, &usage) {
		fmt.Fprintf(c.stderr, "\n%s", usage.cmd.UsageString())
	}
	return exitError
}

// Command groups in help: what runs here, and what only Slack runs.
const (
	groupVerbs = "verbs"
	groupSlack = "slack"
)

// tree is the CLI: one command per entry of the verb table, the global
// flags, help, --version and completion from cobra.
func (c *cli) tree() *cobra.Command {
	cobra.EnableCommandSorting = false // the table's order: diagnosis first
	root := &cobra.Command{
		Use:   "redisbot",
		Short: "Diagnose Redis memory problems from a terminal, and serve the same verbs to Slack",
		Long: "redisbot diagnoses Redis memory problems: fragmentation, maxmemory and eviction, RSS against the memory limit,\n" +
			"the keys that hold the memory. The same verbs answer /redis in Slack (redisbot serve).\n\n" +
			"Exit codes: 0 nothing above info, 1 warning, 2 critical, 3 probe, config or usage error, 70 internal error.",
		Version:       version,
		SilenceErrors: true, // execute prints them, with the usage when it helps
		SilenceUsage:  true,
		// Anything left at the root is not a verb.
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return handlers.UnknownVerbError(args[0], handlers.AtTerminal)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return c.opts.check()
		},
	}
	root.SetVersionTemplate("redisbot {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return &usageError{cmd, err} })
	flags := root.PersistentFlags()
	flags.StringVar(&c.opts.config, "config", "", "config file (default ./config.yaml, then ./config.example.yaml)")
	flags.BoolVar(&c.opts.json, "json", false, "print JSON instead of text")
	flags.StringVar(&c.opts.color, "color", "auto", "colour output: auto, always or never")
	flags.StringVar(&c.opts.logFormat, "log-format", "auto", "serve logs: json, text, or auto (text on a terminal)")
	root.AddGroup(&cobra.Group{ID: groupVerbs, Title: "Verbs:"},
		&cobra.Group{ID: groupSlack, Title: "Only in Slack (type /redis <verb> in a channel):"})

	for _, v := range handlers.Verbs {
		if v.Name == "help" {
			root.SetHelpCommand(c.helpCommand(root, v))
			continue
		}
		root.AddCommand(c.verbCommand(v))
	}
	return root
}

// helpCommand is the table's help verb: the root's help, or one verb's.
// Unlike cobra's own, an unknown verb is a usage error.
func (c *cli) helpCommand(root *cobra.Command, v handlers.Verb) *cobra.Command {
	return &cobra.Command{
		Use:   v.Usage,
		Short: v.Summary,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			var names []string
			for _, v := range handlers.Verbs {
				names = append(names, v.Name)
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return root.Help()
			}
			cmd, _, err := root.Find(args)
			if err != nil || cmd == root {
				return handlers.UnknownVerbError(args[0], handlers.AtTerminal)
			}
			return cmd.Help()
		},
	}
}

// verbCommand is one verb's command: its flags from the table, handed back
// to the verb's handler in its arguments, which checks them as it does in
// Slack.
func (c *cli) verbCommand(v handlers.Verb) *cobra.Command {
	cmd := &cobra.Command{
		Use:               v.Usage,
		Short:             v.Summary,
		Long:              verbLong(v),
		GroupID:           groupVerbs,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	if v.Where&handlers.AtTerminal == 0 {
		cmd.GroupID = groupSlack
	}
	for _, f := range v.Flags {
		if f.Value == "" {
			cmd.Flags().Bool(f.Name, false, f.Usage)
		} else {
			cmd.Flags().Var(&namedValue{name: f.Value}, f.Name, f.Usage)
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if v.Where&handlers.AtTerminal == 0 {
			fmt.Fprintf(c.stderr, "redisbot: %s\n", terminal.Clean(v.NotHere(args).Error()))
			c.code = exitError
			return nil
		}
		render := renderOptions{}
		for _, f := range v.Flags {
			if !cmd.Flags().Changed(f.Name) {
				continue
			}
			value := cmd.Flags().Lookup(f.Name).Value.String()
			switch {
			case f.Name == "runbook":
				render.runbooks = true
			case f.Name == "out":
				render.out = value
			case f.Value == "":
				args = append(args, "--"+f.Name)
			default:
				args = append(args, "--"+f.Name, value)
			}
		}
		c.code = c.runVerb(cmd.Context(), v, args, render)
		return nil
	}
	return cmd
}

// namedValue is a verb's string flag, shown in help by the name of its
// value ("--top N") rather than its type ("--top string").
type namedValue struct{ name, value string }

func (v *namedValue) String() string     { return v.value }
func (v *namedValue) Set(s string) error { v.value = s; return nil }
func (v *namedValue) Type() string       { return v.name }

// verbLong is a verb's help text: its summary, and where it runs.
func verbLong(v handlers.Verb) string {
	long := strings.ToUpper(v.Summary[:1]) + v.Summary[1:] + "."
	if v.Where&handlers.AtTerminal == 0 {
		long += "\n\n" + v.NotHere(nil).Error() + "."
	}
	return long
}

// renderOptions are the flags of the terminal's rendering, not the verb's.
type renderOptions struct {
	runbooks bool   // --runbook: every finding's full runbook
	out      string // trend --out: where the chart goes
}

// check refuses global flag values that would otherwise silently mean
// their default.
func (o options) check() error {
	switch o.color {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--color must be auto, always or never, not %q", o.color)
	}
	// Any case, as wantJSONLogs reads it.
	switch strings.ToLower(o.logFormat) {
	case "json", "text", "auto":
	default:
		return fmt.Errorf("--log-format must be json, text or auto, not %q", o.logFormat)
	}
	return nil
}

// setup is what every verb but version works with: the config, its
// runbooks, and the service over its instances.
type setup struct {
	cfg    *config.Config
	path   string
	lib    *runbooks.Library
	prober *probe.Prober
	svc    *handlers.Service
	store  *localRecords
}

// setUp loads the config and builds the service; close releases what it
// opened. On failure it has printed why and returns the exit code.
func (c *cli) setUp(ctx context.Context) (s *setup, code int) {
	cfg, path, err := loadConfig(ctx, c.opts.config, c.getenv)
	if err != nil {
		fmt.Fprintf(c.stderr, "redisbot: %v\n", err)
		return nil, exitError
	}
	lib, err := runbooks.Load(cfg.Runbooks.Dir)
	if err != nil {
		fmt.Fprintf(c.stderr, "redisbot: runbooks: %v\n", err)
		return nil, exitError
	}
	prober := probe.New(cfg.Probe.Timeout, nil)
	// Cluster seeds become their nodes and Sentinel entries their current
	// primary and replicas; an entry that cannot be expanded stays, and is
	// reported unreachable with the reason.
	svc := handlers.NewService(nil, c.serviceProber(prober), nil, cfg.Probe.Concurrency, nil)
	svc.SetFleetGrowth(cfg.Probe.BlockedAfter, cfg.Probe.WorkersGrowth)
	setMembership(svc, cfg)
	for _, err := range svc.Refresh(ctx) {
		fmt.Fprintf(c.stderr, "redisbot: %s\n", terminal.Clean(redact.Secrets(err.Error(), cfg.Secrets()...)))
	}
	svc.SetKeyScanner(keyScanner(cfg))
	svc.OnPanic(printPanics(c.stderr))
	records := &localRecords{cfg: cfg.Store}
	svc.SetRecords(records)
	return &setup{cfg: cfg, path: path, lib: lib, prober: prober, svc: svc, store: records}, exitOK
}

func (s *setup) close() {
	s.prober.Close()
	s.store.close()
}

// runVerb runs one verb at the terminal and returns the exit code.
func (c *cli) runVerb(ctx context.Context, v handlers.Verb, args []string, render renderOptions) int {
	if v.Name == "version" {
		fmt.Fprintf(c.stdout, "redisbot %s\n", version)
		return exitOK
	}
	s, code := c.setUp(ctx)
	if s == nil {
		return code
	}
	defer s.close()
	if v.Name != "serve" {
		// One probe per instance: a pooled socket would idle until exit.
		s.prober.DialPerProbe()
	}
	switch v.Name {
	case "check-config":
		return checkConfig(ctx, s.cfg, s.svc, s.path, c.opts, c.stdout)
	case "serve":
		return serve(ctx, s.cfg, s.svc, c.serviceProber(s.prober), s.prober, s.lib, c.stderr, wantJSONLogs(c.opts.logFormat, c.stderr, c.getenv))
	}

	cmd := handlers.Command{Verb: v.Name, Args: args}
	var bar *progressBar
	if v.Long && isTerminal(c.stderr) {
		bar = &progressBar{w: c.stderr}
		cmd.Progress = bar.show
	}
	resp, err := s.svc.Handle(ctx, cmd)
	bar.clear()
	if err != nil {
		fmt.Fprintf(c.stderr, "redisbot: %s\n", terminal.Clean(err.Error()))
		if handlers.IsUsage(err) && !errors.Is(err, handlers.ErrUnknownInstance) {
			fmt.Fprintf(c.stderr, "Run 'redisbot help %s' for usage.\n", v.Name)
		}
		return exitError
	}
	if resp.Trend != nil {
		return c.trend(resp.Trend, render.out)
	}
	if c.opts.json {
		if err := writeJSON(c.stdout, resp); err != nil {
			fmt.Fprintf(c.stderr, "redisbot: %v\n", err)
			return exitError
		}
		return exitCode(resp.Reports)
	}
	r := terminal.New(c.stdout, useColor(c.opts.color, c.stdout, c.getenv), s.lib).WithRunbooks(render.runbooks)
	switch {
	case resp.Runbook != "":
		c.runbook(r, resp)
	case !r.Records(resp, time.Now()):
		r.Response(resp)
	}
	return exitCode(resp.Reports)
}

// runbook answers diagnose <instance> <finding>: each report narrowed to
// that finding, with its full runbook.
func (c *cli) runbook(r *terminal.Renderer, resp *handlers.Response) {
	r.WithRunbooks(true)
	for _, rep := range resp.Reports {
		f, ok := rep.Finding(resp.Runbook)
		if !ok && !rep.Failed() {
			var ids []string
			for _, f := range rep.Findings {
				ids = append(ids, f.ID)
			}
			fmt.Fprintf(c.stdout, "%s has no %s finding in this probe (findings: %s).\n", terminal.Clean(rep.Instance), resp.Runbook, strings.Join(ids, ", "))
			continue
		}
		narrowed := *rep
		narrowed.Findings = nil
		if ok {
			narrowed.Findings = []handlers.Finding{f}
		}
		r.Report(&narrowed)
	}
}
