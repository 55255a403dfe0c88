package remedy_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/resptest"
)

// The defrag watch reads its own INFO, outside the probe: it is validated
// the same way, so a garbage ratio is unknown (and stops the watch) rather
// than judged as progress.
func TestTargetValidatesItsSnapshot(t *testing.T) {
	text := regexp.MustCompile(`(?m)^allocator_frag_ratio:.*$`).ReplaceAllLiteralString(resptest.DefaultInfo, "allocator_frag_ratio:-1.5\r")
	text = regexp.MustCompile(`(?m)^active_defrag_hits:.*$`).ReplaceAllLiteralString(text, "active_defrag_hits:99999999999999999999\r")
	srv, err := resptest.Start(resptest.Healthy, text, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	e, _ := executor(t)
	target, closeTarget := e.Target(handlers.Instance{Name: "frag-1", Addr: srv.Addr, Thresholds: handlers.DefaultThresholds()})
	t.Cleanup(func() { _ = closeTarget() })

	s, err := target.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Float("allocator_frag_ratio"); ok {
		t.Error("a negative allocator_frag_ratio was believed")
	}
	if _, ok := s.Int("active_defrag_hits"); ok {
		t.Error("an overflowing active_defrag_hits was believed")
	}
	missing := strings.Join(s.Missing, "\n")
	for _, want := range []string{"INFO allocator_frag_ratio: -1.5 is not a valid ratio (negative)", "INFO active_defrag_hits: 99999999999999999999 is not a valid count (overflows a 64-bit integer)"} {
		if !strings.Contains(missing, want) {
			t.Errorf("Missing lacks %q: %q", want, s.Missing)
		}
	}
}
