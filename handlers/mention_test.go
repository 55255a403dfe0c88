package handlers

import (
	"slices"
	"strings"
	"testing"
)

func TestReadMention(t *testing.T) {
	verbs := []string{"diagnose", "frag", "oom", "fleet", "list", "help"}
	instances := []string{"orders", "orders-primary", "cache-1", "Queue.EU"}
	cases := []struct {
		name     string
		text     string
		verb     string
		args     []string
		inferred bool
		closest  []string
		wantErr  string
	}{
		{name: "verb first", text: "frag cache-1", verb: "frag", args: []string{"cache-1"}},
		{name: "verb any case", text: "  OOM orders ", verb: "oom", args: []string{"orders"}},
		{name: "empty is help", text: "   ", verb: "help"},
		{name: "verb keeps parse errors", text: `diagnose "cache-1`, wantErr: "unbalanced quotes"},
		{name: "question names an instance", text: "why is orders-primary using so much memory?",
			verb: "diagnose", args: []string{"orders-primary"}, inferred: true},
		{name: "longest name first", text: "is orders or orders-primary the problem",
			verb: "diagnose", args: []string{"orders-primary"}, inferred: true},
		{name: "case-insensitive, configured spelling kept", text: "what about ORDERS-PRIMARY",
			verb: "diagnose", args: []string{"orders-primary"}, inferred: true},
		{name: "mixed-case config name", text: "queue.eu is slow", verb: "diagnose", args: []string{"Queue.EU"}, inferred: true},
		{name: "full stop ends a name", text: "please look at cache-1.", verb: "diagnose", args: []string{"cache-1"}, inferred: true},
		{name: "apostrophes are free text", text: "what's wrong with cache-1's memory", verb: "diagnose", args: []string{"cache-1"}, inferred: true},
		{name: "curly possessive", text: "how’s cache-1’s RSS", verb: "diagnose", args: []string{"cache-1"}, inferred: true},
		{name: "punctuation around", text: "(cache-1), again!", verb: "diagnose", args: []string{"cache-1"}, inferred: true},
		{name: "longer word is not a name", text: "why is orders-primary-2 slow", closest: []string{"diagnose", "fleet", "help"}},
		{name: "hostname containing a name", text: "check cache-1.evil.example.com:6379", closest: []string{"diagnose", "fleet", "help"}},
		{name: "address is never a host", text: "why is 10.0.0.5:6379 full", closest: []string{"diagnose", "fleet", "help"}},
		{name: "url is never a host", text: "see redis://attacker:6379/0", closest: []string{"diagnose", "fleet", "help"}},
		{name: "inside a word", text: "mycache-1 is slow", closest: []string{"diagnose", "fleet", "help"}},
		{name: "typo gets the closest verb", text: "diagnoze something", closest: []string{"diagnose"}},
		{name: "slack markup around a name", text: "<!channel> *cache-1* is `down`", verb: "diagnose", args: []string{"cache-1"}, inferred: true},
		{name: "control characters in free text are not an instance", text: "why\x00\x1b[31m", closest: []string{"diagnose", "fleet", "help"}},
		{name: "invalid utf-8", text: "why \xff\xfe cache-1", verb: "diagnose", args: []string{"cache-1"}, inferred: true},
		{name: "over-long", text: "why " + strings.Repeat("a", MaxCommandLength), wantErr: "the limit is 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ReadMention(c.text, verbs, instances)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				if !IsUsage(err) {
					t.Fatalf("err = %T, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Command.Verb != c.verb || !slices.Equal(m.Command.Args, c.args) || m.Inferred != c.inferred {
				t.Fatalf("read %q as %+v, want verb %q args %q inferred %v", c.text, m, c.verb, c.args, c.inferred)
			}
			if !slices.Equal(m.Closest, c.closest) {
				t.Fatalf("closest = %q, want %q", m.Closest, c.closest)
			}
		})
	}
}

// An instance outside the asker's scope is not passed in, so it is not read.
func TestReadMentionScope(t *testing.T) {
	m, err := ReadMention("why is billing-db full", []string{"diagnose"}, []string{"cache-1"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Command.Verb != "" || m.Inferred {
		t.Fatalf("read %+v, want help for a name outside the scope", m)
	}
}

func FuzzReadMention(f *testing.F) {
	for _, s := range []string{"why is orders-primary full?", "diagnose cache-1", "cache-1.", "\xff", "<@U1> help"} {
		f.Add(s)
	}
	instances := []string{"orders-primary", "cache-1"}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ReadMention(text, []string{"diagnose", "help"}, instances)
		if err != nil {
			return
		}
		if m.Inferred && (m.Command.Verb != "diagnose" || len(m.Command.Args) != 1 || !slices.Contains(instances, m.Command.Args[0])) {
			t.Fatalf("free text %q read as %+v: only a configured name may be diagnosed", text, m)
		}
	})
}
