package terminal

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/redisbot/redisbot/handlers"
)

var doctorMarker = regexp.MustCompile("… \\(truncated, ([0-9]+) more characters; run `redis-cli MEMORY DOCTOR` for the full text\\)$")

// A 100 KB MEMORY DOCTOR reply prints at most doctorLines lines, each cut,
// and says how much it left out; what it shows plus what it says it left
// out is the whole reply.
func TestCapDoctor(t *testing.T) {
	var many strings.Builder
	for i := 0; many.Len() < 100<<10; i++ {
		fmt.Fprintf(&many, " * Issue %d: the allocator holds %s\n", i, strings.Repeat("pages ", 10))
	}
	for name, text := range map[string]string{
		"many lines":    strings.TrimSpace(many.String()),
		"one long line": strings.Repeat("é", 100<<10),
		"both":          strings.Repeat(strings.Repeat("x", 5000)+"\n", 300),
	} {
		t.Run(name, func(t *testing.T) {
			got := capDoctor(text)
			lines := strings.Split(got, "\n")
			if len(lines) > doctorLines+1 {
				t.Errorf("%d lines, want at most %d and the marker", len(lines), doctorLines)
			}
			for _, l := range lines[:len(lines)-1] {
				if n := utf8.RuneCountInString(l); n > doctorLineRunes+1 {
					t.Fatalf("a line of %d runes", n)
				}
			}
			m := doctorMarker.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("no marker at the end: …%q", got[max(0, len(got)-200):])
			}
			more, _ := strconv.Atoi(m[1])
			kept := lines[:len(lines)-1]
			shown := len(kept) - 1 // the newlines between them
			for _, l := range kept {
				shown += utf8.RuneCountInString(strings.TrimSuffix(l, "…"))
			}
			if shown+more != utf8.RuneCountInString(text) {
				t.Errorf("shown %d + hidden %d != %d", shown, more, utf8.RuneCountInString(text))
			}
		})
	}
	short := "Hi Sam, I can't find any memory issue in your instance."
	if got := capDoctor(short); got != short {
		t.Errorf("capDoctor changed a short reply: %q", got)
	}
}

// The cap applies where the report prints the doctor's text.
func TestReportCapsDoctor(t *testing.T) {
	rep := &handlers.Report{Verb: "doctor", Instance: "cache-1", Doctor: strings.Repeat("line\n", 5000)}
	var out bytes.Buffer
	New(&out, false, nil).Report(rep)
	if n := strings.Count(out.String(), "line\n"); n > doctorLines {
		t.Errorf("%d doctor lines printed", n)
	}
	if !strings.Contains(out.String(), "(truncated, ") {
		t.Error("no truncation marker")
	}
}
