// Package bot holds redisbot's runtime: the transports (terminal, Slack) and
// their renderers, the router wiring, approvals, the scheduler and the store.
// The domain lives in handlers/; this package only moves and renders it.
package bot
