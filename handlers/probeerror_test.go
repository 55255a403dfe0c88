package handlers

import (
	"strings"
	"testing"
)

// Each class of failure points somewhere of its own: only a server error
// the bot has no class for gets the generic "is it up?".
func TestEveryClassHasItsOwnHint(t *testing.T) {
	_, generic := ClassError.advice()
	seen := map[string]ErrorClass{}
	for _, c := range []ErrorClass{ClassTimeout, ClassRefused, ClassDNS, ClassTLS, ClassAuth, ClassNoPerm, ClassLoading,
		ClassBusy, ClassProtocol, ClassNetwork, ClassInternal} {
		_, hint := c.advice()
		if hint == generic {
			t.Errorf("%s has the generic hint", c)
		}
		if other, dup := seen[hint]; dup {
			t.Errorf("%s and %s share a hint: %q", c, other, hint)
		}
		seen[hint] = c
	}
}

// The tls class has its own hint: a handshake that failed is a port or a
// certificate to check, not a server to restart.
func TestTLSHint(t *testing.T) {
	e := &ReportError{Class: ClassTLS, Message: "TLS handshake with 10.0.0.1:6379: EOF (is TLS enabled on that port?)"}
	f := unreachableFinding(Instance{Name: "cache-1", Addr: "10.0.0.1:6379"}, e)
	for _, want := range []string{"Probe failed (tls): the TLS handshake failed", "does not speak TLS", "ca_file, server_name"} {
		if !strings.Contains(f.Summary, want) {
			t.Errorf("summary %q lacks %q", f.Summary, want)
		}
	}
	if strings.Contains(f.Summary, "check that the server is up") {
		t.Errorf("summary %q has the generic hint", f.Summary)
	}
	r := &Report{Instance: "cache-1", Error: e, Findings: []Finding{f}}
	if a := ChooseFirstAction(r); a.ID != "check-tls" || !strings.Contains(a.Text, "redis-cli --tls") {
		t.Errorf("first action %+v, want check-tls", a)
	}
}
