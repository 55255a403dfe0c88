// Package sweep runs the scheduled work of the bot: fleet sweeps, digests,
// and the leader lease that makes sure only one of several bot replicas does
// them. A sweep is a chain of stages (sweep.go), each with one input and one
// output type: observe (probe every instance, read alerts, silences and acks
// once) -> judge (storm, hysteresis) -> step (the alert lifecycle, pure) ->
// deliver (Slack, through the outbox) -> save (the store) -> forward
// (metrics, Alertmanager).
package sweep
