// Package handlers is redisbot's domain: what a probe of a Redis instance
// captured (Snapshot), what the rules conclude from it (Finding), and the
// verbs that users call (diagnose, frag, oom, doctor, fleet), each returning a
// transport-neutral Report. It never imports Slack or terminal code: the
// transports in bot/ and cmd/ render what these handlers return.
//
// Data flows one way: transport -> router -> handler -> probe -> rules ->
// findings -> renderer -> transport.
package handlers
