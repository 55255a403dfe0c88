package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/redisbot/redisbot/bot/approvals"
	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/remedy"
	"github.com/redisbot/redisbot/handlers/topology"
)

// membershipMaxAge is how old the list of cluster and Sentinel members may
// be when a command names one of them: a burst of commands costs one read
// of the seeds and sentinels, and a failover someone else ran shows within
// seconds.
const membershipMaxAge = 5 * time.Second

// setMembership makes svc re-read the members of the config's cluster
// seeds and Sentinel entries (topology.Expand) before a command that names
// one, at most every membershipMaxAge, waiting at most the probe timeout
// for a read (a black-holed sentinel costs that per address).
func setMembership(svc *handlers.Service, cfg *config.Config) {
	svc.SetMembership(func(ctx context.Context) ([]handlers.Instance, []error) {
		return topology.Expand(ctx, cfg.Instances, cfg.Probe.Timeout)
	}, membershipMaxAge, cfg.Probe.Timeout)
}

// refreshAfterFailover runs approved plans and, after every failover,
// re-reads the membership at once, whatever the outcome (a failover that
// failed half-way may still have moved the primary): the next command that
// names <entry>.master reaches the new master, not the old one.
type refreshAfterFailover struct {
	approvals.Executor
	svc *handlers.Service
	log *slog.Logger
}

func (e refreshAfterFailover) Execute(ctx context.Context, p remedy.Plan, inst handlers.Instance) remedy.Outcome {
	o := e.Executor.Execute(ctx, p, inst)
	if p.Action == handlers.ActionFailover {
		for _, err := range e.svc.Refresh(ctx) {
			e.log.WarnContext(ctx, "expand instances after a failover", "error", err)
		}
	}
	return o
}

// resolverFunc is a slackbot.Resolver made of a function.
type resolverFunc func(name string, scope []string) (handlers.Instance, error)

func (f resolverFunc) Resolve(name string, scope []string) (handlers.Instance, error) {
	return f(name, scope)
}
