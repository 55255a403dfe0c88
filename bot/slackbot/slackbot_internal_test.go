package slackbot

import (
	"testing"
	"time"
)

func TestStripMentions(t *testing.T) {
	cases := map[string]string{
		"<@UBOT> diagnose cache-1":        "diagnose cache-1",
		"  <@UBOT>   <@U2> fleet team-a ": "fleet team-a",
		"diagnose cache-1":                "diagnose cache-1",
		"<@UBOT":                          "<@UBOT",
	}
	for in, want := range cases {
		if got := stripMentions(in); got != want {
			t.Errorf("stripMentions(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDuplicateEnvelopes(t *testing.T) {
	now := time.Unix(0, 0)
	b := New(Options{Now: func() time.Time { return now }})
	if b.duplicate("e1") {
		t.Error("first delivery reported as duplicate")
	}
	if !b.duplicate("e1") {
		t.Error("re-delivery not detected")
	}
	if b.duplicate("e2") {
		t.Error("another envelope reported as duplicate")
	}
}

func TestTrustedHookURL(t *testing.T) {
	b := New(Options{APIURL: "http://127.0.0.1:4000/api/"})
	cases := map[string]bool{
		"https://hooks.slack.com/commands/T1/1/abc":     true,
		"https://hooks.slack-gov.com/commands/T1/1/abc": true,
		"http://127.0.0.1:4000/response/7":              true,
		"http://hooks.slack.com/commands/T1/1/abc":      false, // not https
		"https://hooks.slack.com.evil.example/x":        false,
		"https://evil.example/hooks.slack.com":          false,
		"http://127.0.0.1:4001/response/7":              false, // other port
		"file:///etc/passwd":                            false,
		"::not a url":                                   false,
	}
	for u, want := range cases {
		if got := b.trustedHookURL(u); got != want {
			t.Errorf("trustedHookURL(%q) = %v, want %v", u, got, want)
		}
	}
}
