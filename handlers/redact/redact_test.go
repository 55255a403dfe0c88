package redact_test

import (
	"testing"

	"github.com/redisbot/redisbot/handlers/redact"
)

func TestSecrets(t *testing.T) {
	for _, tc := range []struct {
		text    string
		secrets []string
		want    string
	}{
		{"AUTH s3cret failed", []string{"s3cret"}, "AUTH [redacted] failed"},
		{"a s3cret and s3cret", []string{"s3cret"}, "a [redacted] and [redacted]"},
		{"nothing here", []string{""}, "nothing here"},
		{"p1 p2", []string{"p1", "p2"}, "[redacted] [redacted]"},
	} {
		if got := redact.Secrets(tc.text, tc.secrets...); got != tc.want {
			t.Errorf("Secrets(%q, %q) = %q, want %q", tc.text, tc.secrets, got, tc.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := redact.Truncate("abcdef", 3); got != "abc..." {
		t.Errorf("Truncate = %q", got)
	}
	if got := redact.Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate of a short text = %q", got)
	}
}
