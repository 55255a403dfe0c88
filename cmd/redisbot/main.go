// Command redisbot diagnoses Redis memory problems from a terminal, and
// serves the same verbs to Slack (redisbot serve). main only handles
// signals and the exit code; everything else is in run so tests call it too.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
