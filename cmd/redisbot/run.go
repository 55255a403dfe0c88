package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/redisbot/redisbot/bot/terminal"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
)

// Exit codes, a contract for scripts and monitoring wrappers (README, CLI).
const (
	exitOK       = 0 // nothing above info
	exitWarning  = 1 // a warning finding
	exitCritical = 2 // a critical finding
	exitError    = 3 // a probe failed (a panic while probing included), or the config or command is wrong, or serve could not start
	// exitInternal is a bug: a panic that nothing below run recovered.
	// EX_SOFTWARE from sysexits.h; distinct from 2, the code Go itself
	// exits with on an unrecovered panic, which here means "critical".
	exitInternal = 70
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// options are the flags every verb accepts.
type options struct {
	config    string
	json      bool
	color     string
	logFormat string
}

// run executes one CLI invocation and returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return wiring{}.run(ctx, args, getenv, stdout, stderr)
}

// wiring is what end-to-end tests replace in a run: a fault that no real
// server provides on demand, injected where the real one would happen.
type wiring struct {
	// prober, when set, wraps the prober the service (CLI and serve) uses.
	prober func(handlers.Prober) handlers.Prober
}

func (w wiring) serviceProber(p *probe.Prober) handlers.Prober {
	if w.prober == nil {
		return p
	}
	return w.prober(p)
}

// run is invoke with a last line of defence: a panic that escaped every
// recovery below (in this goroutine) prints its stack to stderr and exits
// 70, never 2, which would read as "critical".
func (w wiring) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	code := exitInternal
	err := handlers.Safely(func() error { code = w.invoke(ctx, args, getenv, stdout, stderr); return nil })
	if pe, ok := handlers.AsPanic(err); ok {
		fmt.Fprintf(stderr, "redisbot: internal error: %s (a bug in redisbot; please report it with the stack below)\n%s", pe.Summary(), pe.Stack)
		return exitInternal
	}
	return code
}

// printPanics tells a CLI user about a probe that panicked: the report
// says "internal"; stderr gets the stack to report.
func printPanics(stderr io.Writer) handlers.PanicHandler {
	var mu sync.Mutex // fleet's probes report from their own goroutines
	return func(_ context.Context, where, instance string, pe *handlers.PanicError) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stderr, "redisbot: internal error in %s of %s: %s (a bug in redisbot; please report it with the stack below)\n%s",
			where, terminal.Clean(instance), pe.Summary(), pe.Stack)
	}
}

// invoke executes one CLI invocation and returns the exit code: the
// command tree generated from the verb table (cli.go) parses the line and
// runs the verb.
func (w wiring) invoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c := &cli{wiring: w, getenv: getenv, stdout: stdout, stderr: stderr}
	return c.execute(ctx, args)
}

// loadConfig reads --config, or the first of ./config.yaml and
// ./config.example.yaml that exists. It returns as soon as ctx is done (a
// signal), even if a read is stuck where the kernel will not interrupt it (a
// hung network file system): config.Load then finishes, or not, in the
// background, and its result is dropped.
func loadConfig(ctx context.Context, path string, getenv func(string) string) (*config.Config, string, error) {
	if path == "" {
		for _, candidate := range []string{"config.yaml", "config.example.yaml"} {
			if _, err := os.Stat(candidate); err == nil {
				path = candidate
				break
			}
		}
		if path == "" {
			return nil, "", errors.New("no config file: pass --config FILE or create ./config.yaml (see config.example.yaml)")
		}
	}
	type loaded struct {
		cfg *config.Config
		err error
	}
	done := make(chan loaded, 1) // never blocks the loader, read or not
	go func() {
		cfg, err := config.Load(ctx, path, getenv)
		done <- loaded{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, path, r.err
	case <-ctx.Done():
		return nil, path, fmt.Errorf("config: loading %s stopped: %w", path, context.Cause(ctx))
	}
}

func useColor(mode string, w io.Writer, getenv func(string) string) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// exitCode: 3 when any probe failed, else by the worst severity.
func exitCode(reports []*handlers.Report) int {
	worst := handlers.SeverityNone
	for _, r := range reports {
		if r.Failed() {
			return exitError
		}
		worst = max(worst, r.Severity)
	}
	switch worst {
	case handlers.SeverityCritical:
		return exitCritical
	case handlers.SeverityWarning:
		return exitWarning
	}
	return exitOK
}

// writeReports writes a fleet's reports as one indented JSON array, the
// same text json.Encoder writes, one report at a time: encoding them all
// at once held the whole document twice (compact, then indented), about 50
// MB at 10,000 instances, on top of the reports.
func writeReports(w io.Writer, reports []*handlers.Report) error {
	if len(reports) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("[\n")
	for i, r := range reports {
		b, err := json.MarshalIndent(r, "  ", "  ")
		if err != nil {
			return err
		}
		bw.WriteString("  ")
		bw.Write(b)
		if i < len(reports)-1 {
			bw.WriteString(",")
		}
		bw.WriteString("\n")
	}
	bw.WriteString("]\n")
	return bw.Flush() // bufio keeps the first write error
}

func writeJSON(w io.Writer, resp *handlers.Response) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	switch {
	case resp.Verb == "fleet":
		return writeReports(w, resp.Reports)
	case resp.Verb == "list":
		type item struct {
			Name        string   `json:"name"`
			Addr        string   `json:"addr"`
			Tags        []string `json:"tags"`
			MemoryLimit int64    `json:"memory_limit"`
		}
		items := []item{}
		for _, inst := range resp.Instances {
			items = append(items, item{inst.Name, inst.Addr, inst.Tags, inst.MemoryLimit})
		}
		return enc.Encode(items)
	case resp.Approvals != nil:
		return enc.Encode(resp.Approvals)
	case resp.Audit != nil:
		return enc.Encode(resp.Audit)
	case resp.Silences != nil:
		return enc.Encode(resp.Silences)
	case len(resp.Reports) == 1:
		return enc.Encode(resp.Reports[0])
	}
	return enc.Encode(resp)
}
