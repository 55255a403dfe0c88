// Package alertmanager connects redisbot to a Prometheus Alertmanager, both
// ways.
//
// Inbound, Receiver takes Alertmanager's webhook (the version "4"
// payload): each firing alert is mapped to a configured instance by its
// labels (Mapper), the instance is diagnosed as /redis diagnose would, and
// the diagnosis, buttons included, is posted where the team looks: the
// channel configured for the alert's receiver, or the thread of the
// alert's own Slack message when the alert links to it. One diagnosis per
// firing episode, one update when it resolves, whatever Alertmanager
// re-sends and across restarts (the notices in the store). Only configured
// instances are ever contacted: an address in a label is looked up among
// them, never dialled.
//
// Outbound, Forwarder sends the sweep's alerts to Alertmanager's API
// (POST /api/v2/alerts), so its routing, inhibition and silences apply to
// them.
//
// The payloads are small copies of Alertmanager's published types
// (notify/webhook's message, api/v2/models' PostableAlert) rather than a
// dependency on Alertmanager's module, whose dependency tree is far larger
// than these few fields; the tests check them against a real Alertmanager.
package alertmanager
