package blockkit

import (
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

// The Slack runbook has the instance's address and name where the runbook
// says <host>, <port> and <instance>, escaped for mrkdwn like any other
// text: a name from the config cannot ping the channel.
func TestRunbookPlaceholdersFilledAndEscaped(t *testing.T) {
	lib := library(t)
	rep := &handlers.Report{Verb: "diagnose", Instance: "orders<!here>", Addr: "10.0.1.11:6380", Snapshot: fragmented(t)}
	r, err := RenderRunbook(rep, "frag-high", lib)
	if err != nil {
		t.Fatal(err)
	}
	checkReply(t, r, runbookLinks(t, lib, "frag-high"))
	js := string(goldenJSON(t, r))
	for _, want := range []string{"redis-cli -h 10.0.1.11 -p 6380 MEMORY DOCTOR", "/redis purge orders&lt;!here&gt;"} {
		if !strings.Contains(js, want) {
			t.Errorf("runbook lacks %q", want)
		}
	}
	for _, bad := range []string{"&lt;host&gt;", "&lt;port&gt;", "&lt;instance&gt;", "<!here>"} {
		if strings.Contains(js, bad) {
			t.Errorf("runbook contains %q", bad)
		}
	}
}

// The summary line is escaped like every other text: a headline carries
// an error message a server wrote.
func TestSummaryLineIsEscaped(t *testing.T) {
	s := handlers.Summary{Headline: "unreachable probe x: <!channel> & <@U1>",
		First: handlers.FirstAction{ID: "memory-purge", GainBytes: 120 << 20}, Gain: "about 120.0 MiB back"}
	got := summaryLine(s)
	if want := "*unreachable probe x: &lt;!channel&gt; &amp; &lt;@U1&gt;* · first: memory purge, about 120.0 MiB back"; got != want {
		t.Errorf("summaryLine = %q, want %q", got, want)
	}
}
