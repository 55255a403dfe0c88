// Package redact makes text that did not come from redisbot safe to show:
// a server's or a library's error, a restart command's output, what a user
// typed. Secrets it is given are removed, and long text is cut. It imports
// nothing of redisbot, so every package, the key scanner and the executor
// included, can use it without depending on the service.
package redact

import "strings"

// Mark is what a secret is replaced with.
const Mark = "[redacted]"

// Secrets removes secrets from text that may reach a user or a log. Errors
// from client libraries are not expected to carry passwords; this makes
// sure. Redact before Truncate: a cut secret no longer matches.
func Secrets(text string, secrets ...string) string {
	for _, secret := range secrets {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, Mark)
		}
	}
	return text
}

// Truncate cuts text to n bytes for a message (what a user typed, a
// command's output), so a 1,000-character argument does not come back whole.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
